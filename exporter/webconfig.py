"""``--web.config.file``: TLS, basic auth and response headers, in the Prometheus exporter-toolkit format.

Format: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md.
Relative file names are relative to the web config file's directory. Every problem (unknown key,
bad value, unreadable or unusable file) is collected with its dotted path and raised together as
one :class:`WebConfigError`.

How the toolkit's Go settings map onto Python's :mod:`ssl`:

* ``client_auth_type`` -> ``SSLContext.verify_mode``:

  - ``NoClientCert`` (default): ``CERT_NONE``. Setting ``client_ca_file`` with it is an error, as in
    the toolkit.
  - ``RequestClientCert``: Go asks for a certificate and never verifies it, which grants nothing, so
    without ``client_ca_file`` this is ``CERT_NONE``. With ``client_ca_file`` it is ``CERT_OPTIONAL``:
    a certificate that is presented must verify against the CA (stricter than Go).
  - ``RequireAnyClientCert`` (and its old alias ``RequireClientCert``): ``ssl`` cannot require a
    certificate without verifying it, so ``client_ca_file`` is required and this is ``CERT_REQUIRED``,
    i.e. the same as ``RequireAndVerifyClientCert`` (stricter than Go).
  - ``VerifyClientCertIfGiven``: ``CERT_OPTIONAL``; ``client_ca_file`` required. Exact.
  - ``RequireAndVerifyClientCert``: ``CERT_REQUIRED``; ``client_ca_file`` required. Exact.

* ``min_version``/``max_version`` (``TLS10`` ... ``TLS13``; default ``TLS12``/``TLS13``) ->
  ``minimum_version``/``maximum_version``. OpenSSL's security level may still refuse TLS 1.0/1.1.
* ``cipher_suites`` takes Go's names (``tls.CipherSuites()``). The TLS 1.2 ones are translated to
  OpenSSL names and applied in order with ``set_ciphers``; TLS 1.3 names are accepted and have no
  effect (TLS 1.3 suites are not configurable in Go either).
* ``prefer_server_cipher_suites`` (default true) -> ``OP_CIPHER_SERVER_PREFERENCE`` (TLS <= 1.2).
* ``curve_preferences`` takes ``CurveP256``, ``CurveP384``, ``CurveP521``, ``X25519``. ``ssl`` can set
  one group only (``set_ecdh_curve``), so a single entry is enforced exactly; with several entries
  OpenSSL's default groups are used (they include all four, X25519 and P-256 first).
* ``http_server_config.http2`` is accepted and has no effect: the server speaks HTTP/1.1 only.
* ``http_server_config.headers`` allows the toolkit's five headers only (``X-Frame-Options``:
  ``deny``/``sameorigin``, ``X-Content-Type-Options``: ``nosniff``); a blank value unsets a header.
* ``basic_auth_users`` values are bcrypt hashes (``$2a$``, ``$2b$``, ``$2y$``).
* Not supported, and rejected rather than ignored (ignoring them would weaken what the operator
  asked for): inline ``cert``/``key``/``client_ca``, ``client_allowed_sans``, ``rate_limit``.

The HTTP server starts TLS on each accepted connection with ``watcher.current().ssl_context()``
(None: plain HTTP), checks basic auth with :class:`exporter.basicauth.Authenticator`, and adds
``headers`` to every response. Every file is read through :mod:`exporter.boundedfile` (regular files
of at most 1 MiB, YAML with an alias budget), and only off the request path (:class:`WebConfigWatcher`).
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .boundedfile import FileProblem, Problems, ProblemsError, load_yaml, read_bounded, short_repr

log = logging.getLogger(__name__)

CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_CLIENT_AUTH_ALIASES = {"RequireClientCert": "RequireAnyClientCert"}
_CA_REQUIRED = ("RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
_VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,  # CERT_NONE without a CA, see the module docstring
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's tls.CipherSuites() for TLS <= 1.2 -> OpenSSL names.
TLS12_CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_CIPHER_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

# Go curve names -> OpenSSL group names.
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}

# Headers the toolkit lets operators set, with their allowed values (empty: any value).
HEADERS: dict[str, tuple[str, ...]] = {
    "Content-Security-Policy": (),
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
}

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_KEYS = ("headers", "http2")
_UNSUPPORTED = {
    "rate_limit": "not supported by this exporter (rate-limit with a reverse proxy)",
    "tls_server_config.cert": "inline certificates are not supported: use cert_file",
    "tls_server_config.key": "inline keys are not supported: use key_file",
    "tls_server_config.client_ca": "inline CA certificates are not supported: use client_ca_file",
    "tls_server_config.client_allowed_sans": "not supported by this exporter (use a dedicated client CA instead)",
}
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


class WebConfigError(ProblemsError):
    """One or more web configuration problems, each prefixed with its dotted path."""

    title = "invalid web configuration"


@dataclass(frozen=True)
class TlsSettings:
    """``tls_server_config``, with file names resolved and names validated."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    cipher_suites: tuple[str, ...] = ()  # Go names
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()  # Go names


