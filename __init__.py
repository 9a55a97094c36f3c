"""Fathom: a self-hostable, Langfuse-compatible LLM engineering platform."""

__version__ = "0.1.0"
