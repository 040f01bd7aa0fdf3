"""python -m exporter.simulator: serve the demo world until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .server import SimulatorServer
from .world import Simulator


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo simulator."""
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__)
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 8080), help="HOST:PORT (default 127.0.0.1:8080)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the demo world (default 1)")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between lifecycle ticks (default 1.0)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host, port = args.listen
    with SimulatorServer(Simulator.demo(seed=args.seed), host, port, tick_interval=args.tick) as server:
        print(f"ARM_ENDPOINT={server.url}", flush=True)
        print(f"IDENTITY_ENDPOINT={server.identity_endpoint}", flush=True)
        print(f"IDENTITY_HEADER={server.identity_header}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
