"""Fakes the tests share: the test subscription, a hand-moved clock, a credential backed by the simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from azure.core.credentials import AccessToken

if TYPE_CHECKING:
    from exporter.simulator import Simulator

SUB = "00000000-0000-0000-0000-000000000000"  # the test subscription (also the demo's)
OTHER_SUB = "11111111-1111-1111-1111-111111111111"


class FakeClock:
    """A clock tests move by hand. ``tick`` moves it on every reading; ``sleep`` moves it and is recorded."""

    def __init__(self, now: float = 1000.0, tick: float = 0.0) -> None:
        self.now = now
        self.tick = tick
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SimulatorCredential:
    """Fetches a token the simulator issued, in-process (the e2e tests use the real azure-identity instead)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.issued = 0

    def get_token(self, *scopes: str, claims: str | None = None) -> AccessToken:
        self.issued += 1
        token = self.sim.tokens.issue("https://management.azure.com")
        return AccessToken(token.access_token, token.expires_on)
