"""eval: datasets, metrics, runners and reports that score rag_app against gold answers and sources."""
