"""Command line of the benchmark (``python -m bench --help``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from . import report as rep
from .budget import run_budget
from .cycles import World, run_cycles
from .faults import run_fault_scrapes
from .memory import run_memory
from .procs import REPO
from .scrape import measure
from .vm import run_vm_cycles

PHASES = ("cycles", "vm", "budget", "scrape", "faults", "memory")


def _series_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part.replace("_", "").replace("k", "000")) for part in text.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list such as 1k,10k,100k, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("series counts must be positive")
    return values


def _phases(text: str) -> tuple[str, ...]:
    phases = tuple(part for part in text.split(",") if part)
    unknown = set(phases) - set(PHASES)
    if unknown or not phases:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return phases


def _burst_scenario(value: str) -> tuple[float, int, int, int]:
    try:
        rate, burst, concurrency, retry_after = value.split("/")
        return float(rate), int(burst), int(concurrency), int(retry_after)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RATE/BURST/CONCURRENCY/RETRY_AFTER such as 20/20/16/3, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="""\
Run the exporter against the ARM simulator and print one table with PASS/FAIL per target.

Phases: cycles (ARM reads and wall time of a cold and steady cycles, in-process Poller against a
simulator subprocess with --latency), budget (read budget and Retry-After pause), scrape (/metrics
latency at --scrape-series next to generate_latest), faults (/metrics latency of the real exporter while
ARM fails), vm (reads and wall time per cycle of a VM-pool estate read through scale-set lists), memory
(VmHWM of the real exporter process).
Progress goes to stderr, the table to stdout (and to --results-dir).""",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    world = parser.add_argument_group("the world")
    world.add_argument("--pools", type=int, default=None, help="container group pools (default 1000; --quick 200)")
    world.add_argument("--members", type=int, default=20, help="members per pool (default 20)")
    world.add_argument("--resource-groups", type=int, default=None, help="resource groups (default 50; --quick 10)")
    world.add_argument("--page-size", type=int, default=50, help="items per ARM list page (default 50)")
    world.add_argument("--latency", type=float, default=0.02, help="simulated ARM latency in seconds for the cycles phase (default 0.02)")
    world.add_argument("--concurrency", type=int, default=64, help="polling.concurrency (default 64)")
    runs = parser.add_argument_group("what to run")
    runs.add_argument("--quick", action="store_true", help="smaller world and fewer samples (about a minute)")
    runs.add_argument("--phases", type=_phases, default=PHASES, help=f"comma-separated subset of {','.join(PHASES)} (default all)")
    runs.add_argument("--steady-cycles", type=int, default=None, help="steady cycles after the cold one (default 2; --quick 1)")
    runs.add_argument("--sequential", type=int, default=None, help="sequential single reads timed for the baseline (default 200; --quick 50)")
    runs.add_argument("--scrape-series", type=_series_list, default=(1000, 10_000, 100_000), help="snapshot sizes (default 1k,10k,100k)")
    runs.add_argument("--samples", type=int, default=None, help="timed scrapes per size and format (default 200; --quick 50)")
    runs.add_argument("--warmup", type=int, default=None, help="untimed scrapes first (default 20; --quick 5)")
    runs.add_argument("--budget-world", default="20x10x2", help="POOLSxMEMBERSxRESOURCE_GROUPS of the budget phase (default 20x10x2)")
    runs.add_argument("--rate", type=float, default=10.0, help="azure.max_reads_per_second of the budget phase (default 10)")
    runs.add_argument("--burst", type=int, default=50, help="azure.max_read_burst of the budget phase (default 50)")
    runs.add_argument("--retry-after", type=int, default=5, help="Retry-After of the injected 429 (default 5)")
    runs.add_argument("--burst-scenario", type=_burst_scenario, default=(20.0, 20, 16, 3),
                      help="RATE/BURST/CONCURRENCY/RETRY_AFTER of the budget phase's small-burst run (default 20/20/16/3)")
    runs.add_argument("--vm-world", default="100x20x10", help="POOLSxVMSxRESOURCE_GROUPS of the vm phase (default 100x20x10)")
    runs.add_argument("--memory-cycles", type=int, default=None, help="cycles the exporter process runs (default 3; --quick 2)")
    runs.add_argument("--memory-interval", type=float, default=10.0, help="polling.interval of the exporter process (default 10)")
    out = parser.add_argument_group("output")
    out.add_argument("--results-dir", type=Path, default=REPO / "bench-results", help="also write the table and JSON here (git-ignored)")
    out.add_argument("--no-save", action="store_true", help="do not write --results-dir")
    out.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quick = args.quick
    pools = args.pools or (200 if quick else 1000)
    resource_groups = args.resource_groups or (10 if quick else 50)
    steady = args.steady_cycles if args.steady_cycles is not None else (1 if quick else 2)
    sequential = args.sequential or (50 if quick else 200)
    samples = args.samples or (50 if quick else 200)
    warmup = args.warmup if args.warmup is not None else (5 if quick else 20)
    memory_cycles = args.memory_cycles or (2 if quick else 3)
    try:
        bp, bm, brg = (int(part) for part in args.budget_world.split("x"))
    except ValueError:
        build_parser().error(f"--budget-world must be POOLSxMEMBERSxRESOURCE_GROUPS, got {args.budget_world!r}")
    world = World(pools, args.members, resource_groups, args.page_size)
    info = rep.machine()
    load_before = rep.load_average()
    started = time.monotonic()
    _log(f"[bench] {pools} pools x {args.members} members in {resource_groups} resource groups; phases {','.join(args.phases)}")

    report = rep.Report()
    raw: dict[str, object] = {}
    if "cycles" in args.phases:
        result = run_cycles(world, latency=args.latency, concurrency=args.concurrency, steady_cycles=max(1, steady),
                            sequential_samples=sequential, log=_log)
        rep.add_cycles(report, result)
        raw["cycles"] = asdict(result)
    if "vm" in args.phases:
        try:
            vp, vm_members, vrg = (int(part) for part in args.vm_world.split("x"))
        except ValueError:
            build_parser().error(f"--vm-world must be POOLSxVMSxRESOURCE_GROUPS, got {args.vm_world!r}")
        vms = run_vm_cycles(World(vp, vm_members, vrg, args.page_size), latency=args.latency, concurrency=args.concurrency,
                            steady_cycles=max(1, steady), log=_log)
        rep.add_vm_cycles(report, vms)
        raw["vm"] = asdict(vms)
    if "scrape" in args.phases:
        scrapes = [measure(series, samples=samples, warmup=warmup, gl_seconds=3.0 if quick else 8.0, log=_log)
                   for series in args.scrape_series]
        rep.add_scrapes(report, scrapes)
        raw["scrape"] = [asdict(s) for s in scrapes]
    if "budget" in args.phases:
        budget = run_budget(World(bp, bm, brg, args.page_size), rate=args.rate, burst=args.burst,
                            retry_after=args.retry_after, log=_log)
        rep.add_budget(report, budget)
        raw["budget"] = asdict(budget)
        rate, burst, concurrency, retry_after = args.burst_scenario
        small = run_budget(World(bp, bm, brg, args.page_size), rate=rate, burst=burst, concurrency=concurrency,
                           retry_after=retry_after, log=_log)
        rep.add_budget(report, small, "small burst")
        raw["budget_small_burst"] = asdict(small)
    if "faults" in args.phases:
        faults = run_fault_scrapes(World(bp, bm, brg, args.page_size), samples=samples, log=_log)
        rep.add_fault_scrapes(report, faults)
        raw["faults"] = asdict(faults)
    if "memory" in args.phases:
        memory = run_memory(world, concurrency=args.concurrency, cycles=memory_cycles, interval=args.memory_interval,
                            timeout=600.0 if not quick else 300.0, log=_log)
        rep.add_memory(report, memory, target_size=(pools, args.members) == (1000, 20))
        raw["memory"] = asdict(memory)

    elapsed = time.monotonic() - started
    lines = [
        f"Benchmark: {pools} pools x {args.members} members in {resource_groups} resource groups (1 subscription), "
        f"list page size {args.page_size}; cycles with {args.latency * 1000:g} ms simulated ARM latency, "
        f"polling.concurrency {args.concurrency}, no read budget; memory and scrape phases without latency",
        f"Machine: nproc {info['nproc']}, {info['cpu']}, Python {info['python']}, Linux {info['kernel']}; "
        f"load average before {load_before}, after {rep.load_average()}; took {elapsed:.0f} s",
        "",
        report.table(),
        "",
        *(f"{'PASS' if passed else 'FAIL'}  {name}: {figures}" for name, passed, figures in report.verdicts),
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / f"bench-{stamp}.md").write_text(text + "\n")
        (args.results_dir / f"bench-{stamp}.json").write_text(json.dumps(
            {"machine": info, "argv": list(argv) if argv is not None else sys.argv[1:], "results": raw,
             "verdicts": report.verdicts}, indent=1, default=str))
        _log(f"[bench] saved {args.results_dir / f'bench-{stamp}.md'}")
    return 1 if args.strict and report.failed else 0
