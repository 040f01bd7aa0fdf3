"""python -m exporter.simulator: serve a simulated ARM (the demo world, or the benchmark world) until SIGINT/SIGTERM.

Prints ``ARM_ENDPOINT=``, ``IDENTITY_ENDPOINT=`` and ``IDENTITY_HEADER=`` (one per line) once it serves.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .bench_world import build_bench
from .server import SimulatorServer
from .world import Simulator


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _read_bucket(value: str) -> int | None:
    if value.lower() in ("none", "off", "0"):
        return None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of reads or 'none', got {value!r}")
    return int(value)


def _build(args: argparse.Namespace) -> Simulator:
    if args.world == "demo":
        sim = Simulator.demo(seed=args.seed)
        sim.latency = args.latency
        return sim
    return build_bench(
        Simulator, args.pools, args.members, args.resource_groups, args.subscriptions, seed=args.seed,
        latency=args.latency, page_size=args.page_size, read_bucket=args.read_bucket,
        claim_probability=args.claim_probability, request_log_limit=args.request_log_limit, kind=args.kind,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator."""
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 8080), help="HOST:PORT (default 127.0.0.1:8080; port 0 picks one)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the world (default 1)")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between lifecycle ticks; 0: never tick (default 1.0)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every ARM reply (default 0)")
    parser.add_argument("--world", choices=("demo", "bench"), default="demo", help="which world to serve (default demo)")
    bench = parser.add_argument_group("benchmark world (--world=bench): full, healthy, quiet pools")
    bench.add_argument("--pools", type=int, default=1000, help="container group pools (default 1000)")
    bench.add_argument("--members", type=int, default=20, help="Running members per pool (default 20)")
    bench.add_argument("--kind", choices=("container_group", "virtual_machine"), default="container_group",
                       help="kind of every pool (default container_group; VM pools each attach a scale set of their own)")
    bench.add_argument("--resource-groups", type=int, default=50, help="resource groups the pools are spread over (default 50)")
    bench.add_argument("--subscriptions", type=int, default=1, help="subscriptions the pools are spread over (default 1)")
    bench.add_argument("--page-size", type=int, default=50, help="items per list page (default 50)")
    bench.add_argument("--read-bucket", type=_read_bucket, default=None,
                       help="enforce ARM's per-subscription read bucket with this capacity (refilled at 25/s, 15x globally); "
                            "'none': not enforced, the headers still count ARM's 250 at 25/s (default none)")
    bench.add_argument("--claim-probability", type=float, default=0.0, help="chance per pool and tick of a hand-out (default 0)")
    bench.add_argument("--request-log-limit", type=int, default=None, help="keep only the newest this many request records")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host, port = args.listen
    tick = args.tick if args.tick > 0 else None
    with SimulatorServer(_build(args), host, port, tick_interval=tick) as server:
        print(f"ARM_ENDPOINT={server.url}", flush=True)
        print(f"IDENTITY_ENDPOINT={server.identity_endpoint}", flush=True)
        print(f"IDENTITY_HEADER={server.identity_header}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
