"""A small PromQL reader for the asset tests: which metrics an expression selects, with which matchers.

Not a full parser (promtool and the real Prometheus server judge syntax); it only needs to find every
vector selector reliably in the expressions this repository writes, and it fails loudly on anything it
does not recognise (an unknown function, an unbalanced bracket) rather than skipping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT_FILE = REPO / "tests" / "fixtures" / "assets" / "metric_names.txt"

AGGREGATIONS = {
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values",
}
FUNCTIONS = AGGREGATIONS | {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "count_over_time", "day_of_month", "day_of_week", "days_in_month", "delta", "deriv", "exp", "floor",
    "histogram_quantile", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute", "month", "predict_linear", "quantile_over_time",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "time", "timestamp", "vector", "year",
}
# Keywords followed by a parenthesised label list.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|[smhdwy])(?![a-zA-Z0-9_:]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value) with the value unquoted

    def matcher(self, label: str) -> tuple[str, str] | None:
        for name, op, value in self.matchers:
            if name == label:
                return op, value
        return None


class PromQLError(ValueError):
    pass


def tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        pos = match.end()
        if match.lastgroup != "ws":
            out.append((match.lastgroup or "", match.group()))
    return out


def _unquote(text: str) -> str:
    return text[1:-1]


def selectors(expr: str) -> list[Selector]:
    """Every vector selector (``metric{matchers}``) in ``expr``; raises on an unknown function."""
    toks = tokens(expr)
    found: list[Selector] = []
    depth = 0
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "op" and text in "({":
            if text == "{":
                raise PromQLError(f"selector without a metric name in {expr!r}")
            depth += 1
        elif kind == "op" and text in ")}":
            depth -= 1
            if depth < 0:
                raise PromQLError(f"unbalanced brackets in {expr!r}")
        elif kind == "ident":
            if text in LABEL_LIST_KEYWORDS:
                if nxt != ("op", "("):
                    raise PromQLError(f"{text} without a label list in {expr!r}")
                close = next((j for j in range(i + 2, len(toks)) if toks[j] == ("op", ")")), None)
                if close is None:
                    raise PromQLError(f"unclosed label list after {text} in {expr!r}")
                for j in range(i + 2, close):
                    if toks[j][0] != "ident" and toks[j] != ("op", ","):
                        raise PromQLError(f"bad label list after {text} in {expr!r}")
                i = close + 1
                continue
            if text in KEYWORDS:
                pass
            elif text in AGGREGATIONS and nxt[0] == "ident" and nxt[1] in ("by", "without"):
                pass  # sum by (...) (...)
            elif nxt == ("op", "("):
                if text not in FUNCTIONS:
                    raise PromQLError(f"unknown function {text!r} in {expr!r}")
            else:
                matchers: list[tuple[str, str, str]] = []
                if nxt == ("op", "{"):
                    j = i + 2
                    while toks[j] != ("op", "}"):
                        if toks[j] == ("op", ","):
                            j += 1
                            continue
                        label, op, value = toks[j], toks[j + 1], toks[j + 2]
                        if label[0] != "ident" or op[1] not in ("=", "!=", "=~", "!~") or value[0] != "string":
                            raise PromQLError(f"bad label matcher near {label[1]!r} in {expr!r}")
                        matchers.append((label[1], op[1], _unquote(value[1])))
                        j += 3
                    i = j + 1
                    found.append(Selector(text, tuple(matchers)))
                    continue
                found.append(Selector(text, ()))
        i += 1
    if depth != 0:
        raise PromQLError(f"unbalanced brackets in {expr!r}")
    return found


@dataclass(frozen=True)
class ContractMetric:
    name: str
    type: str
    labels: frozenset[str]


def contract() -> dict[str, ContractMetric]:
    """The metric contract, generated from the catalogue (docs/generate_metrics.py)."""
    return read_contract(CONTRACT_FILE)


def read_contract(path: Path) -> dict[str, ContractMetric]:
    metrics: dict[str, ContractMetric] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        name, mtype = parts[0], parts[1]
        labels = frozenset(parts[2].split(",")) if len(parts) > 2 else frozenset()
        metrics[name] = ContractMetric(name, mtype, labels)
    return metrics


# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
