"""The alert scenarios of docs/runbook.md ("How early the alerts warn"), run through Prometheus' engine.

Each scenario builds, with a fixed seed, what Prometheus would have scraped from the exporter replicas
(see :mod:`.scenario_series`) and becomes one test group of a ``promtool test rules`` file: the
scenario's series as ``input_series``, and at every evaluation step (1 m) one alert check per alert of
``prometheus/alerts.yaml`` expecting nothing. promtool evaluates the real rules step by step, ``for``
and staleness included, and reports every step at which an alert fires: that report is the scenario's
timeline. One promtool run covers every scenario.

    python -m tests.assets.scenarios                       # print the runbook's table from a fresh run
    python -m tests.assets.scenarios --seed 1 --seed 2     # the same scenarios with other seeds
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .scenario_series import POLL_SECONDS, SCRAPE_SECONDS, Pool, PoolState, Replica, Scrapes

REPO = Path(__file__).resolve().parents[2]
ALERTS_FILE = REPO / "prometheus" / "alerts.yaml"
EVALUATION_SECONDS = 60
SEED = 20261202

SUB_A = "11111111-1111-1111-1111-111111111111"
SUB_B = "22222222-2222-2222-2222-222222222222"


@dataclass
class Scenario:
    """A world that evolves once a minute (one exporter poll) for ``minutes`` minutes."""

    name: str
    minutes: int
    replicas: list[Replica]
    evolve: Callable[[int], None]  # called with the poll index before the exporter polls
    vanish: dict[str, int] = field(default_factory=dict)  # instance -> minute its target disappears
    watched: PoolState | None = None  # the pool whose first zero-ready poll is the scenario's "zero"
    zero_minute: int | None = None

    def run(self) -> Scrapes:
        scrapes = Scrapes(self.minutes * POLL_SECONDS // SCRAPE_SECONDS + 1)
        per_poll = POLL_SECONDS // SCRAPE_SECONDS
        for index in range(scrapes.scrapes):
            poll, first = divmod(index, per_poll)
            if first == 0:
                self.evolve(poll)
                expositions = {r.instance: r.exposition(poll) for r in self.replicas
                               if poll < self.vanish.get(r.instance, self.minutes + 1)}
                if self.watched and self.zero_minute is None and not self.watched.ready(poll):
                    self.zero_minute = poll
            for replica in self.replicas:
                gone = self.vanish.get(replica.instance)
                if gone is not None and poll >= gone:
                    if poll == gone and first == 0:
                        scrapes.vanish(index, replica.instance)
                    continue
                scrapes.scrape(index, replica.instance, expositions[replica.instance])
        return scrapes


def _cg(name: str, max_ready: int, sub: str = SUB_A, **kw: Any) -> Pool:
    return Pool(sub, "rg-cg", name, "container_group", max_ready, **kw)


def _vm(name: str, max_ready: int, sub: str = SUB_A, **kw: Any) -> Pool:
    return Pool(sub, "rg-vm", name, "virtual_machine", max_ready, **kw)


def _steady(state: PoolState, rng: random.Random, poll: int, low: int, target: int, claim_chance: float) -> None:
    """Claims of 1 to 3 instances now and then (never below ``low`` ready), refills up to ``target``
    that take 2 to 5 minutes each: the ready count wanders between ``low`` and ``target``."""
    claimed = 0
    if rng.random() < claim_chance:
        claimed = state.claim(poll, min(rng.randint(1, 3), len(state.ready(poll)) - low))
    state.claims.append(claimed)
    state.refill(poll, target, latency=rng.randint(2, 5))


def noisy_steady_state(seed: int = SEED) -> Scenario:
    rng = random.Random(seed)
    pools = [PoolState(_cg("cg-noisy", 20, zones=("1", "2")), hourly_demand_before=18),
             PoolState(_vm("vm-noisy", 20, min_ready=10), hourly_demand_before=18)]
    for state in pools:
        state.fill(0, 20)

    def evolve(poll: int) -> None:
        for state in pools:
            _steady(state, rng, poll, low=14, target=20, claim_chance=0.15)

    return Scenario("six hours of noisy steady state (ready 14..20)", 360, [Replica("exporter-0:9863", pools)], evolve)


def dynamic_sizing(seed: int = SEED) -> Scenario:
    rng = random.Random(seed + 1)
    pools = [PoolState(_cg("cg-dynamic", 100, dynamic=True), hourly_demand_before=36),
             PoolState(_vm("vm-dynamic", 100, dynamic=True), hourly_demand_before=36)]
    for state in pools:
        state.fill(0, 25)

    def evolve(poll: int) -> None:
        # Azure's ready target follows its forecast between 22 and 30, far below max ready capacity.
        target = 26 + round(4 * math.sin(poll / 40))
        for state in pools:
            _steady(state, rng, poll, low=20, target=target, claim_chance=0.3)

    return Scenario("dynamically sized pool (max 100) at 20-30 ready for six hours", 360,
                    [Replica("exporter-0:9863", pools)], evolve)


def linear_drain(seed: int = SEED) -> Scenario:
    rng = random.Random(seed + 2)
    drain = PoolState(_cg("cg-drain", 20))
    other = PoolState(_vm("vm-steady", 20, min_ready=5), hourly_demand_before=18)
    for state in (drain, other):
        state.fill(0, 20)
    start = 60

    def evolve(poll: int) -> None:
        _steady(other, rng, poll, low=14, target=20, claim_chance=0.15)
        if poll < start:
            _steady(drain, rng, poll, low=14, target=20, claim_chance=0.0)
            return
        # Demand outruns refills (one new instance every other minute, a quota): ready falls by 1 every
        # 2 minutes, from 20 at the start to 0 at start + 40 minutes, and stays there.
        target = max(0, math.ceil(20 - (poll - start) / 2))
        drain.claims.append(drain.claim(poll, len(drain.ready(poll)) - target))
        if poll % 2 == 0:
            drain.refill(poll, 20, latency=3, limit=1)

    return Scenario("linear drain 20 -> 0 ready over 40 minutes", start + 70, [Replica("exporter-0:9863", [drain, other])],
                    evolve, watched=drain)


def claim_burst(seed: int = SEED) -> Scenario:
    rng = random.Random(seed + 3)
    burst = PoolState(_cg("cg-burst", 20, zones=("1", "2", "3")))
    other = PoolState(_cg("cg-steady", 20), hourly_demand_before=18)
    for state in (burst, other):
        state.fill(0, 20)
    start = 60

    def evolve(poll: int) -> None:
        _steady(other, rng, poll, low=14, target=20, claim_chance=0.15)
        if start <= poll < start + 2:
            burst.claims.append(burst.claim(poll, 10))
        elif start + 2 <= poll < start + 20:
            burst.claims.append(0)  # refills fail (quota) for a while
        else:
            _steady(burst, rng, poll, low=14, target=20, claim_chance=0.0)

    return Scenario("claim burst 20 -> 0 ready in 2 minutes", start + 40, [Replica("exporter-0:9863", [burst, other])],
                    evolve, watched=burst)


def _two_shards(seed: int) -> tuple[list[Replica], Callable[[int], None]]:
    rng = random.Random(seed)
    shard0 = [PoolState(_cg("cg-a", 20, zones=("1", "2")), hourly_demand_before=18),
              PoolState(_vm("vm-a", 12, min_ready=4), hourly_demand_before=18)]
    shard1 = [PoolState(_cg("cg-b", 20, sub=SUB_B), hourly_demand_before=18),
              PoolState(_cg("cg-c", 60, sub=SUB_B, dynamic=True), hourly_demand_before=18)]
    for state in shard0 + shard1:
        state.fill(0, min(state.pool.max_ready, 25))

    def evolve(poll: int) -> None:
        for state in shard0 + shard1:
            target = min(state.pool.max_ready, 25)
            _steady(state, rng, poll, low=target * 7 // 10, target=target, claim_chance=0.15)

    replicas = [Replica("exporter-0:9863", shard0, shard_ordinal=0, total_shards=2),
                Replica("exporter-1:9863", shard1, shard_ordinal=1, total_shards=2)]
    return replicas, evolve


def shard_stops(seed: int = SEED) -> Scenario:
    replicas, evolve = _two_shards(seed + 4)
    return Scenario("two shards, one stops (its series and its target vanish)", 90, replicas, evolve,
                    vanish={"exporter-1:9863": 60})


def two_healthy_shards(seed: int = SEED) -> Scenario:
    replicas, evolve = _two_shards(seed + 5)
    return Scenario("six healthy hours with two shards", 360, replicas, evolve)


SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "drain": linear_drain,
    "noise": noisy_steady_state,
    "burst": claim_burst,
    "dynamic": dynamic_sizing,
    "shard_stop": shard_stops,
    "shards_healthy": two_healthy_shards,
}


def alert_names() -> list[str]:
    doc = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"]]


def promtool_group(key: str, scenario: Scenario, scrapes: Scrapes, alerts: list[str]) -> dict[str, Any]:
    checks = [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []}
              for minute in range(scenario.minutes + 1) for name in alerts]
    return {"name": key, "interval": f"{SCRAPE_SECONDS}s", "input_series": list(scrapes.input_series()),
            "alert_rule_test": checks}


Firing = dict[str, list[tuple[int, dict[str, str]]]]  # scenario key -> [(minute, labels)]


@dataclass
class Outcome:
    scenario: Scenario
    firing: list[tuple[int, dict[str, str]]]  # (minute, alert labels) for every firing alert, every step

    def first(self, **match: str) -> tuple[int, dict[str, str]] | None:
        """The first firing alert whose labels include ``match``."""
        return next(((m, labels) for m, labels in self.firing
                     if all(labels.get(k) == v for k, v in match.items())), None)


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_IGNORED = re.compile(r"^(Unit Testing: .*|FAILED:|SUCCESS|exp:\[\], ?|got:\[|\]|\d+:|Annotations:\{.*\},?)$")


def _minutes(text: str) -> int:
    match = _DURATION.fullmatch(text)
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    hours, minutes, seconds = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if total % 60:
        raise ValueError(f"evaluation off the minute: {text!r}")
    return int(total // 60)


def parse_report(output: str) -> Firing:
    """promtool's report of the alert checks that failed, i.e. every firing alert at every step."""
    firing: Firing = {}
    group: str | None = None
    minute: int | None = None
    for raw in output.splitlines():
        line = raw.strip()
        if not line or _IGNORED.match(line):
            continue
        if match := re.fullmatch(r"name: (.+),", line):
            group, minute = match.group(1), None
        elif match := re.fullmatch(r"alertname: (\w+), time: (\S+),", line):
            minute = _minutes(match.group(2))
        elif match := re.fullmatch(r"Labels:\{(.*)\}", line):
            if group is None or minute is None:
                raise ValueError(f"alert labels outside a check: {line}")
            firing.setdefault(group, []).append((minute, dict(_LABEL.findall(match.group(1)))))
        else:
            raise ValueError(f"unexpected promtool output: {line!r}")
    return firing