class _Runtime:
    """Per-config mutable state: the SSL context, built once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.context: ssl.SSLContext | None = None


@dataclass(frozen=True)
class WebConfig:
    """A loaded web config. ``WebConfig()`` is the no-file default: plain HTTP, no auth, no headers.

    Basic auth is checked by :class:`exporter.basicauth.Authenticator` against ``basic_auth_users``.
    """

    tls: TlsSettings | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    _runtime: _Runtime = field(default_factory=_Runtime, init=False, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side context (built once, then cached), or None without TLS; WebConfigError if unusable."""
        if self.tls is None:
            return None
        with self._runtime.lock:
            if self._runtime.context is None:
                self._runtime.context = _build_context(self.tls)
            return self._runtime.context


def _refuse_password() -> bytes:
    raise ValueError("encrypted private keys are not supported")


def _build_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server-side SSL context for ``tls``; WebConfigError when the files cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    problems = []
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_refuse_password)
    except (OSError, ValueError) as exc:
        problems.append(f"tls_server_config.key_file: cannot use {tls.key_file} with cert_file {tls.cert_file}: {exc}")
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ValueError) as exc:
            problems.append(
                f"tls_server_config.client_ca_file: no usable CA certificate in {tls.client_ca_file}: {exc}"
            )
    if problems:
        raise WebConfigError(problems)
    if tls.client_auth_type == "RequestClientCert" and tls.client_ca_file is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    if tls12 := [TLS12_CIPHER_SUITES[name] for name in tls.cipher_suites if name in TLS12_CIPHER_SUITES]:
        context.set_ciphers(":".join(tls12))
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if len(tls.curve_preferences) == 1:
        context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
    return context


_Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> _Stamp | None:
    """What identifies a file's version: inode, size, mtime, ctime; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _key(key: object) -> str:
    """A mapping key for a dotted path: short keys as they are, others through a size-limited repr."""
    return key if isinstance(key, str) and len(key) <= 60 else short_repr(key)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Loader(Problems):
    """Reads one web config file, collecting problems and the stamp of every file read (taken before reading)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.stamps: dict[Path, _Stamp | None] = {}

    def load(self) -> WebConfig | None:
        """The validated config, or None with ``problems`` filled in."""
        self.stamps[self.path] = _stamp(self.path)
        try:
            text = read_bounded(self.path)
        except FileProblem as exc:
            self.problems.append(str(exc))
            return None
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            self.problem(str(self.path), "not valid YAML: " + str(exc).replace("\n", " "))
            return None
        except RecursionError:
            self.problem(str(self.path), "not valid YAML: nested too deeply")
            return None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem("(top level)", f"must be a mapping, got {_type_name(data)}")
            return None
        self.check_keys(data, "", _TOP_KEYS)
        tls = self.tls(data.get("tls_server_config"))
        headers = self.headers(data.get("http_server_config"))
        users = self.users(data.get("basic_auth_users"))
        if self.problems:
            return None
        config = WebConfig(tls, MappingProxyType(users), MappingProxyType(headers))
        try:
            config.ssl_context()
        except WebConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        return config

    def check_keys(self, data: dict[Any, Any], prefix: str, allowed: tuple[str, ...]) -> None:
        for key in data:
            where = f"{prefix}.{_key(key)}" if prefix else _key(key)
            if where in _UNSUPPORTED:
                self.problem(where, _UNSUPPORTED[where])
            elif key not in allowed:
                self.problem(where, f"unknown key (allowed: {', '.join(allowed)})")

    def mapping(self, raw: object, where: str) -> dict[Any, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.problem(where, f"must be a mapping, got {_type_name(raw)}")
            return None
        return raw

    def choice(self, data: dict[Any, Any], prefix: str, key: str, allowed: Collection[str], default: str) -> str | None:
        """The value, ``default`` when absent, None (problem recorded) when not one of ``allowed``."""
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            self.problem(f"{prefix}.{key}", f"must be one of {', '.join(allowed)}, got {short_repr(value)}")
            return None
        return value

    def boolean(self, data: dict[Any, Any], prefix: str, key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{prefix}.{key}", f"must be true or false, got {short_repr(value)}")
            return default
        return value

    def names(self, data: dict[Any, Any], prefix: str, key: str, allowed: Collection[str]) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(f"{prefix}.{key}", f"must be a list, got {_type_name(value)}")
            return ()
        for index, item in enumerate(value):
            if not isinstance(item, str) or item not in allowed:
                self.problem(f"{prefix}.{key}[{index}]", f"unknown name {short_repr(item)} (known: {', '.join(allowed)})")
        return tuple(item for item in value if isinstance(item, str) and item in allowed)

    def pem_file(self, data: dict[Any, Any], prefix: str, key: str, marker: bytes, what: str) -> Path | None:
        """Resolve a file name against the config file's directory and check the file holds ``marker``."""
        value = data.get(key)
        if value is None:
            return None
        where = f"{prefix}.{key}"
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"must be a file name, got {short_repr(value)}")
            return None
        path = self.path.parent / value
        self.stamps[path] = _stamp(path)
        try:
            content = read_bounded(path)
        except FileProblem as exc:
            self.problem(where, str(exc))
            return None
        if marker not in content:
            self.problem(where, f"no PEM {what} in {path}")
            return None
        return path

    def tls(self, raw: object) -> TlsSettings | None:
        p = "tls_server_config"
        data = self.mapping(raw, p)
        if data is None:
            return None
        self.check_keys(data, p, _TLS_KEYS)
        for key in ("cert_file", "key_file"):
            if data.get(key) is None:
                self.problem(f"{p}.{key}", "is required when tls_server_config is set")
        cert_file = self.pem_file(data, p, "cert_file", b"-----BEGIN CERTIFICATE-----", "certificate")
        key_file = self.pem_file(data, p, "key_file", b"PRIVATE KEY-----", "private key")
        client_ca_file = self.pem_file(data, p, "client_ca_file", b"-----BEGIN CERTIFICATE-----", "certificate")
        auth = self.choice(data, p, "client_auth_type", CLIENT_AUTH_TYPES + tuple(_CLIENT_AUTH_ALIASES), "NoClientCert")
        auth = _CLIENT_AUTH_ALIASES.get(auth, auth) if auth is not None else None
        ca_given = data.get("client_ca_file") is not None
        if auth == "NoClientCert" and ca_given:
            self.problem(
                f"{p}.client_ca_file",
                "set, but client_auth_type is NoClientCert (set client_auth_type, e.g. RequireAndVerifyClientCert)",
            )
        elif auth in _CA_REQUIRED and not ca_given:
            why = (
                " (Python's ssl cannot require a client certificate without verifying it)"
                if auth == "RequireAnyClientCert"
                else ""
            )
            self.problem(f"{p}.client_ca_file", f"is required when client_auth_type is {auth}{why}")
        min_name = self.choice(data, p, "min_version", tuple(TLS_VERSIONS), "TLS12")
        max_name = self.choice(data, p, "max_version", tuple(TLS_VERSIONS), "TLS13")
        if min_name is not None and max_name is not None and TLS_VERSIONS[min_name] > TLS_VERSIONS[max_name]:
            self.problem(f"{p}.max_version", f"{max_name} is lower than min_version {min_name}")
        cipher_suites = self.names(data, p, "cipher_suites", (*TLS12_CIPHER_SUITES, *TLS13_CIPHER_SUITES))
        prefer = self.boolean(data, p, "prefer_server_cipher_suites", True)
        curves = self.names(data, p, "curve_preferences", tuple(CURVES))
        if cert_file is None or key_file is None or auth is None or min_name is None or max_name is None:
            return None
        return TlsSettings(
            cert_file=cert_file,
            key_file=key_file,
            client_auth_type=auth,
            client_ca_file=client_ca_file,
            min_version=TLS_VERSIONS[min_name],
            max_version=TLS_VERSIONS[max_name],
            cipher_suites=cipher_suites,
            prefer_server_cipher_suites=prefer,
            curve_preferences=curves,
        )

    def headers(self, raw: object) -> dict[str, str]:
        p = "http_server_config"
        data = self.mapping(raw, p)
        if data is None:
            return {}
        self.check_keys(data, p, _HTTP_KEYS)
        self.boolean(data, p, "http2", True)
        configured = self.mapping(data.get("headers"), f"{p}.headers") or {}
        headers: dict[str, str] = {}
        for name, value in configured.items():
            where = f"{p}.headers.{_key(name)}"
            if name not in HEADERS:
                self.problem(where, f"cannot be configured (allowed: {', '.join(HEADERS)})")
                continue
            if value is None or value == "":
                continue  # blank: unset
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.problem(where, f"must be a string, got {_type_name(value)}")
                continue
            text = str(value)
            if "\r" in text or "\n" in text:
                self.problem(where, "must not contain line breaks")
            elif HEADERS[name] and text not in HEADERS[name]:
                self.problem(where, f"must be one of {', '.join(HEADERS[name])}, got {short_repr(text)}")
            else:
                headers[name] = text
        return headers

    def users(self, raw: object) -> dict[str, bytes]:
        p = "basic_auth_users"
        data = self.mapping(raw, p) or {}
        users: dict[str, bytes] = {}
        for user, hashed in data.items():
            where = f"{p}.{_key(user)}"
            if not isinstance(user, str) or not user:
                self.problem(where, "user name must be a non-empty string")
            elif ":" in user:
                self.problem(
                    where, "user name must not contain ':' (Basic auth splits user and password at the first ':')"
                )
            elif (
                not isinstance(hashed, str)
                or not (match := _BCRYPT_HASH.match(hashed))
                or not 4 <= int(match.group(1)) <= 31
            ):
                # The value is not echoed: it may well be a plain-text password.
                self.problem(where, "must be a bcrypt hash such as $2y$10$... (htpasswd -nBC 10 \"\" | tr -d ':\\n')")
            else:
                users[user] = hashed.encode("ascii")
        return users


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate a web config file (and the files it names); WebConfigError lists every problem."""
    loader = _Loader(Path(path))
    config = loader.load()
    if config is None:
        raise WebConfigError(loader.problems)
    return config


class WebConfigWatcher:
    """The last good web config, re-read off the request path.

    ``current()`` never touches the disk: requests always get the last good copy. ``check()`` re-reads
    the file when it, or a certificate, key or CA file it names, changed inode, size, mtime or ctime,
    and ``check(force=True)`` (SIGHUP) re-reads it anyway. ``start()`` runs ``check()`` in a thread
    once per ``check_interval``; ``request_reload()`` wakes that thread for a forced check. A bad new
    file keeps the last good config and calls ``on_error`` (once per change, not on every check);
    a good one calls ``on_reload``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval: float = 1.0,
        on_error: Callable[[WebConfigError], None] | None = None,
        on_reload: Callable[[WebConfig], None] | None = None,
    ) -> None:
        self._path = Path(path)
        self._check_interval = check_interval
        self._on_error = on_error
        self._on_reload = on_reload
        self._lock = threading.Lock()  # one check at a time
        self._wake = threading.Event()
        self._force = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._reloads = 0
        self._failures = 0
        loader = _Loader(self._path)
        config = loader.load()
        if config is None:
            raise WebConfigError(loader.problems)
        self._config = config
        self._stamps = loader.stamps

    @property
    def path(self) -> Path:
        return self._path

    @property
    def reloads_total(self) -> int:
        """Successful reloads after the initial load."""
        return self._reloads

    @property
    def reload_failures_total(self) -> int:
        return self._failures

    def current(self) -> WebConfig:
        """The last good config (no I/O, no lock)."""
        return self._config

    def check(self, force: bool = False) -> bool:
        """Re-read the files if one changed (or ``force``); True when a new config was installed."""
        with self._lock:
            if not force and all(_stamp(path) == stamp for path, stamp in self._stamps.items()):
                return False
            loader = _Loader(self._path)
            config = loader.load()
            self._stamps = loader.stamps  # also after a failure: retry only when something changes again
            if config is None:
                self._failures += 1
                error: WebConfigError | None = WebConfigError(loader.problems)
            else:
                self._config = config
                self._reloads += 1
                error = None
        if error is not None:
            if self._on_error is not None:
                self._on_error(error)
            return False
        if self._on_reload is not None:
            self._on_reload(config)  # type: ignore[arg-type]  # set when error is None
        return True

    def request_reload(self) -> None:
        """Re-read the files soon, changed or not (SIGHUP); returns at once."""
        self._force = True
        self._wake.set()

    def start(self) -> None:
        """Check the files once per ``check_interval`` in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="web-config", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._check_interval)
            self._wake.clear()
            if self._stopped.is_set():
                return
            force, self._force = self._force, False
            try:
                self.check(force)
            except Exception:  # keep watching whatever happened to one check
                log.exception("web configuration check failed")
