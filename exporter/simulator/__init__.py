"""An in-process Azure Resource Manager simulator for standby pools (tests, benchmarks and --demo)."""

from .faults import Fault
from .server import SimulatorServer
from .world import RequestRecord, Simulator

__all__ = ["Fault", "RequestRecord", "Simulator", "SimulatorServer"]