def run_all(promtool: str, workdir: Path, seed: int = SEED) -> dict[str, Outcome]:
    """Build every scenario, evaluate the rules over all of them in one promtool run, and parse it."""
    alerts = alert_names()
    scenarios = {key: build(seed) for key, build in SCENARIOS.items()}
    groups = [promtool_group(key, scenario, scenario.run(), alerts) for key, scenario in scenarios.items()]
    doc = {"rule_files": [str(ALERTS_FILE)], "evaluation_interval": f"{EVALUATION_SECONDS}s", "tests": groups}
    path = workdir / "scenarios_test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1 << 20), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    firing = parse_report(output)
    if result.returncode != 0 and not firing:
        raise RuntimeError(f"promtool failed without reporting an alert:\n{output[-3000:]}")
    return {key: Outcome(scenario, sorted(firing.get(key, []), key=lambda f: f[0]))
            for key, scenario in scenarios.items()}


@dataclass(frozen=True)
class Row:
    """One line of the runbook's table: what the scenario measured against what it must meet."""

    key: str
    scenario: str
    alerts: str  # the alerts that fired, in order of their first firing, or "none"
    measured: str
    required: str
    passed: bool


def _fired(outcome: Outcome, **match: str) -> str:
    names = list(dict.fromkeys(labels["alertname"] for _, labels in outcome.firing
                               if all(labels.get(k) == v for k, v in match.items())))
    return ", ".join(names) or "none"


