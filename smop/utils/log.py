"""The logging set-up of every smop command (ESPnet's format: time, module:line, level)."""

import logging

FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=FORMAT)
