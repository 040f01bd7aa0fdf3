"""The ARM simulator, exercised over real HTTP the way the exporter talks to Azure."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from exporter.simulator import Fault, Simulator, SimulatorServer, shapes
from tests.support.fakes import FakeClock

SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "99999999-2222-3333-4444-555555555555"
RG = "myResourceGroup"
CG = "Microsoft.StandbyPool/standbyContainerGroupPools"
ACI = "Microsoft.ContainerInstance/containerGroups"
NEW, OLD, ACI_VERSION = "2025-03-01", "2024-03-01", "2025-09-01"


class Arm:
    """A tiny ARM client: token from the simulator's identity endpoint, GETs with api-version."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.token = self.fetch_token()

    def fetch_token(self, resource: str = "https://management.azure.com") -> str:
        reply = self.session.get(self.server.identity_endpoint,
                                 params={"api-version": "2019-08-01", "resource": resource},
                                 headers={"X-IDENTITY-HEADER": self.server.identity_header, "Metadata": "true"})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    def get(self, path: str, api_version: str | None = NEW, token: str | None = "default",
            **kwargs: Any) -> requests.Response:
        params = {} if api_version is None else {"api-version": api_version}
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'default' else token}"}
        url = path if path.startswith("http") else self.server.url + path
        return self.session.get(url, params=params, headers=headers, timeout=10, **kwargs)

    def pool(self, name: str, api_version: str = NEW, rg: str = RG, suffix: str = "") -> requests.Response:
        return self.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{CG}/{name}{suffix}", api_version)

    def runtime_view(self, name: str, api_version: str = NEW) -> dict[str, Any]:
        reply = self.pool(name, api_version, suffix="/runtimeViews/latest")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def counts(self, name: str) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for summary in self.runtime_view(name)["properties"]["instanceCountSummary"]:
            for entry in summary["instanceCountsByState"]:
                totals[entry["state"].lower()] += entry["count"]
        return dict(totals)

    def walk(self, path: str, api_version: str = ACI_VERSION) -> list[dict[str, Any]]:
        """Every item of a paged list, following nextLink."""
        items: list[dict[str, Any]] = []
        reply = self.get(path, api_version)
        while True:
            assert reply.status_code == 200, reply.text
            body = reply.json()
            items.extend(body["value"])
            if "nextLink" not in body:
                return items
            reply = self.get(body["nextLink"], None)

    def members(self, pool: str, rg: str = RG) -> list[dict[str, Any]]:
        """Full GET bodies of the pool's members, found by the naming convention."""
        listed = self.walk(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{ACI}")
        names = [item["name"] for item in listed if item["name"].startswith(pool.lower() + "_")]
        return [self.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{ACI}/{name}", ACI_VERSION).json()
                for name in names]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    sim = Simulator(seed=7, clock=clock, lowercase_states=0.0, create_seconds=(3.0, 8.0))
    sim.add_container_group_pool(SUB, RG, "myStandbyPool", max_ready_capacity=4)
    sim.add_container_group_pool(SUB, RG, "zonal-pool", max_ready_capacity=6, zones=["1", "2", "3"], forecast=True)
    sim.add_container_group_pool(SUB, "other-rg", "forecast-pool", max_ready_capacity=3, forecast=True, health=None)
    sim.add_container_group(SUB, RG, "unrelated-app")
    return sim


@pytest.fixture
def arm(sim: Simulator) -> Iterator[Arm]:
    with SimulatorServer(sim) as server:
        yield Arm(server)


def _error(reply: requests.Response) -> str:
    return str(reply.json()["error"]["code"])


# ---- identity and authentication -------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "params", "status"), [
    ({"X-IDENTITY-HEADER": "SECRET"}, {"api-version": "2019-08-01", "resource": "https://management.azure.com"}, 200),
    ({}, {"api-version": "2019-08-01", "resource": "https://management.azure.com"}, 400),
    ({"X-IDENTITY-HEADER": "wrong"}, {"api-version": "2019-08-01", "resource": "https://management.azure.com"}, 401),
    ({"X-IDENTITY-HEADER": "SECRET"}, {"api-version": "2019-08-01"}, 400),
])
def test_app_service_token_endpoint(arm: Arm, headers: dict[str, str], params: dict[str, str], status: int) -> None:
    headers = {name: arm.server.identity_header if value == "SECRET" else value for name, value in headers.items()}
    reply = requests.get(arm.server.identity_endpoint, params=params, headers=headers)
    assert reply.status_code == status
    if status == 200:
        body = reply.json()
        assert body["token_type"] == "Bearer" and body["resource"] == "https://management.azure.com"
        assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > time.time() + 3500


def test_imds_token_endpoint(arm: Arm) -> None:
    url = arm.server.url + "/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": "https://management.azure.com"}
    assert requests.get(url, params=params).status_code == 400  # no Metadata header
    body = requests.get(url, params=params, headers={"Metadata": "true"}).json()
    assert {"access_token", "expires_in", "expires_on", "resource", "token_type"} <= set(body)
    assert arm.get(f"/subscriptions/{SUB}/providers/{CG}", token=body["access_token"]).status_code == 200