def _quiet(key: str, outcome: Outcome) -> Row:
    count = len({(labels["alertname"], minute) for minute, labels in outcome.firing})
    steps = outcome.scenario.minutes + 1
    measured = (f"nothing fired in {steps} evaluations" if count == 0
                else f"{count} firing (alert, evaluation) pairs in {steps} evaluations")
    return Row(key, outcome.scenario.name, _fired(outcome), measured, "no alert fires", count == 0)


def _depletion(key: str, outcome: Outcome, pool: str, lead_at_least: int | None, delay_at_most: int) -> Row:
    zero = outcome.scenario.zero_minute
    assert zero is not None, f"{key}: the pool never reached zero ready"
    first = outcome.first(pool=pool)
    depleted = outcome.first(pool=pool, alertname="AzureStandbyPoolDepleted")
    parts = []
    passed = first is not None and depleted is not None and depleted[0] - zero <= delay_at_most
    if first is not None:
        lead = zero - first[0]
        parts.append(f"{first[1]['alertname']} {lead} min before zero" if lead >= 0
                     else f"{first[1]['alertname']} {-lead} min after zero")
        if lead_at_least is not None:
            passed = passed and lead >= lead_at_least
        else:
            passed = passed and -lead <= delay_at_most
    if depleted is not None and depleted != first:
        parts.append(f"AzureStandbyPoolDepleted {depleted[0] - zero} min after zero")
    required = (f"first alert >= {lead_at_least} min before zero; " if lead_at_least is not None
                else f"an alert naming the pool <= {delay_at_most} min after zero; ")
    required += f"AzureStandbyPoolDepleted <= {delay_at_most} min after zero"
    return Row(key, outcome.scenario.name, _fired(outcome, pool=pool), "; ".join(parts) or "nothing fired",
               required, passed)


