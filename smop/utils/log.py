"""The logging set-up of every smop command (ESPnet's format: time, module:line, level)."""

import logging

FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=FORMAT)


# Known harmless warnings of libraries, dropped from every log: (logger name, message start).
HARMLESS = (
    # bitsandbytes' CPU backend, at import (peft imports it whenever it is installed), on CPUs with
    # AVX512-BF16: an optional faster 4-bit kernel (the ``kernels`` package) is absent, and
    # bitsandbytes runs its own.
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # LLM.int8, at every matmul of every layer: its inputs are quantized from float16 (the decoder
    # says so once when it builds an 8-bit LLM).
    ("bitsandbytes.autograd._functions", "MatMul8bitLt: inputs will be cast from"),
)


class _DropMessage(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def drop_harmless_warnings() -> None:
    """Filter HARMLESS out of their loggers; must run before the library is imported."""
    for name, start in HARMLESS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.start == start for f in log.filters):
            log.addFilter(_DropMessage(start))
