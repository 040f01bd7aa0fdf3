"""``--demo``: the ARM simulator in-process, and settings and a credential pointing at it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .arm import TokenCredential
from .config import Settings, load_settings

DEMO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEMO_INTERVAL_SECONDS = 5


@dataclass
class Demo:
    settings: Settings
    credential: TokenCredential
    stop: Callable[[], None]


def start_demo() -> Demo:
    """Start the simulator's demo world on a loopback port; the real azure-identity fetches tokens from it.

    The exporter finds the demo's container group and VM pools by discovery, as it would in a real subscription.
    """
    from azure.identity import ManagedIdentityCredential

    from .simulator import Simulator, SimulatorServer

    simulator = Simulator.demo()
    server = SimulatorServer(simulator, host="127.0.0.1", port=0, tick_interval=1.0).start()
    os.environ["IDENTITY_ENDPOINT"] = server.identity_endpoint
    os.environ["IDENTITY_HEADER"] = server.identity_header
    settings = load_settings(
        {
            # 2025-10-01: the first api-version with elasticityProfile.dynamicSizing (the demo has such a pool)
            "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": "2025-10-01"}},
            "polling": {"interval": DEMO_INTERVAL_SECONDS, "timeout": 5, "stale_after": 60, "member_refresh": 30},
            "discovery": {"subscriptions": [DEMO_SUBSCRIPTION], "interval": 60},
        }
    )
    return Demo(settings=settings, credential=ManagedIdentityCredential(), stop=server.stop)
