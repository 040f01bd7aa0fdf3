"""logfmt and JSON log formatting, Prometheus style: ``ts=... level=info caller=poller msg="..." key=value``."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error", logging.CRITICAL: "error"}
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": _LEVEL_NAMES.get(record.levelno, "info"),
        "caller": record.name.removeprefix("exporter."),
        "msg": record.getMessage(),
    }
    fields.update((key, value) for key, value in vars(record).items() if key not in _STANDARD_ATTRS)
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return fields


# Characters that would let a value forge a log line or a terminal escape: C0 controls, DEL, C1 NEL,
# and the Unicode line and paragraph separators (log readers split lines on them).
_FORGING = frozenset([*map(chr, range(0x20)), "\x7f", "\x85", "\u2028", "\u2029"])
_LOGFMT_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_ESCAPES = str.maketrans({"\x7f": "\\u007f", "\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _escape_char(char: str) -> str:
    if char in _LOGFMT_SIMPLE_ESCAPES:
        return _LOGFMT_SIMPLE_ESCAPES[char]
    if char in _FORGING:
        return f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}"
    return char


def _logfmt_value(value: object) -> str:
    """A logfmt value: bare when plain, else quoted with every control and line separator escaped."""
    text = str(value)
    if text and not any(c in ' ="\\' or c in _FORGING for c in text):
        return text
    return '"' + "".join(_escape_char(c) for c in text) + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # json.dumps escapes C0 controls; DEL, NEL and U+2028/2029 are escaped here (they occur only inside strings).
        return json.dumps(_fields(record), default=str, ensure_ascii=False).translate(_JSON_ESCAPES)


def configure(level: str, fmt: str) -> None:
    """Log to stderr. Third-party loggers stay at warn: azure-core logs request headers at info."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("exporter").setLevel(LEVELS[level])
    for noisy in ("azure", "urllib3", "apscheduler", "aiohttp", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
