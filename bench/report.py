"""The one results table (Markdown), the machine it ran on, and PASS/FAIL per target."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .budget import BudgetResult
from .cycles import ARM_OPERATIONS, CyclesResult
from .faults import FaultScrapeResult
from .memory import MemoryResult
from .scrape import MODES, ScrapeResult
from .vm import VmResult

MEMORY_LIMIT_BYTES = 250_000_000  # "under 250 MB" (decimal megabytes: the stricter reading)
SCRAPE_LIMIT_SECONDS = 0.010
FAULT_SCRAPE_P99_SECONDS = 0.100
SCRAPE_MIN_RATIO = 50.0
WALL_MIN_SPEEDUP = 8.0
STEADY_MEMBER_SHARE = 0.10


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    return {"nproc": nproc, "cpu": model, "python": platform.python_version(), "kernel": platform.release()}


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB ({size / 2**20:.0f} MiB)"


@dataclass
class Row:
    measurement: str
    value: str
    target: str = ""
    result: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    verdicts: list[tuple[str, bool, str]] = field(default_factory=list)  # (target, passed, figures)

    def add(self, measurement: str, value: str, target: str = "", result: str = "") -> None:
        self.rows.append(Row(measurement, value, target, result))

    def verdict(self, name: str, passed: bool, figures: str) -> str:
        self.verdicts.append((name, passed, figures))
        return "PASS" if passed else "FAIL"

    @property
    def failed(self) -> list[str]:
        return [name for name, passed, _ in self.verdicts if not passed]

    def table(self) -> str:
        header = Row("Measurement", "Value", "Target", "Result")
        rows = [header, *self.rows]
        widths = [max(len(getattr(row, name)) for row in rows) for name in ("measurement", "value", "target", "result")]

        def line(row: Row) -> str:
            cells = (row.measurement, row.value, row.target, row.result)
            return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
        return "\n".join([line(header), rule, *(line(row) for row in self.rows)])


def _per_operation(reads: dict[str, int]) -> str:
    return ", ".join(f"{operation} {reads.get(operation, 0)}" for operation in ARM_OPERATIONS)


def add_cycles(report: Report, result: CyclesResult) -> None:
    world = result.world
    cold, refresh = result.cycle("cold"), result.cycle("refresh")
    assert cold is not None and result.steady and result.sequential_mean is not None
    steady = max(result.steady, key=lambda cycle: cycle.total)
    members = world.pools * world.members
    # "the list pages" of the target: container group list pages, plus the pool list pages in a cycle where
    # the pool resources are due (every polling.pool_refresh)
    pages = world.list_pages() + world.pool_list_pages()
    limit = world.pools + pages + int(STEADY_MEMBER_SHARE * members)
    limit_text = f"<= {world.pools} + {pages} list pages + 10% of {members} = {limit}"
    for label, cycle, formula in (("cold", cold, world.cold_reads()), ("steady", steady, world.steady_reads())):
        for operation in ARM_OPERATIONS:
            report.add(f"ARM reads per cycle, {label}: {operation}", str(cycle.reads.get(operation, 0)))
        others = {op: n for op, n in cycle.reads.items() if op not in ARM_OPERATIONS}
        if others:
            report.add(f"ARM reads per cycle, {label}: other", ", ".join(f"{op} {n}" for op, n in sorted(others.items())))
        note = f"formula {formula}" + ("" if cycle.total == formula else f", differs by {cycle.total - formula:+d}")
        if label == "cold":
            report.add("ARM reads per cycle, cold: total", f"{cycle.total} ({note})")
        else:
            report.add(f"ARM reads per cycle, steady: total (worst of {len(result.steady)})", f"{cycle.total} ({note})", limit_text,
                       report.verdict("reads", cycle.total <= limit, f"steady cycle {cycle.total} reads (limit {limit})"))
    for cycle in (cold, *result.steady, *([refresh] if refresh else [])):
        errors = {status: n for status, n in cycle.statuses.items() if status != 200}
        if errors or cycle.pools_up != world.pools or cycle.members_seen != members:
            report.add(f"  {cycle.label} cycle problems", f"statuses {cycle.statuses}, {cycle.pools_up}/{world.pools} pools up, "
                       f"{cycle.members_seen}/{members} members")
    if refresh is not None:
        report.add(f"ARM reads per cycle, steady, once polling.member_refresh ({result.member_refresh:g} s) has passed",
                   f"{refresh.total} ({_per_operation(refresh.reads)})", limit_text,
                   report.verdict("reads, refresh cycle", refresh.total <= limit,
                                  f"the cycle once member_refresh has passed reads {refresh.total} (limit {limit})"))
        period = max(1, round(result.member_refresh / result.interval))
        average = (refresh.total + (period - 1) * steady.total) / period
        report.add(f"ARM reads per cycle, steady, averaged over member_refresh ({period} cycles at interval {result.interval:g} s)",
                   f"{average:.0f}")
    sequential = cold.total * result.sequential_mean
    speedup = sequential / cold.wall
    report.add(f"Cycle wall time, cold (latency {result.latency * 1000:g} ms, concurrency {result.concurrency})",
               f"{cold.wall:.1f} s = {speedup:.1f}x faster than sequential",
               f"<= 1/8 x {cold.total} reads x {result.sequential_mean * 1000:.2f} ms = {sequential / WALL_MIN_SPEEDUP:.1f} s",
               report.verdict("wall time", speedup >= WALL_MIN_SPEEDUP,
                              f"cold cycle {cold.wall:.1f} s vs {sequential:.0f} s sequential: {speedup:.1f}x faster (at least 8x)"))
    report.add("Cycle wall time, steady", ", ".join(f"{c.wall:.1f} s" for c in result.steady)
               + (f"; after member_refresh {refresh.wall:.1f} s" if refresh else ""))
    report.add(f"Sequential single read (mean of {result.sequential_samples})", _ms(result.sequential_mean))
    if cold.render_seconds is not None:
        report.add(f"Render of the cold snapshot ({cold.series} series, text + OpenMetrics)", _ms(cold.render_seconds))


def add_scrapes(report: Report, results: list[ScrapeResult]) -> None:
    largest = max(results, key=lambda r: r.series)
    primary, plain = list(MODES)
    for result in results:
        size = f"{result.series:,} series ({result.pools} pools x {result.members} members)"
        ratio = result.generate_latest_median / result.p(primary, 0.5)
        target = result_cell = ""
        if result is largest:
            passed = result.p(primary, 0.5) < SCRAPE_LIMIT_SECONDS and ratio >= SCRAPE_MIN_RATIO
            target = f"p50 < 10 ms and >= {SCRAPE_MIN_RATIO:g}x faster than generate_latest"
            result_cell = report.verdict("scrape", passed, f"{result.series} series: p50 {_ms(result.p(primary, 0.5))}, "
                                                         f"{_ratio(ratio)} faster than generate_latest ({_ms(result.generate_latest_median)})")
        report.add(f"Scrape {size}: /metrics {primary} p50 / p99",
                   f"{_ms(result.p(primary, 0.5))} / {_ms(result.p(primary, 0.99))} ({result.body_bytes[primary]:,} B)")
        report.add(f"Scrape {size}: generate_latest median (same snapshot, {len(result.generate_latest)} runs)",
                   f"{_ms(result.generate_latest_median)} -> ratio {_ratio(ratio)}", target, result_cell)
        report.add(f"Scrape {size}: /metrics {plain} p50 / p99",
                   f"{_ms(result.p(plain, 0.5))} / {_ms(result.p(plain, 0.99))} ({result.body_bytes[plain]:,} B)")


def add_budget(report: Report, result: BudgetResult, name: str = "budget") -> None:
    report.add(f"Budget {result.rate:g}/s burst {result.burst}, concurrency {result.concurrency}: most reads in any 1 s window "
               f"({result.reads} reads, {result.world.pools} pools x {result.world.members})", str(result.max_in_window),
               f"<= {result.window_limit}",
               report.verdict(f"{name} window", result.max_in_window <= result.window_limit,
                              f"at most {result.max_in_window} reads in a 1 s window (limit {result.window_limit})"))
    if result.max_after_pause is not None:
        report.add(f"Budget {result.rate:g}/s burst {result.burst}, concurrency {result.concurrency}: busiest 1 s window after the "
                   f"Retry-After {result.retry_after} s pause", str(result.max_after_pause), f"<= {result.window_limit}",
                   report.verdict(f"{name} after pause", result.max_after_pause <= result.window_limit,
                                  f"at most {result.max_after_pause} reads in a 1 s window after the pause (limit {result.window_limit})"))
    if result.pools_up != result.world.pools or set(result.statuses) - {200, 429}:
        report.add("  budget cycle problems", f"statuses {result.statuses}, {result.pools_up}/{result.world.pools} pools up")
    if result.throttled_at is None:
        report.add(f"Budget: after a 429 with Retry-After {result.retry_after}", "no 429 was injected", "0 requests",
                   report.verdict(f"{name} pause", False, "the injected 429 never happened"))
        return
    gap = f"{result.next_request_after:.2f} s" if result.next_request_after is not None else "none"
    report.add(f"Budget: requests to the subscription within {result.retry_after} s after a 429 (Retry-After {result.retry_after})",
               f"{result.requests_during_pause} (next after {gap})", "0",
               report.verdict(f"{name} pause", result.requests_during_pause == 0,
                              f"{result.requests_during_pause} requests during the pause; next after {gap}"))


def add_vm_cycles(report: Report, result: VmResult) -> None:
    world = result.world
    for cycle, before in zip(result.cycles, result.baseline, strict=False):
        report.add(f"VM estate, {world.pools} pools x {world.members} VMs, {cycle.label} cycle, per-VM reads (baseline) vs "
                   "scale-set lists: ARM reads / wall",
                   f"{before.total} / {before.wall:.2f} s vs {cycle.total} / {cycle.wall:.2f} s "
                   f"({_ratio(before.total / max(1, cycle.total))} fewer reads)")
    for cycle in result.cycles:
        due = cycle.label == "cold"
        limit = result.formula(pool_lists_due=due)
        per_vm = cycle.reads.get("vm_instance_view", 0)
        passed = cycle.total <= limit and per_vm == 0 and cycle.members_seen == world.pools * world.members
        report.add(f"VM estate, {world.pools} pools x {world.members} VMs, {cycle.label} cycle: ARM reads (per-VM instance views) / wall",
                   f"{cycle.total} ({per_vm}) / {cycle.wall:.2f} s", f"<= {limit} reads, 0 per-VM",
                   report.verdict(f"vm {cycle.label}", passed, f"{cycle.total} reads, {per_vm} per-VM, {cycle.members_seen} VMs seen"))


def add_fault_scrapes(report: Report, result: FaultScrapeResult) -> None:
    world = result.world
    p50, p99 = result.quantile(0.5), result.quantile(0.99)
    passed = result.error is None and len(result.latencies) == result.samples and p99 < FAULT_SCRAPE_P99_SECONDS
    report.add(f"/metrics while ARM fails (member reads 500, runtime views +0.3 s, 429s), {world.pools} pools x {world.members}: "
               f"p50 / p99 of {len(result.latencies)} kept-alive scrapes",
               f"{_ms(p50)} / {_ms(p99)}" + (f"; {result.error}" if result.error else ""), "p99 < 100 ms",
               report.verdict("scrape under faults", passed, f"p99 {_ms(p99)}"))


def add_memory(report: Report, result: MemoryResult, target_size: bool) -> None:
    world = result.world
    cycles = ", ".join(f"{seconds:.1f} s" for seconds in result.cycle_durations)
    passed = result.vm_hwm < MEMORY_LIMIT_BYTES and result.cycles > 0 and result.error is None
    note = "" if target_size else " (target defined at 1000 x 20)"
    report.add(f"Peak RSS (VmHWM) of the exporter, {world.pools} pools x {world.members} members, {result.cycles} cycles (seen: {cycles})",
               _mb(result.vm_hwm) + (f"; {result.error}" if result.error else ""), "< 250 MB" + note,
               report.verdict("memory", passed, f"VmHWM {_mb(result.vm_hwm)}" + note))