@pytest.mark.parametrize("style", ["app_service", "imds"])
def test_real_azure_identity_gets_a_working_token(arm: Arm, monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    from azure.identity import ManagedIdentityCredential

    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT",
                 "IMDS_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    if style == "app_service":
        monkeypatch.setenv("IDENTITY_ENDPOINT", arm.server.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", arm.server.identity_header)
    else:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", arm.server.url)
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert token.expires_on > time.time() + 3000
    assert arm.get(f"/subscriptions/{SUB}/providers/{CG}", token=token.token).status_code == 200


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "AuthenticationFailed"),
    ("Basic dXNlcjpwYXNz", "AuthenticationFailed"),
    ("Bearer not-a-token", "InvalidAuthenticationToken"),
])
def test_unauthenticated_requests_get_401(arm: Arm, authorization: str | None, code: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = requests.get(f"{arm.server.url}/subscriptions/{SUB}/providers/{CG}", params={"api-version": NEW},
                         headers=headers)
    assert reply.status_code == 401 and _error(reply) == code
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert reply.headers["x-ms-request-id"] and reply.headers["x-ms-correlation-request-id"]


def test_revoked_and_wrong_audience_tokens_get_401(arm: Arm, sim: Simulator, clock: FakeClock) -> None:
    path = f"/subscriptions/{SUB}/providers/{CG}"
    assert arm.get(path).status_code == 200
    sim.revoke_tokens()
    assert _error(arm.get(path)) == "InvalidAuthenticationToken"
    arm.token = arm.fetch_token()
    assert arm.get(path).status_code == 200
    assert arm.get(path, token=arm.fetch_token("https://vault.azure.net")).status_code == 401
    clock.advance(3601)
    assert arm.get(path).status_code == 401  # expired


# ---- paths, api-versions, errors ------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{CG}/myStandbyPool/runtimeViews/latest",
    f"/subscriptions/{SUB.upper()}/resourcegroups/MYRESOURCEGROUP/providers/microsoft.standbypool/"
    "STANDBYCONTAINERGROUPPOOLS/mystandbypool/RUNTIMEVIEWS/Latest",
    f"/Subscriptions/{SUB}/ResourceGroups/myresourcegroup/Providers/Microsoft.StandbyPool/"
    "standbyContainerGroupPools/MyStandbyPool/runtimeviews/LATEST/",
])
def test_paths_are_case_insensitive(arm: Arm, sim: Simulator, path: str) -> None:
    reply = arm.get(path)
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"].endswith("/standbyContainerGroupPools/myStandbyPool/runtimeViews/latest")
    assert sim.requests[-1].subscription_id == SUB and sim.requests[-1].operation == "runtime_view"


@pytest.mark.parametrize(("provider_path", "api_version", "status", "code"), [
    (f"resourceGroups/{RG}/providers/{CG}/myStandbyPool", None, 400, "MissingApiVersionParameter"),
    (f"resourceGroups/{RG}/providers/{CG}/myStandbyPool", "2021-01-01", 400, "InvalidApiVersionParameter"),
    (f"resourceGroups/{RG}/providers/{CG}/myStandbyPool", "2023-12-01-preview", 200, None),
    (f"resourceGroups/{RG}/providers/{CG}/myStandbyPool", "2026-04-01", 200, None),
    (f"resourceGroups/{RG}/providers/{ACI}", "2021-10-01", 200, None),
    (f"resourceGroups/{RG}/providers/{ACI}", "latest", 400, "InvalidApiVersionParameter"),
    (f"resourceGroups/{RG}/providers/{CG}/nope", NEW, 404, "ResourceNotFound"),
    (f"resourceGroups/{RG}/providers/{CG}/myStandbyPool/runtimeViews/other", NEW, 404, "ResourceNotFound"),
    (f"resourceGroups/{RG}/providers/{ACI}/nope", ACI_VERSION, 404, "ResourceNotFound"),
    (f"resourceGroups/no-such-rg/providers/{CG}/myStandbyPool", NEW, 404, "ResourceGroupNotFound"),
    (f"resourceGroups/{RG}/providers/Microsoft.Web/sites", NEW, 404, "InvalidResourceType"),
])
def test_api_versions_and_lookup_errors(arm: Arm, provider_path: str, api_version: str | None, status: int,
                                        code: str | None) -> None:
    reply = arm.get(f"/subscriptions/{SUB}/{provider_path}", api_version)
    assert reply.status_code == status, reply.text
    if code:
        assert _error(reply) == code and reply.json()["error"]["message"]


