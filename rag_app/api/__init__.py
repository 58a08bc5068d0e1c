"""HTTP API: the OpenAI-compatible chat endpoint with citations, REST for knowledge bases."""
