"""smop: Llama-SMoP (sparse mixture of projectors) for LLM-based audio-visual speech recognition."""

__version__ = "0.1.0"