def test_unknown_subscription_and_method(arm: Arm) -> None:
    assert _error(arm.get(f"/subscriptions/{OTHER_SUB}/providers/{CG}")) == "SubscriptionNotFound"
    reply = arm.session.delete(f"{arm.server.url}/subscriptions/{SUB}/providers/{CG}?api-version={NEW}",
                               headers={"Authorization": f"Bearer {arm.token}"})
    assert reply.status_code == 405


def test_pool_resource_shape(arm: Arm) -> None:
    body = arm.pool("zonal-pool").json()
    assert body["type"] == CG and body["location"] == "westeurope" and "systemData" in body
    properties = body["properties"]
    assert properties["elasticityProfile"] == {"maxReadyCapacity": 6, "refillPolicy": "always"}
    assert properties["containerGroupProperties"]["containerGroupProfile"]["revision"] == 1
    assert properties["zones"] == ["1", "2", "3"] and properties["provisioningState"] == "Succeeded"
    assert "zones" not in arm.pool("zonal-pool", OLD).json()["properties"]
    assert "zones" not in arm.pool("myStandbyPool").json()["properties"]


# ---- paging -----------------------------------------------------------------------------------------


def test_lists_are_paged_with_absolute_next_links(clock: FakeClock) -> None:
    sim = Simulator(seed=3, page_size=3, clock=clock)
    sim.add_container_group_pool(SUB, RG, "paged-pool", max_ready_capacity=10)
    sim.add_container_group(SUB, RG, "outsider-1")
    sim.add_container_group(SUB, RG, "outsider-2", state="Stopped")
    for index in range(4):
        sim.add_container_group_pool(SUB, f"rg-{index}", f"pool-{index}", max_ready_capacity=1)
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        reply = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}", ACI_VERSION)
        link = urlsplit(reply.json()["nextLink"])
        assert f"{link.scheme}://{link.netloc}" == server.url
        assert parse_qs(link.query)["api-version"] == [ACI_VERSION] and "$skiptoken" in parse_qs(link.query)
        groups = arm.walk(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}")
        assert len(groups) == 12 and len({group["name"] for group in groups}) == 12
        assert all("instanceView" not in group["properties"] for group in groups)
        assert all("instanceView" not in c["properties"] for group in groups for c in group["properties"]["containers"])
        pools = arm.walk(f"/subscriptions/{SUB}/providers/{CG}", NEW)
        assert sorted(pool["name"] for pool in pools) == ["paged-pool", "pool-0", "pool-1", "pool-2", "pool-3"]
        assert [pool["name"] for pool in arm.walk(f"/subscriptions/{SUB}/resourceGroups/RG-1/providers/{CG}", NEW)] == ["pool-1"]
        host = server.url.replace("127.0.0.1", "localhost")
        assert arm.get(f"{host}/subscriptions/{SUB}/providers/{CG}").json()["nextLink"].startswith(host + "/")


# ---- runtime view and members -----------------------------------------------------------------------


