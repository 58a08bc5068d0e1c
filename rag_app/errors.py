"""Errors a user can act on: each carries one clear line saying what went wrong and what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base class: the CLI prints str(error) as one line and exits non-zero."""


class ConfigError(RagError):
    """A setting or path is wrong (names the field or file)."""


class ModelError(RagError):
    """A model file or folder is missing, corrupt or unusable."""


class LLMError(RagError):
    """The LLM server could not be started, reached or understood."""


class KnowledgeBaseError(RagError):
    """A knowledge base is missing, empty, or was built with another embedding model."""


class IngestError(RagError):
    """A document could not be read; ingestion reports it and goes on with the rest."""
