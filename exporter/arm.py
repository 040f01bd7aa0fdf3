"""Azure Resource Manager client: one ``requests.Session``, bearer tokens, paging, retries, typed errors.

Returns plain JSON. The bearer token goes only to the configured ARM origin: a ``nextLink`` that points
anywhere else is refused before any request is made, and the list ends with the pages read.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from .credentials import explain

log = logging.getLogger(__name__)

# How long a failed token request answers for the reads that follow it (those of the same cycle).
CREDENTIAL_FAILURE_HOLD = 0.5

MAX_BODY_BYTES = 32 * 1024 * 1024
TOKEN_REFRESH_MARGIN = 300.0
_EPSILON = 1e-9  # seconds: float rounding in the read budget


class ErrorKind(StrEnum):
    """Why an ARM read failed; the ``kind`` field of log lines and landing page."""

    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    THROTTLED = "throttled"
    SERVER = "server"
    TRANSPORT = "transport"
    BAD_RESPONSE = "bad_response"
    CREDENTIAL = "credential"


class ArmError(Exception):
    """A failed ARM read, with what an operator needs to act on it (never the token)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        operation: str = "",
        retry_after: float | None = None,
        claims: str | None = None,
    ) -> None:
        self.kind = kind
        self.retry_after = retry_after
        self.claims = claims  # a claims challenge from WWW-Authenticate (401), decoded
        self.status = status
        self.code = code
        self.request_id = request_id
        self.operation = operation
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = [f"{self.kind}: {self.message}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class AccessTokenLike(Protocol):
    """What the exporter reads of azure-core's ``AccessToken`` (a read-only named tuple)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    def get_token(self, *scopes: str, claims: str | None = None) -> AccessTokenLike: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 30.0


class RequestObserver(Protocol):
    """Told about every HTTP exchange and budget wait (for self-metrics); must be cheap and thread-safe."""

    def request_done(self, subscription_id: str, operation: str, code: str, remaining_reads: int | None,
                     remaining_global_reads: int | None = None) -> None: ...

    def throttled(self, subscription_id: str) -> None: ...

    def resource_limits(self, subscription_id: str, remaining: dict[str, int]) -> None: ...

    def budget_waited(self, subscription_id: str, seconds: float) -> None: ...

    def next_link_refused(self, subscription_id: str) -> None: ...


class _NullObserver:
    def request_done(self, subscription_id: str, operation: str, code: str, remaining_reads: int | None,
                     remaining_global_reads: int | None = None) -> None:
        return None

    def throttled(self, subscription_id: str) -> None:
        return None

    def resource_limits(self, subscription_id: str, remaining: dict[str, int]) -> None:
        return None

    def budget_waited(self, subscription_id: str, seconds: float) -> None:
        return None

    def next_link_refused(self, subscription_id: str) -> None:
        return None


@dataclass
class _Lane:
    """One subscription's budget: a GCRA token bucket plus the Retry-After pause.

    ``tat`` is the bucket's theoretical arrival time: the bucket is full when ``tat`` is not after now and
    holds ``burst - (tat - now) x rate`` tokens otherwise. ``shifted`` is the total time pauses have pushed
    back the reservations made so far.
    """

    tat: float
    paused_until: float = -math.inf
    shifted: float = 0.0


@dataclass(frozen=True)
class Reservation:
    """A reader's place in its subscription's queue: a departure time, before any later pause."""

    subscription_id: str
    departure: float
    shifted: float  # the lane's ``shifted`` when reserved


class ReadBudget:
    """Client-side token bucket per subscription, plus pauses ordered by ARM's ``Retry-After``.

    Each read reserves its departure at once (first come, first served) and sleeps until then, so no 1 s
    window holds more than ``rate + burst`` reads. A pause pushes every reservation not yet sent back by
    its length and freezes the bucket meanwhile: the bucket does not fill during a pause, and the readers
    queued during it go out afterwards at the budgeted rate, in order. Nothing is sent while a pause lasts.
    ``rate`` 0 means no client-side limit; pauses still apply.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}

    def _lane(self, subscription_id: str, now: float) -> _Lane:
        lane = self._lanes.get(subscription_id)
        if lane is None:
            lane = self._lanes[subscription_id] = _Lane(tat=now)
        return lane

    def update(self, rate: float, burst: int) -> None:
        """Apply a reloaded budget; balances carry over, capped at the new burst. Reservations made stand."""
        with self._lock:
            now = self._clock()
            for lane in self._lanes.values():
                tokens = self._burst - max(0.0, lane.tat - now) * self._rate if self._rate > 0 else float(burst)
                lane.tat = now + (burst - min(tokens, burst)) / rate if rate > 0 else now
            self._rate, self._burst = rate, float(burst)

    def pause(self, subscription_id: str, seconds: float) -> None:
        """Send nothing to this subscription for ``seconds`` (Retry-After); queued reads move back by the extension."""
        with self._lock:
            now = self._clock()
            lane = self._lane(subscription_id, now)
            start, until = max(lane.paused_until, now), now + seconds
            if until <= start:
                return
            extension = until - start
            lane.tat = max(lane.tat, start) + extension
            lane.shifted += extension
            lane.paused_until = until

    def paused_for(self, subscription_id: str) -> float:
        with self._lock:
            lane = self._lanes.get(subscription_id)
            return 0.0 if lane is None else max(0.0, lane.paused_until - self._clock())

    def reserve(self, subscription_id: str) -> Reservation:
        """Take the next place in the subscription's queue."""
        with self._lock:
            now = self._clock()
            lane = self._lane(subscription_id, now)
            departure = now
            if self._rate > 0:
                interval = 1.0 / self._rate
                tat = max(lane.tat, now)
                departure = tat - (self._burst - 1.0) * interval
                if departure - now < _EPSILON:  # within float rounding of now: a token is there
                    departure = now
                lane.tat = tat + interval
            return Reservation(subscription_id, departure, lane.shifted)

    def due(self, reservation: Reservation) -> float:
        """When the reservation may be sent, given the pauses since it was made."""
        with self._lock:
            lane = self._lanes[reservation.subscription_id]
            return max(reservation.departure + lane.shifted - reservation.shifted, lane.paused_until)

    def acquire(self, subscription_id: str) -> float:
        """Wait for this subscription's turn; return the seconds waited."""
        reservation = self.reserve(subscription_id)
        waited, due = 0.0, self.due(reservation)
        while (wait := due - self._clock()) > 0:
            self._sleep(wait)
            waited += wait
            later = self.due(reservation)  # a pause that began meanwhile moves the turn back
            if later == due:
                break
            due = later
        return waited


