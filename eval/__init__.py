"""eval: datasets, metrics, runners and reports scoring rag_app against gold answers and sources."""
