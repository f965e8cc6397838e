"""glog-style log lines and ``-v`` levels, as the original Go daemon printed them.

Operators grep and parse these lines, so the layout follows glog:
``I1128 16:40:00.123456   4242 store.py:88] message``. ``-v=0`` shows INFO and
above, ``-v=1`` adds one line per request (level ``V1``), ``-v=2`` adds DEBUG.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TextIO

V1 = 15
"""Per-request chatter, shown from ``-v=1``: between DEBUG and INFO. Log it with
``logger.log(logs.V1, ...)``."""
logging.addLevelName(V1, "V1")

_handler: logging.Handler | None = None


class GlogFormatter(logging.Formatter):
    """Formats records as glog does; exception tracebacks follow on their own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Lmmdd hh:mm:ss.uuuuuu pid file:line] msg, L being D/I/W/E/F."""
        level = record.levelno
        letter = (
            "F" if level >= logging.CRITICAL
            else "E" if level >= logging.ERROR
            else "W" if level >= logging.WARNING
            else "I" if level >= V1
            else "D"
        )  # fmt: skip
        when = datetime.fromtimestamp(record.created).strftime("%m%d %H:%M:%S.%f")
        return (
            f"{letter}{when} {record.process or 0:7d} "
            f"{record.filename}:{record.lineno}] {record.message}"
        )


def setup(verbosity: int, stream: TextIO | None = None) -> None:
    """Send the ``etcdhcp`` loggers to ``stream`` (default: stderr at call time) with
    the level ``-v`` asks for. Calling it again replaces the previous setup."""
    global _handler
    # Not in our lines, and each costs a look-up per record (one per lease at -v=0).
    logging.logThreads = False
    logging.logMultiprocessing = False
    logger = logging.getLogger("etcdhcp")
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    _handler.setFormatter(GlogFormatter())
    logger.addHandler(_handler)
    set_verbosity(verbosity)


def set_verbosity(verbosity: int) -> None:
    """Apply a new ``-v`` level to a running process (SIGHUP) without touching handlers,
    so threads logging at that moment lose no line."""
    level = logging.INFO if verbosity <= 0 else V1 if verbosity == 1 else logging.DEBUG
    logging.getLogger("etcdhcp").setLevel(level)