class TokenCache:
    """Reuses an access token until it is within ``TOKEN_REFRESH_MARGIN`` of expiry.

    A failed token request is logged once (which sources were tried, what would fix it) and answers
    every read for ``CREDENTIAL_FAILURE_HOLD`` seconds: the concurrent reads of one poll cycle share one
    attempt, and one log line, instead of each asking azure-identity again.
    """

    def __init__(
        self, credential: TokenCredential, scope: str, clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: AccessTokenLike | None = None
        self._failure: tuple[float, str] | None = None  # (when, message) of the last failed request

    def get(self, rejected: str | None = None, claims: str | None = None) -> str:
        """The cached token, refreshed near expiry or when it is the ``rejected`` one (ARM answered 401).

        Concurrent readers that all saw the same 401 cause one refresh. A forced refresh passes claims,
        which makes azure-identity skip its own cache.
        """
        with self._lock:
            token = self._token
            force_refresh = rejected is not None and token is not None and token.token == rejected
            if force_refresh or token is None or token.expires_on - self._clock() < TOKEN_REFRESH_MARGIN:
                if self._failure is not None and self._monotonic() - self._failure[0] < CREDENTIAL_FAILURE_HOLD:
                    raise ArmError(ErrorKind.CREDENTIAL, self._failure[1])
                try:
                    token = (
                        self._credential.get_token(self._scope, claims=claims or _fresh_token_claims(self._clock()))
                        if force_refresh
                        else self._credential.get_token(self._scope)
                    )
                except Exception as exc:  # azure-identity raises several unrelated types
                    message = f"cannot get an access token: {_first_line(exc)}"
                    self._failure = (self._monotonic(), message)
                    log.warning("no working Azure credential: every read fails until one works", extra=explain(exc))
                    raise ArmError(ErrorKind.CREDENTIAL, message) from None
                self._token, self._failure = token, None
            return token.token


def _fresh_token_claims(now: float) -> str:
    """The claims ARM's own continuous-access-evaluation challenge asks for: a token issued after ``now``."""
    return json.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(now))}}}, separators=(",", ":"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class ArmClient:
    """Reads ARM resources as JSON; one instance (and one connection pool) per process."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        scope: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        observer: RequestObserver | None = None,
        budget: ReadBudget | None = None,
        session: requests.Session | None = None,
        pool_size: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        origin = urlsplit(endpoint)
        self._origin = (origin.scheme, origin.netloc.lower())
        self._endpoint = f"{origin.scheme}://{origin.netloc}"
        self._tokens = TokenCache(credential, scope)
        self._timeout = timeout
        self._retry = retry
        self._observer: RequestObserver = observer or _NullObserver()
        self._budget = budget or ReadBudget(0, 1, sleep=sleep)
        self._sleep = sleep
        self._session = session or _session_for(self._endpoint)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, api_version: str, *, operation: str, subscription_id: str) -> dict[str, Any]:
        """GET one resource (``path`` relative to the ARM endpoint)."""
        return self._get_json(self._url(path), {"api-version": api_version}, operation, subscription_id)

    def list_all(self, path: str, api_version: str, *, operation: str, subscription_id: str) -> list[Any]:
        """GET a paged collection, following ``nextLink`` on the ARM origin only; returns every item."""
        return list(self.iter_list(path, api_version, operation=operation, subscription_id=subscription_id))

    def iter_list(self, path: str, api_version: str, *, operation: str, subscription_id: str,
                  query: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every item of a paged collection; ``query`` adds parameters to the first request ($filter, $expand)."""
        url: str | None = self._url(path)
        params: dict[str, str] | None = {**(query or {}), "api-version": api_version}
        pages = 0
        while url is not None:
            body = self._get_json(url, params, operation, subscription_id)
            items = body.get("value")
            if not isinstance(items, list):
                raise ArmError(ErrorKind.BAD_RESPONSE, "list response has no 'value' array", operation=operation)
            yield from items  # every item, malformed ones too: the caller names and skips those
            next_link = body.get("nextLink")
            url, params = (self._next_url(next_link, operation, subscription_id) if next_link else None), None
            pages += 1
            if pages > 10_000:
                raise ArmError(ErrorKind.BAD_RESPONSE, "more than 10000 pages: refusing to loop", operation=operation)

    def _url(self, path: str) -> str:
        return self._endpoint + (path if path.startswith("/") else "/" + path)

    def _next_url(self, link: object, operation: str, subscription_id: str) -> str | None:
        """The next page's URL, or None when ``link`` leaves the ARM endpoint: the token never goes there, and the
        list ends at the last page read (counted, and logged without the token)."""
        if isinstance(link, str):
            parts = urlsplit(link)
            if (parts.scheme, parts.netloc.lower()) == self._origin:
                return link
            where = f"{parts.scheme}://{parts.netloc}"
        else:
            where = f"a {type(link).__name__}, not a URL"
        self._observer.next_link_refused(subscription_id)
        log.warning("refusing nextLink: the list ends at the last page read", extra={
            "operation": operation, "subscription_id": subscription_id, "next_link": _one_line(where, 120), "arm_endpoint": self._endpoint})
        return None

    def _get_json(self, url: str, params: dict[str, str] | None, operation: str, subscription_id: str) -> dict[str, Any]:
        attempt = 0
        refreshed_token = False
        while True:
            attempt += 1
            token = self._tokens.get()
            try:
                return self._get_once(url, params, operation, subscription_id, token)
            except ArmError as error:
                if error.kind == ErrorKind.UNAUTHORIZED and not refreshed_token:
                    refreshed_token = True
                    try:
                        token = self._tokens.get(rejected=token, claims=error.claims)
                        return self._get_once(url, params, operation, subscription_id, token)
                    except ArmError as again:
                        error = again
                throttled = error.status == 429
                if throttled:
                    # Every reader of this subscription waits out Retry-After, not just this one, and so does the
                    # next read after a last attempt: nothing goes to the subscription before it has passed. A 429
                    # from Compute (which throttles per resource provider) pauses only the subscription's Compute reads.
                    self._observer.throttled(subscription_id)
                    self._budget.pause(pause_lane(subscription_id, url),
                                       error.retry_after if error.retry_after is not None else self._backoff(attempt))
                if not self._retryable(error) or attempt >= self._retry.attempts:
                    raise error
                delay = 0.0 if throttled else self._backoff(attempt)  # the pause is the wait
                log.debug(
                    "retrying ARM read", extra={"operation": operation, "attempt": attempt, "delay": round(delay, 3), "error": error.kind}
                )
                self._sleep(delay)

    @staticmethod
    def _retryable(error: ArmError) -> bool:
        """Server errors, transport errors and 429s; not a read refused locally because the pause is too long."""
        return error.kind in (ErrorKind.SERVER, ErrorKind.TRANSPORT) or error.status == 429

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._retry.backoff_max, self._retry.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _wait_for_budget(self, subscription_id: str, operation: str, url: str) -> None:
        lane = pause_lane(subscription_id, url)
        paused = max(self._budget.paused_for(subscription_id), self._budget.paused_for(lane))
        if paused > self._retry.retry_after_max:
            # Do not hold a worker for minutes: fail this read now; the pause stays in force.
            raise ArmError(
                ErrorKind.THROTTLED, f"ARM asked this subscription to wait {paused:.0f}s more (Retry-After)", operation=operation,
                retry_after=paused,
            )
        waited = 0.0
        while lane != subscription_id and (provider_pause := self._budget.paused_for(lane)) > 0:
            self._sleep(provider_pause)  # the provider's own Retry-After; the subscription's other reads go on
            waited += provider_pause
        waited += self._budget.acquire(subscription_id)
        if waited > 0:
            self._observer.budget_waited(subscription_id, waited)

    def _get_once(self, url: str, params: dict[str, str] | None, operation: str, subscription_id: str, token: str) -> dict[str, Any]:
        self._wait_for_budget(subscription_id, operation, url)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            with self._session.get(url, params=params, headers=headers, timeout=self._timeout, stream=True, allow_redirects=False) as response:
                body = _read_capped(response)
        except requests.RequestException as exc:
            self._observer.request_done(subscription_id, operation, "error", None)
            raise ArmError(ErrorKind.TRANSPORT, _describe_transport(exc), operation=operation) from None
        self._observer.request_done(
            subscription_id, operation, str(response.status_code),
            _int_header(response.headers.get("x-ms-ratelimit-remaining-subscription-reads")),
            _int_header(response.headers.get("x-ms-ratelimit-remaining-subscription-global-reads")),
        )
        resource_limits = parse_resource_limits(response.headers.get("x-ms-ratelimit-remaining-resource"))
        if resource_limits:
            self._observer.resource_limits(subscription_id, resource_limits)
        request_id = response.headers.get("x-ms-request-id")
        if body is None:
            raise ArmError(
                ErrorKind.BAD_RESPONSE, f"response body larger than {MAX_BODY_BYTES} bytes", status=response.status_code,
                request_id=request_id, operation=operation,
            )
        if response.status_code == 200:
            return _parse_object(body, response, request_id, operation)
        raise _error_from_response(response, body, request_id, operation)


def _session_for(endpoint: str) -> requests.Session:
    """A session that reads proxy and CA-bundle settings from the environment once, not on every request
    (requests' per-request lookup costs about a quarter of a read's CPU)."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


def _read_capped(response: requests.Response) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY_BYTES (refused before reading when announced)."""
    announced = _int_header(response.headers.get("Content-Length"))
    if announced is not None and announced > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _describe_transport(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "request timed out"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({type(exc).__name__})"
    return f"request failed ({type(exc).__name__})"


_PROVIDER_LANES = ("microsoft.compute",)  # providers that throttle on their own: a 429 from them pauses only their reads


def pause_lane(subscription_id: str, url: str) -> str:
    """The budget lane a 429 pauses: ``<subscription>|Microsoft.Compute`` for Compute reads, else the subscription."""
    parts = urlsplit(url).path.lower().split("/providers/")
    provider = parts[-1].split("/", 1)[0] if len(parts) > 1 else ""
    return f"{subscription_id}|{provider}" if provider in _PROVIDER_LANES else subscription_id


def parse_resource_limits(value: str | None) -> dict[str, int]:
    """``x-ms-ratelimit-remaining-resource`` (resource-provider throttling, e.g. Compute):
    ``Microsoft.Compute/HighCostGet3Min;107,Microsoft.Compute/HighCostGet30Min;827`` -> {policy: remaining}.
    Malformed entries are left out."""
    limits: dict[str, int] = {}
    for entry in (value or "").split(","):
        policy, _, remaining = entry.strip().rpartition(";")
        number = _int_header(remaining.strip())
        if policy.strip() and number is not None and number >= 0 and len(policy) <= 200 and policy.isprintable():
            limits[policy.strip()] = number
    return limits


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parse_object(body: bytes, response: requests.Response, request_id: str | None, operation: str) -> dict[str, Any]:
    content_type = response.headers.get("Content-Type", "")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        kind_hint = "HTML" if "html" in content_type.lower() or body.lstrip()[:1] == b"<" else "malformed JSON"
        raise ArmError(
            ErrorKind.BAD_RESPONSE, f"200 response is not JSON ({kind_hint})", status=200, request_id=request_id, operation=operation
        ) from None
    if not isinstance(data, dict):
        raise ArmError(ErrorKind.BAD_RESPONSE, "200 response is not a JSON object", status=200, request_id=request_id, operation=operation)
    return data


_KIND_BY_STATUS = {401: ErrorKind.UNAUTHORIZED, 403: ErrorKind.FORBIDDEN, 404: ErrorKind.NOT_FOUND, 429: ErrorKind.THROTTLED}


def _error_from_response(response: requests.Response, body: bytes, request_id: str | None, operation: str) -> ArmError:
    status = response.status_code
    code, message = None, response.reason or "error"
    try:
        error = json.loads(body).get("error") or {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        if isinstance(error.get("message"), str):
            message = error["message"]
    except (ValueError, AttributeError, RecursionError):
        pass
    kind = _KIND_BY_STATUS.get(status) or (ErrorKind.SERVER if status >= 500 else ErrorKind.BAD_RESPONSE)
    retry_after = _retry_after(response.headers.get("Retry-After")) if kind == ErrorKind.THROTTLED else None
    claims = _claims_challenge(response.headers.get("WWW-Authenticate")) if kind == ErrorKind.UNAUTHORIZED else None
    return ArmError(
        kind, _one_line(message), status=status, code=code, request_id=request_id, operation=operation,
        retry_after=retry_after, claims=claims,
    )


_CLAIMS = re.compile(r'claims="([^"]+)"')


def _claims_challenge(header: str | None) -> str | None:
    """The base64 ``claims`` parameter of a Bearer challenge, decoded (continuous access evaluation)."""
    match = _CLAIMS.search(header or "")
    if match is None:
        return None
    encoded = match.group(1)
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