def test_runtime_view_shape_depends_on_api_version(arm: Arm) -> None:
    old = arm.runtime_view("zonal-pool", OLD)["properties"]
    assert set(old) == {"instanceCountSummary", "provisioningState"}
    assert old["instanceCountSummary"] == [{"instanceCountsByState": [
        {"state": "Creating", "count": 0}, {"state": "Running", "count": 6}, {"state": "Deleting", "count": 0}]}]
    new = arm.runtime_view("zonal-pool", NEW)["properties"]
    assert [summary["zone"] for summary in new["instanceCountSummary"]] == [1, 2, 3]
    assert all(summary["instanceCountsByState"][1] == {"state": "Running", "count": 2}
               for summary in new["instanceCountSummary"])
    assert new["status"]["code"] == "HealthState/healthy"
    prediction = new["prediction"]
    assert len(prediction["forecastValues"]["instancesRequestedCount"]) == 12
    assert prediction["forecastStartTime"].endswith("Z")
    assert "forecastAccuracy" in json.loads(prediction["forecastInfo"])
    plain = arm.runtime_view("myStandbyPool", "2026-04-01")["properties"]
    assert "zone" not in plain["instanceCountSummary"][0] and "prediction" not in plain
    other = arm.get(f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/{CG}/forecast-pool/runtimeViews/latest")
    properties = other.json()["properties"]
    assert "status" not in properties  # health=None
    info = json.loads(properties["prediction"]["forecastInfo"])  # Microsoft's shape: the history a JSON string
    assert set(info) == {"forecastAccuracy", "seriesUnitIntervalInMins", "instancesRequestedCount_recentHistory"}
    assert len(json.loads(info["instancesRequestedCount_recentHistory"])) == 12


def test_states_are_sometimes_lower_case(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, lowercase_states=1.0)
    sim.add_container_group_pool(SUB, RG, "myStandbyPool")
    with SimulatorServer(sim) as server:
        states = [e["state"] for e in Arm(server).runtime_view("myStandbyPool")["properties"]["instanceCountSummary"][0]["instanceCountsByState"]]
    assert states == ["creating", "running", "deleting"]


def test_member_bodies_follow_the_seed_article(arm: Arm) -> None:
    listed = arm.walk(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}")
    names = {item["name"] for item in listed}
    assert "unrelated-app" in names and sum(name.startswith("mystandbypool_") for name in names) == 4
    member = arm.members("myStandbyPool")[0]
    assert member["id"] == f"/subscriptions/{SUB}/resourceGroups/myresourcegroup/providers/{ACI}/{member['name']}"
    assert len(member["name"].split("_")[1]) == 8 and member["tags"] is None
    properties = member["properties"]
    assert properties["provisioningState"] == "Succeeded" and properties["instanceView"]["state"] == "Running"
    container = properties["containers"][0]["properties"]
    assert container["instanceView"]["currentState"]["state"] == "Running"
    assert [event["name"] for event in container["instanceView"]["events"]] == ["Pulling", "Pulled", "Started"]
    assert {member["zones"][0] for member in arm.members("zonal-pool")} == {"1", "2", "3"}


def test_lifecycle_counts_agree_with_members(clock: FakeClock) -> None:
    sim = Simulator(seed=5, clock=clock, create_seconds=(3.0, 8.0), deleting_seconds=2.0, lowercase_states=0.0)
    sim.add_container_group_pool(SUB, RG, "lifecycle", max_ready_capacity=4, running=0)
    with SimulatorServer(sim) as server:
        arm = Arm(server)

        def member_phases() -> dict[str, int]:
            phases = Counter({"creating": 0, "running": 0, "deleting": 0})
            for member in arm.members("lifecycle"):
                provisioning = member["properties"]["provisioningState"]
                phases[{"Pending": "creating", "Creating": "creating", "Succeeded": "running"}.get(provisioning, "deleting")] += 1
            return dict(phases)

        def check(expected: dict[str, int]) -> None:
            assert arm.counts("lifecycle") == expected == member_phases()

        check({"creating": 0, "running": 0, "deleting": 0})
        sim.tick()
        check({"creating": 4, "running": 0, "deleting": 0})
        pending = arm.members("lifecycle")[0]["properties"]
        assert pending["provisioningState"] in ("Pending", "Creating") and pending["instanceView"]["state"] == "Pending"
        assert pending["containers"][0]["properties"]["instanceView"]["currentState"]["state"] == "Waiting"
        clock.advance(8.1)
        sim.tick()
        check({"creating": 0, "running": 4, "deleting": 0})
        claimed = sim.claim(SUB, RG, "lifecycle", count=2)
        check({"creating": 0, "running": 2, "deleting": 2})
        sim.tick()  # refill replaces the claimed ones at once
        check({"creating": 2, "running": 2, "deleting": 2})
        clock.advance(2.1)
        sim.tick()
        check({"creating": 2, "running": 2, "deleting": 0})
        gone = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}/{claimed[0]}", ACI_VERSION)
        assert gone.status_code == 404
        sim.deplete(SUB, RG, "lifecycle")
        clock.advance(10)
        sim.tick()
        check({"creating": 0, "running": 0, "deleting": 0})
        sim.set_refill(SUB, RG, "lifecycle", True)
        sim.tick()
        check({"creating": 4, "running": 0, "deleting": 0})


def test_health_degraded_pauses_refill(arm: Arm, sim: Simulator) -> None:
    sim.set_health(SUB, RG, "myStandbyPool", "HealthState/degraded")
    sim.claim(SUB, RG, "myStandbyPool", count=4)
    sim.tick()
    assert arm.runtime_view("myStandbyPool")["properties"]["status"]["code"] == "HealthState/degraded"
    assert arm.counts("myStandbyPool")["creating"] == 0
    sim.set_health(SUB, RG, "myStandbyPool", None)
    sim.tick()
    assert "status" not in arm.runtime_view("myStandbyPool")["properties"]
    assert arm.counts("myStandbyPool")["creating"] == 4


def test_delete_pool_answers_404(arm: Arm, sim: Simulator) -> None:
    members = [member["name"] for member in arm.members("myStandbyPool")]
    sim.delete_pool(SUB, RG, "myStandbyPool")
    for suffix in ("", "/runtimeViews/latest"):
        reply = arm.pool("myStandbyPool", suffix=suffix)
        assert reply.status_code == 404 and _error(reply) == "ResourceNotFound"
    assert arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}/{members[0]}", ACI_VERSION).status_code == 404
    assert "myStandbyPool" not in [pool["name"] for pool in arm.walk(f"/subscriptions/{SUB}/providers/{CG}", NEW)]
    with pytest.raises(KeyError):
        sim.claim(SUB, RG, "myStandbyPool")


def test_set_member_state_overrides_the_get(arm: Arm, sim: Simulator) -> None:
    name = arm.members("myStandbyPool")[0]["name"]
    sim.set_member_state(SUB, RG, name.upper(), provisioning_state="Failed", container_state="Terminated")
    properties = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{ACI}/{name}", ACI_VERSION).json()["properties"]
    assert properties["provisioningState"] == "Failed" and properties["instanceView"]["state"] == "Running"
    assert properties["containers"][0]["properties"]["instanceView"]["currentState"]["state"] == "Terminated"


