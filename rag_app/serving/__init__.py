"""Serving: model presets and preparation, the local vLLM server, the OpenAI-compatible client."""