def _shard_loss(key: str, outcome: Outcome, within: int) -> Row:
    stopped = min(outcome.scenario.vanish.values())
    after = [(minute, labels) for minute, labels in outcome.firing if minute >= stopped]
    before = [f for f in outcome.firing if f[0] < stopped]
    first = after[0] if after else None
    measured = (f"{first[1]['alertname']} {first[0] - stopped} min after the stop" if first
                else "nothing fired")
    passed = first is not None and first[0] - stopped <= within and not before
    return Row(key, outcome.scenario.name, _fired(outcome), measured,
               f"an alert <= {within} min after the stop, none before", passed)


def measure(outcomes: dict[str, Outcome]) -> dict[str, Row]:
    return {
        "drain": _depletion("drain", outcomes["drain"], "cg-drain", lead_at_least=10, delay_at_most=7),
        "noise": _quiet("noise", outcomes["noise"]),
        "burst": _depletion("burst", outcomes["burst"], "cg-burst", lead_at_least=None, delay_at_most=7),
        "dynamic": _quiet("dynamic", outcomes["dynamic"]),
        "shard_stop": _shard_loss("shard_stop", outcomes["shard_stop"], within=15),
        "shards_healthy": _quiet("shards_healthy", outcomes["shards_healthy"]),
    }


TABLE_HEADER = ("| Scenario | Alert that fired | Measured | Required |\n"
                "|---|---|---|---|")


def table(rows: dict[str, Row]) -> str:
    lines = [TABLE_HEADER]
    lines += [f"| {r.scenario} | {r.alerts} | {r.measured} | {r.required} |" for r in rows.values()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - prints the runbook's table
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Run the alert scenarios through promtool and print the table.")
    parser.add_argument("--promtool", default="promtool")
    parser.add_argument("--seed", type=int, action="append", help=f"other seeds to try (default: {SEED} only)")
    args = parser.parse_args(argv)
    failed = 0
    for seed in args.seed or [SEED]:
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure(run_all(args.promtool, Path(tmp), seed))
        failed += sum(not row.passed for row in rows.values())
        print(f"seed {seed}:\n{table(rows)}\n")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
