"""CLI command groups, one module per area of the product."""