# ---- throttling ---------------------------------------------------------------------------------------


def test_throttling_per_subscription(clock: FakeClock) -> None:
    sim = Simulator(read_bucket=3, read_refill_per_second=0.5, clock=clock)
    sim.add_container_group_pool(SUB, RG, "myStandbyPool")
    sim.add_container_group_pool(OTHER_SUB, RG, "myStandbyPool")
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        path = f"/subscriptions/{SUB}/providers/{CG}"
        replies = [arm.get(path) for _ in range(3)]
        assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in replies] == ["2", "1", "0"]
        assert [r.headers["x-ms-ratelimit-remaining-subscription-global-reads"] for r in replies] == ["44", "43", "42"]  # 15x
        throttled = arm.get(path)
        assert throttled.status_code == 429 and _error(throttled) == "TooManyRequests"
        assert throttled.headers["Retry-After"] == "2"
        assert arm.get(f"/subscriptions/{OTHER_SUB}/providers/{CG}").status_code == 200
        clock.advance(2)
        assert arm.get(path).status_code == 200


def test_read_buckets_are_counted_but_not_enforced_by_default(clock: FakeClock) -> None:
    """Demo, bench and soak are never throttled unless asked; the headers still carry ARM's bucket figures."""
    sim = Simulator(clock=clock)
    sim.add_container_group_pool(SUB, RG, "myStandbyPool")
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        path = f"/subscriptions/{SUB}/providers/{CG}"
        replies = [arm.get(path) for _ in range(300)]
        assert all(r.status_code == 200 for r in replies)
        assert replies[0].headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
        assert replies[0].headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3749"
        assert replies[-1].headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"  # spent, yet served
        assert replies[-1].headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3450"
        clock.advance(2)  # refilled at 25/s (375/s globally)
        again = arm.get(path).headers
        assert again["x-ms-ratelimit-remaining-subscription-reads"] == "49"
        assert again["x-ms-ratelimit-remaining-subscription-global-reads"] == "3749"


# ---- faults and admin endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status", "code", "retry_after"), [
    (Fault(status=503), 503, "ServiceUnavailable", None),
    (Fault(status=429), 429, "TooManyRequests", "1"),
    (Fault(status=429, retry_after=7), 429, "TooManyRequests", "7"),
    (Fault(status=500, error_code="Boom"), 500, "Boom", None),
    (Fault(status=403), 403, "AuthorizationFailed", None),
])
def test_status_faults(arm: Arm, sim: Simulator, fault: Fault, status: int, code: str, retry_after: str | None) -> None:
    sim.faults.add(fault)
    reply = arm.pool("myStandbyPool")
    assert reply.status_code == status and _error(reply) == code
    assert reply.headers.get("Retry-After") == retry_after
    assert sim.requests[-1].status == status and sim.requests[-1].operation == "pool"


def test_body_fault_serves_the_body_as_is(arm: Arm, sim: Simulator) -> None:
    sim.faults.add(Fault(match="runtimeviews", body=b"<html>gateway</html>", content_type="text/html", times=1))
    assert arm.pool("myStandbyPool").status_code == 200  # match limits the fault to runtime views
    reply = arm.pool("myStandbyPool", suffix="/runtimeViews/latest")
    assert reply.status_code == 200 and reply.text == "<html>gateway</html>"
    assert reply.headers["Content-Type"] == "text/html"
    assert arm.pool("myStandbyPool", suffix="/runtimeViews/latest").json()["name"] == "latest"  # times=1 used up


