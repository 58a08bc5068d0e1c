"""ingest: the offline half — files -> chunks with provenance -> embeddings -> a store."""
