import inspect
import io
import logging
import os
import re

import pytest

from etcdhcp import logs

LINE = re.compile(
    r"^(?P<letter>[DIWEF])(?P<mmdd>\d{4}) \d\d:\d\d:\d\d\.\d{6} (?P<pid>[ \d]{7}) "
    r"(?P<file>[\w.]+):(?P<line>\d+)\] (?P<msg>.*)$"
)


@pytest.fixture
def capture():
    """Configure logging into a buffer; restore the etcdhcp logger afterwards."""
    logger = logging.getLogger("etcdhcp")
    saved = logger.handlers[:], logger.level
    stream = io.StringIO()

    def setup(verbosity: int) -> io.StringIO:
        stream.seek(0)
        stream.truncate()
        logs.setup(verbosity, stream=stream)
        return stream

    yield setup
    logger.handlers[:], _ = saved
    logger.setLevel(saved[1])


def emit_all(logger: logging.Logger) -> None:
    logger.debug("debug %s", "line")
    logger.log(logs.V1, "v1 %s", "line")
    logger.info("info line")
    logger.warning("warning line")
    logger.error("error line")
    logger.critical("critical line")


def test_glog_line_format(capture):
    stream = capture(0)
    logger = logging.getLogger("etcdhcp.store")
    logger.info("leased %s to %s", "10.0.0.10", "08:9e:08:b5:af:01")
    logged_at = _lineno() - 1
    out = stream.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1
    m = LINE.match(out.rstrip("\n"))
    assert m, out
    assert m["letter"] == "I"
    assert int(m["pid"]) == os.getpid()
    assert m["file"] == "test_logs.py"
    assert int(m["line"]) == logged_at
    assert m["msg"] == "leased 10.0.0.10 to 08:9e:08:b5:af:01"


def _lineno() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        (0, ["I info", "W warning", "E error", "F critical"]),
        (1, ["I v1", "I info", "W warning", "E error", "F critical"]),
        (2, ["D debug", "I v1", "I info", "W warning", "E error", "F critical"]),
        (5, ["D debug", "I v1", "I info", "W warning", "E error", "F critical"]),
    ],
)
def test_levels_follow_verbosity(capture, verbosity, shown):
    stream = capture(verbosity)
    emit_all(logging.getLogger("etcdhcp.rfc2131"))
    got = []
    for line in stream.getvalue().splitlines():
        m = LINE.match(line)
        assert m, line
        got.append(f"{m['letter']} {m['msg'].split()[0]}")
    assert got == shown


def test_v1_is_a_named_level_between_debug_and_info():
    assert logging.DEBUG < logs.V1 < logging.INFO
    assert logging.getLevelName(logs.V1) == "V1"


def test_exception_traceback_follows_the_line(capture):
    stream = capture(0)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("etcdhcp.daemon").exception("handler crashed")
    first, *rest = stream.getvalue().splitlines()
    assert LINE.match(first)["msg"] == "handler crashed"
    assert first.startswith("E")
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: boom"


def test_setup_twice_does_not_duplicate_lines(capture):
    capture(0)
    stream = capture(2)
    logging.getLogger("etcdhcp").info("once")
    assert stream.getvalue().count("once") == 1


def test_other_loggers_untouched(capture):
    stream = capture(2)
    logging.getLogger("somelib").warning("not ours")
    assert stream.getvalue() == ""