def test_delay_reset_and_truncate_faults(arm: Arm, sim: Simulator) -> None:
    sim.faults.add(Fault(delay=0.3, times=1))
    started = time.monotonic()
    assert arm.pool("myStandbyPool").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.faults.add(Fault(reset=True, times=1))
    with pytest.raises(requests.ConnectionError):
        arm.pool("myStandbyPool")
    assert sim.requests[-1].status == 0
    sim.faults.add(Fault(truncate=True, times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        arm.pool("myStandbyPool")
    assert arm.pool("myStandbyPool").status_code == 200


def test_token_endpoint_is_only_faulted_by_msi_matches(arm: Arm, sim: Simulator) -> None:
    sim.faults.add(Fault(status=500))
    arm.fetch_token()
    sim.faults.clear()
    sim.faults.add(Fault(match="/msi/", status=500, times=1))
    with pytest.raises(AssertionError):
        arm.fetch_token()
    assert sim.requests[-1].operation == "token" and sim.requests[-1].subscription_id is None


def test_admin_endpoints(arm: Arm, sim: Simulator, clock: FakeClock) -> None:
    admin = arm.server.url + "/_simulator"
    since = clock()
    assert requests.post(f"{admin}/faults", json={"match": "runtimeviews", "status": 200, "body": "{not json"}).ok
    assert arm.pool("myStandbyPool", suffix="/runtimeViews/latest").text == "{not json"
    assert requests.delete(f"{admin}/faults").ok
    assert arm.pool("myStandbyPool", suffix="/runtimeViews/latest").status_code == 200
    assert requests.post(f"{admin}/deplete", json={"subscription_id": SUB, "resource_group": RG, "pool": "mystandbypool"}).ok
    clock.advance(5)
    assert requests.post(f"{admin}/tick").ok
    assert arm.counts("myStandbyPool") == {"creating": 0, "running": 0, "deleting": 0}
    assert requests.post(f"{admin}/deplete", json={"subscription_id": SUB, "resource_group": RG, "pool": "x"}).status_code == 404
    assert requests.post(f"{admin}/faults", json={"bogus": 1}).status_code == 400
    clock.advance(1)
    records = requests.get(f"{admin}/requests", params={"since": since + 0.5}).json()
    assert [record["operation"] for record in records] == ["runtime_view"]
    assert records[0]["subscription_id"] == SUB and records[0]["status"] == 200
    example = {"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "running", "count": 500}]}]}}
    path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.StandbyPool/standbyContainerGroupPools/myStandbyPool/runtimeViews/latest"
    assert requests.post(f"{admin}/verbatim", json={"path": path.upper(), "api_version": NEW, "body": example}).ok
    assert arm.pool("myStandbyPool", suffix="/runtimeViews/latest").json() == example  # served as it is, whatever the world holds


# ---- transport, demo, command line ------------------------------------------------------------------


def test_keep_alive_and_stop_cuts_connections(sim: Simulator) -> None:
    server = SimulatorServer(sim).start()
    arm = Arm(server)
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=5)
    sockets = set()
    for _ in range(3):
        connection.request("GET", f"/subscriptions/{SUB}/providers/{CG}?api-version={NEW}",
                           headers={"Authorization": f"Bearer {arm.token}"})
        reply = connection.getresponse()
        assert reply.status == 200 and not reply.will_close
        assert int(reply.headers["Content-Length"]) == len(reply.read())
        sockets.add(id(connection.sock))
    assert len(sockets) == 1
    arm.pool("myStandbyPool")
    server.stop()
    with pytest.raises(requests.ConnectionError):
        arm.pool("myStandbyPool")


def test_demo_world() -> None:
    sim = Simulator.demo(seed=2)
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        pools = arm.walk("/subscriptions/00000000-0000-0000-0000-000000000000/providers/" + CG, NEW)
        assert len(pools) == 4
        dynamic = arm.walk("/subscriptions/00000000-0000-0000-0000-000000000000/providers/" + CG, "2025-10-01")
        assert [p["name"] for p in dynamic if p["properties"]["elasticityProfile"]["dynamicSizing"]["enabled"]] == [
            "jobs-pool"], "the demo has one dynamically sized pool"
        vm_pools = arm.walk("/subscriptions/00000000-0000-0000-0000-000000000000/providers/" + VMP, NEW)
        assert len(vm_pools) == 2
        assert any(pool["properties"].get("zones") == ["1", "2", "3"] for pool in pools)
        views = [arm.get(pool["id"] + "/runtimeViews/latest").json()["properties"] for pool in pools]
        assert any("prediction" in view for view in views)
        groups = arm.walk("/subscriptions/00000000-0000-0000-0000-000000000000/providers/" + ACI)
        assert sum("_" not in group["name"] for group in groups) >= 1
    assert sim.claim_probability > 0 and len(sim.requests) <= 10_000
    sim.request_log_limit = 2
    sim.tick()
    with SimulatorServer(sim) as server:
        for _ in range(3):
            Arm(server)
    assert len(sim.requests) == 2 and all(record.operation == "token" for record in sim.requests)


def test_command_line_serves_the_demo() -> None:
    process = subprocess.Popen([sys.executable, "-m", "exporter.simulator", "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))
        endpoint, header = lines["IDENTITY_ENDPOINT"], lines["IDENTITY_HEADER"]
        reply = requests.get(endpoint, params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
                             headers={"X-IDENTITY-HEADER": header}, timeout=5)
        assert reply.status_code == 200
        url = lines["ARM_ENDPOINT"]
        listed = requests.get(f"{url}/subscriptions/00000000-0000-0000-0000-000000000000/providers/{CG}",
                              params={"api-version": NEW}, headers={"Authorization": "Bearer " + reply.json()["access_token"]})
        assert len(listed.json()["value"]) == 4  # the demo's container group pools
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0


# ---- virtual machine pools (stage 2) ----------------------------------------------------------------

VMP = "Microsoft.StandbyPool/standbyVirtualMachinePools"
VM_STATES = ["Running", "Creating", "Starting", "Deleting", "Deallocated", "Deallocating", "Hibernated", "Hibernating"]


def _vm_counts(arm: Arm, pool: str) -> dict[str, int]:
    reply = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}/{pool}/runtimeViews/latest")
    entries = reply.json()["properties"]["instanceCountSummary"][0]["instanceCountsByState"]
    assert [entry["state"] for entry in entries] == VM_STATES
    return {entry["state"]: entry["count"] for entry in entries if entry["count"]}


def _instance_view(arm: Arm, vm_id: str) -> dict[str, Any]:
    reply = arm.get(vm_id + "/instanceView", "2024-07-01")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_virtual_machine_pool_resource_and_lists(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, page_size=2, lowercase_states=0.0)
    sim.add_virtual_machine_pool(SUB, RG, "vm-pool", max_ready_capacity=5, min_ready_capacity=2)
    sim.add_virtual_machine_pool(SUB, "rg-two", "hot-pool", virtual_machine_state="Running", scale_set_name="hot")
    sim.add_container_group_pool(SUB, RG, "myStandbyPool")
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        body = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}/VM-POOL").json()
        assert body["type"] == VMP and body["name"] == "vm-pool"
        assert body["properties"]["elasticityProfile"] == {"maxReadyCapacity": 5, "minReadyCapacity": 2}
        assert body["properties"]["virtualMachineState"] == "Deallocated"
        assert body["properties"]["attachedVirtualMachineScaleSetId"].endswith(
            f"/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/myScaleSet")
        hot = arm.get(f"/subscriptions/{SUB}/resourceGroups/rg-two/providers/{VMP}/hot-pool").json()
        assert hot["properties"]["elasticityProfile"] == {"maxReadyCapacity": 5}
        assert sorted(p["name"] for p in arm.walk(f"/subscriptions/{SUB}/providers/{VMP}", NEW)) == ["hot-pool", "vm-pool"]
        assert [p["name"] for p in arm.walk(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}", NEW)] == ["vm-pool"]
        members = arm.walk(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}/vm-pool/standbyVirtualMachines", NEW)
        assert len(members) == 5 and len({member["name"] for member in members}) == 5
        member = members[0]
        assert member["type"] == f"{VMP}/standbyVirtualMachines" and member["name"].startswith("myScaleSet_")
        assert member["properties"]["provisioningState"] == "Succeeded"
        view = _instance_view(arm, member["properties"]["virtualMachineResourceId"])
        assert view["isVMInStandbyPool"] is True
        assert [status["code"] for status in view["statuses"]] == ["ProvisioningState/succeeded", "PowerState/deallocated"]
        one = arm.get(f"{body['id']}/standbyVirtualMachines/{member['name']}")
        assert one.json() == member and sim.requests[-1].operation == "standby_vm"
        assert _vm_counts(arm, "vm-pool") == {"Deallocated": 5}
        operations = {record.operation for record in sim.requests}
        assert {"pool", "pool_list", "vm_list", "vm_instance_view", "runtime_view"} <= operations
        missing = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/nope/instanceView", "2024-07-01")
        assert missing.status_code == 404 and _error(missing) == "ResourceNotFound"
        sim.delete_pool(SUB, RG, "vm-pool")
        assert arm.get(body["id"]).status_code == 404
        assert arm.get(member["properties"]["virtualMachineResourceId"] + "/instanceView", "2024-07-01").status_code == 404


@pytest.mark.parametrize(("target", "transition", "power", "extra"), [
    ("Deallocated", "Deallocating", "PowerState/deallocated", []),
    ("Running", "Starting", "PowerState/running", []),
    ("Hibernated", "Hibernating", "PowerState/deallocated", ["HibernationState/Hibernated"]),
])
def test_virtual_machine_lifecycle_and_claims(clock: FakeClock, target: str, transition: str, power: str,
                                              extra: list[str]) -> None:
    sim = Simulator(seed=4, clock=clock, create_seconds=(4.0, 4.0), lowercase_states=0.0)
    sim.add_virtual_machine_pool(SUB, RG, "vm-pool", max_ready_capacity=3, running=1, virtual_machine_state=target)
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        list_path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}/vm-pool/standbyVirtualMachines"
        assert _vm_counts(arm, "vm-pool") == {target: 1}
        sim.tick()
        assert _vm_counts(arm, "vm-pool") == {target: 1, "Creating": 2}
        creating = [m for m in arm.walk(list_path, NEW)
                    if _instance_view(arm, m["properties"]["virtualMachineResourceId"])["statuses"][0]["code"] == "ProvisioningState/creating"]
        assert len(creating) == 2
        clock.advance(4)
        sim.tick()
        assert _vm_counts(arm, "vm-pool") == {target: 1, transition: 2}
        clock.advance(2)
        sim.tick()
        assert _vm_counts(arm, "vm-pool") == {target: 3}
        vm_id = creating[0]["properties"]["virtualMachineResourceId"]
        assert [s["code"] for s in _instance_view(arm, vm_id)["statuses"]][1:] == [power, *extra]
        oldest = sim.claim(SUB, RG, "vm-pool", count=1)
        assert len(oldest) == 1 and _vm_counts(arm, "vm-pool") == {target: 2}
        claimed = [m for m in arm.walk(list_path, NEW) if m["name"] == oldest[0]]
        assert claimed == []
        view = _instance_view(arm, vm_id.rsplit("/", 1)[0] + "/" + oldest[0])
        assert view["isVMInStandbyPool"] is False and view["statuses"][1]["code"] == "PowerState/running"
        sim.tick()
        assert _vm_counts(arm, "vm-pool") == {target: 2, "Creating": 1}
        sim.deplete(SUB, RG, "vm-pool")
        sim.tick()
        assert _vm_counts(arm, "vm-pool") == {}


def test_zonal_virtual_machine_pool_runtime_view(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, lowercase_states=0.0)
    sim.add_virtual_machine_pool(SUB, RG, "zonal-vms", max_ready_capacity=4, zones=["1", "2"], forecast=True)
    with SimulatorServer(sim) as server:
        arm = Arm(server)
        path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}/zonal-vms/runtimeViews/latest"
        properties = arm.get(path).json()["properties"]
        assert [s["zone"] for s in properties["instanceCountSummary"]] == [1, 2]
        assert all(s["instanceCountsByState"][4] == {"state": "Deallocated", "count": 2} for s in properties["instanceCountSummary"])
        assert "prediction" in properties and properties["status"]["code"] == "HealthState/healthy"
        old = arm.get(path, OLD).json()["properties"]
        # Microsoft's 2024-03-01 VM runtime view example is zonal; status and prediction came in 2025-03-01
        assert set(old) == {"instanceCountSummary", "provisioningState"}
        assert [s["zone"] for s in old["instanceCountSummary"]] == [1, 2]


def test_a_fault_match_ending_in_dollar_hits_only_paths_ending_so() -> None:
    fault = Fault(match="/providers/Microsoft.StandbyPool/standbyContainerGroupPools$", status=500)
    assert fault.applies_to("/subscriptions/s/resourcegroups/rg/providers/microsoft.standbypool/standbycontainergrouppools", False)
    assert not fault.applies_to("/subscriptions/s/resourcegroups/rg/providers/microsoft.standbypool/standbycontainergrouppools/web", False)
    assert not fault.applies_to(
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.standbypool/standbycontainergrouppools/web/runtimeviews/latest", False)


@pytest.mark.parametrize("api_version", ["2025-10-01", "2026-04-01"])
def test_dynamic_sizing_on_both_pool_kinds_from_2025_10_01(clock: FakeClock, api_version: str) -> None:
    sim = Simulator(clock=clock, lowercase_states=0.0, create_seconds=(3.0, 3.0))
    cg = sim.add_container_group_pool(SUB, RG, "cg-dynamic", max_ready_capacity=20, dynamic_sizing=True)
    static = sim.add_container_group_pool(SUB, RG, "cg-static", max_ready_capacity=20, forecast=True)
    vm = sim.add_virtual_machine_pool(SUB, RG, "vm-dynamic", max_ready_capacity=20, dynamic_sizing=True)
    with SimulatorServer(sim) as server:
        arm = Arm(server)

        def elasticity(provider: str, name: str, version: str) -> dict[str, Any]:
            body = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{provider}/{name}", version).json()
            return dict(body["properties"]["elasticityProfile"])

        assert elasticity(CG, "cg-dynamic", api_version)["dynamicSizing"] == {"enabled": True}
        assert elasticity(CG, "cg-static", api_version)["dynamicSizing"] == {"enabled": False}
        assert elasticity(VMP, "vm-dynamic", api_version)["dynamicSizing"] == {"enabled": True}
        for provider, name in ((CG, "cg-dynamic"), (VMP, "vm-dynamic")):  # no such field before 2025-10-01
            assert "dynamicSizing" not in elasticity(provider, name, NEW)
        listed = arm.walk(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{VMP}", api_version)
        assert [p["properties"]["elasticityProfile"]["dynamicSizing"] for p in listed] == [{"enabled": True}]
        view = arm.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{CG}/cg-dynamic/runtimeViews/latest",
                       api_version).json()["properties"]
        assert "prediction" in view, "dynamic sizing follows a forecast"
    # Azure keeps the hour's forecast demand ready, below max ready capacity, and refills to it after claims.
    for pool in (cg, vm):
        target = shapes.ready_target(pool, sim.wall(clock()))
        assert 1 <= target < 20 and len(pool.members) == target
        assert len(sim.claim(SUB, RG, pool.name, 2)) == 2
    assert len(static.members) == 20
    clock.advance(10)
    sim.tick()
    for pool in (cg, vm):  # the claimed ones replaced, none beyond the target
        assert len(pool.members) == shapes.ready_target(pool, sim.wall(clock()))
