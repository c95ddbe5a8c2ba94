"""smop: Llama-SMoP (sparse mixture of projectors) for LLM-based audio-visual speech recognition."""

from smop.utils.log import drop_harmless_warnings

__version__ = "0.1.0"

drop_harmless_warnings()  # before any smop module imports the libraries that log them


def __getattr__(name):
    # ``from smop import Speech2Text`` without importing torch and transformers on ``import smop``.
    if name == "Speech2Text":
        from smop.inference.speech2text import Speech2Text

        return Speech2Text
    raise AttributeError(f"module 'smop' has no attribute {name!r}")
