"""exporter.logs: logfmt and JSON lines that no logged value can break into several lines or escape sequences."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.logs import JsonFormatter, LogfmtFormatter

FORGING = [*map(chr, range(0x20)), "\x7f", "\x85", "\u2028", "\u2029"]
ATTACK = 'pool\x1b[31m\r\x07\x00 \x85\u2028\u2029\x7f\nts=2026-01-01T00:00:00Z level=error msg="forged"'


def record(msg: str, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("exporter.poller", logging.WARNING, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()], ids=["logfmt", "json"])
def test_no_value_can_forge_a_line_or_a_terminal_escape(formatter: logging.Formatter) -> None:
    line = formatter.format(record(ATTACK, pool=ATTACK, err=ValueError(ATTACK)))
    assert len(line.splitlines()) == 1  # str.splitlines also splits on NEL, U+2028, U+2029, FS, GS, RS
    assert not any(char in line for char in FORGING)


def test_logfmt_escapes() -> None:
    line = LogfmtFormatter().format(record("x", value='a "b" \\ \x1b \x85 \u2028 \n \t'))
    assert line.endswith('value="a \\"b\\" \\\\ \\x1b \\u0085 \\u2028 \\n \\t"')
    assert LogfmtFormatter().format(record("x", value="plain")).endswith(" value=plain")


@given(st.text())
def test_json_round_trips_any_text_on_one_line(text: str) -> None:
    line = JsonFormatter().format(record(text, value=text))
    assert len(line.splitlines()) == 1 and not any(char in line for char in FORGING)
    fields = json.loads(line)
    assert fields["msg"] == text and fields["value"] == text


@given(st.text())
def test_logfmt_is_one_line_for_any_text(text: str) -> None:
    line = LogfmtFormatter().format(record(text, value=text))
    assert len(line.splitlines()) == 1 and not any(char in line for char in FORGING)
