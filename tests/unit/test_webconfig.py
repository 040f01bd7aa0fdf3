"""exporter.webconfig: parsing, basic auth, reloading, and real TLS handshakes against generated certificates."""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import shutil
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from exporter.webconfig import (
    TLS12_CIPHER_SUITES,
    WebConfig,
    WebConfigError,
    WebConfigWatcher,
    load_web_config,
)
from tests.support.fakes import FakeClock
from tests.support.tls import TlsFiles, make_tls_files

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webconfig"
TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"  # a TLS section to extend


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def workdir(tmp_path: Path, pki: TlsFiles) -> Path:
    """A fresh directory holding copies of the generated PEM files, for configs to refer to."""
    for source in pki.ca_cert.parent.iterdir():
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


def place(workdir: Path, fixture: str) -> Path:
    """Copy a fixture file into ``workdir``; return the copy's path."""
    target = workdir / Path(fixture).name
    shutil.copy(FIXTURES / fixture, target)
    return target


def write(path: Path, text: str) -> Path:
    """Write ``text`` and move the mtime well past the previous one, so a change is always visible."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    mtime = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(mtime, mtime))
    return path


def basic(user: str, password: str | bytes) -> str:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return "Basic " + base64.b64encode(raw).decode()


# --- parsing -------------------------------------------------------------------------------------


def test_empty_file_means_plain_http_without_auth(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/empty.yml"))
    assert config == WebConfig()
    assert config.ssl_context() is None
    assert config.authorize(None)


def test_tls_defaults(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/tls.yml"))
    assert config.tls is not None
    assert config.tls.client_auth_type == "NoClientCert"
    assert (config.tls.min_version, config.tls.max_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert config.basic_auth_users == {} and config.headers == {}


def test_full_file(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/full.yml"))
    tls = config.tls
    assert tls is not None
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        workdir / "server.crt",
        workdir / "server.key",
        workdir / "ca.crt",
    )
    assert tls.client_auth_type == "RequireAndVerifyClientCert"
    assert tls.curve_preferences == ("X25519", "CurveP256")
    assert config.headers == {
        "X-Frame-Options": "deny",
        "X-Content-Type-Options": "nosniff",
        "X-XSS-Protection": "0",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    }  # the blank Content-Security-Policy is unset
    assert list(config.basic_auth_users) == ["alice"]
    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [cipher["name"] for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"]


def test_ssl_context_is_built_once(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/tls.yml"))
    assert config.ssl_context() is config.ssl_context()


def test_relative_paths_are_relative_to_the_config_file(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "conf").mkdir()
    path = write(
        workdir / "conf" / "web.yml",
        f"tls_server_config:\n  cert_file: ../server.crt\n  key_file: {workdir / 'server.key'}\n",
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    tls = load_web_config(path).tls
    assert tls is not None
    assert tls.cert_file == workdir / "conf" / ".." / "server.crt"
    assert tls.key_file == workdir / "server.key"


@pytest.mark.parametrize(
    ("client_auth_type", "with_ca", "verify_mode"),
    [
        ("NoClientCert", False, ssl.CERT_NONE),
        ("RequestClientCert", False, ssl.CERT_NONE),  # Go would ask but never verify: same access
        ("RequestClientCert", True, ssl.CERT_OPTIONAL),
        ("RequireAnyClientCert", True, ssl.CERT_REQUIRED),
        ("RequireClientCert", True, ssl.CERT_REQUIRED),  # the toolkit's old alias
        ("VerifyClientCertIfGiven", True, ssl.CERT_OPTIONAL),
        ("RequireAndVerifyClientCert", True, ssl.CERT_REQUIRED),
    ],
)
def test_client_auth_type_mapping(
    workdir: Path, client_auth_type: str, with_ca: bool, verify_mode: ssl.VerifyMode
) -> None:
    text = TLS + f"  client_auth_type: {client_auth_type}\n"
    context = load_web_config(
        write(workdir / "web.yml", text + ("  client_ca_file: ca.crt\n" if with_ca else ""))
    ).ssl_context()
    assert context is not None
    assert context.verify_mode == verify_mode


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_tls_versions_are_accepted(workdir: Path) -> None:
    text = TLS + "  min_version: TLS10\n  max_version: TLS11\n"
    context = load_web_config(write(workdir / "web.yml", text)).ssl_context()
    assert context is not None
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


def test_every_cipher_suite_translation_is_known_to_openssl() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for openssl_name in TLS12_CIPHER_SUITES.values():
        context.set_ciphers(openssl_name)


FILE = "<the config file>"
BAD_FILES: list[tuple[str, list[tuple[str, str]]]] = [
    ("unknown_top_key.yml", [("basic_auth_user", "unknown key")]),
    ("unknown_tls_key.yml", [("tls_server_config.client_auth", "unknown key")]),
    ("min_version.yml", [("tls_server_config.min_version", "must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'")]),
    ("min_above_max.yml", [("tls_server_config.max_version", "TLS12 is lower than min_version TLS13")]),
    ("client_auth_type.yml", [("tls_server_config.client_auth_type", "got 'RequireAndVerify'")]),
    ("missing_cert_file.yml", [("tls_server_config.cert_file", "is required")]),
    ("missing_key_file.yml", [("tls_server_config.key_file", "is required")]),
    ("cert_file_not_found.yml", [("tls_server_config.cert_file", "does-not-exist.crt: No such file or directory")]),
    ("cert_file_not_pem.yml", [("tls_server_config.cert_file", "no PEM certificate")]),
    ("key_mismatch.yml", [("tls_server_config.key_file", "cannot use")]),
    (
        "verify_without_ca.yml",
        [("tls_server_config.client_ca_file", "is required when client_auth_type is RequireAndVerifyClientCert")],
    ),
    (
        "require_any_without_ca.yml",
        [("tls_server_config.client_ca_file", "cannot require a client certificate without verifying it")],
    ),
    ("ca_without_client_auth.yml", [("tls_server_config.client_ca_file", "client_auth_type is NoClientCert")]),
    ("ca_not_pem.yml", [("tls_server_config.client_ca_file", "no PEM certificate")]),
    ("cipher_suite.yml", [("tls_server_config.cipher_suites[0]", "unknown name 'TLS_RSA_WITH_RC4_128_SHA'")]),
    ("curve.yml", [("tls_server_config.curve_preferences[1]", "unknown name 'CurveP999'")]),
    ("prefer_not_bool.yml", [("tls_server_config.prefer_server_cipher_suites", "must be true or false")]),
    ("tls_not_mapping.yml", [("tls_server_config", "must be a mapping, got list")]),
    ("inline_cert.yml", [("tls_server_config.cert", "use cert_file"), ("tls_server_config.cert_file", "is required")]),
    ("client_allowed_sans.yml", [("tls_server_config.client_allowed_sans", "not supported")]),
    ("rate_limit.yml", [("rate_limit", "not supported")]),
    ("header_name.yml", [("http_server_config.headers.X-Powered-By", "cannot be configured")]),
    ("header_value.yml", [("http_server_config.headers.X-Frame-Options", "must be one of deny, sameorigin")]),
    ("http2_not_bool.yml", [("http_server_config.http2", "must be true or false")]),
    ("plaintext_password.yml", [("basic_auth_users.alice", "must be a bcrypt hash")]),
    ("user_with_colon.yml", [("basic_auth_users.alice:admin", "must not contain ':'")]),
    ("not_yaml.yml", [(FILE, "not valid YAML")]),
    ("top_level_list.yml", [("(top level)", "must be a mapping, got list")]),
    (
        "many_problems.yml",
        [
            ("tls_server_config.key_file", "is required"),
            ("tls_server_config.client_ca_file", "is required when client_auth_type is VerifyClientCertIfGiven"),
            ("tls_server_config.min_version", "got 'TLS9'"),
            ("http_server_config.headers.X-Content-Type-Options", "must be one of nosniff"),
            ("basic_auth_users.alice", "must be a bcrypt hash"),
        ],
    ),
]


@pytest.mark.parametrize(("fixture", "expected"), BAD_FILES, ids=[name for name, _ in BAD_FILES])
def test_bad_file(workdir: Path, fixture: str, expected: list[tuple[str, str]]) -> None:
    path = place(workdir, f"bad/{fixture}")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    problems = caught.value.problems
    assert len(problems) == len(expected), problems
    for where, fragment in expected:
        prefix = f"{path if where == FILE else where}: "
        assert any(p.startswith(prefix) and fragment in p for p in problems), (where, fragment, problems)
    assert str(caught.value) == "invalid web configuration:\n" + "".join(f"  - {p}\n" for p in problems).rstrip("\n")


def test_every_bad_fixture_is_tested() -> None:
    assert sorted(p.name for p in (FIXTURES / "bad").iterdir()) == sorted(name for name, _ in BAD_FILES)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="web.yml: cannot read: No such file or directory"):
        load_web_config(tmp_path / "web.yml")


def test_plaintext_password_is_not_echoed(workdir: Path) -> None:
    with pytest.raises(WebConfigError) as caught:
        load_web_config(place(workdir, "bad/plaintext_password.yml"))
    assert "hunter2" not in str(caught.value)


def test_encrypted_key_is_rejected_without_prompting(workdir: Path) -> None:
    key = serialization.load_pem_private_key((workdir / "server.key").read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    (workdir / "encrypted.key").write_bytes(encrypted)
    path = write(workdir / "web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: encrypted.key\n")
    with pytest.raises(
        WebConfigError, match=r"tls_server_config\.key_file: .*encrypted private keys are not supported"
    ):
        load_web_config(path)


# --- basic auth ----------------------------------------------------------------------------------


@pytest.fixture
def users_config(workdir: Path) -> WebConfig:
    return load_web_config(place(workdir, "good/basic_auth.yml"))


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (basic("alice", "alice-secret"), True),
        (basic("bob", "bob-secret"), True),  # a $2y$ hash, as htpasswd writes
        (basic("alice", "alice-secret").replace("Basic", "basic"), True),
        (basic("alice", "wrong"), False),
        (basic("alice", "bob-secret"), False),
        (basic("Alice", "alice-secret"), False),
        (basic("mallory", "alice-secret"), False),
        (basic("alice", ""), False),
        (basic("alice", "x" * 100), False),  # bcrypt refuses passwords over 72 bytes
        (None, False),
        ("", False),
        ("Basic", False),
        ("Bearer abc", False),
        ("Basic !!!", False),
        ("Basic " + base64.b64encode(b"no colon").decode(), False),
        ("Basic " + base64.b64encode(b"\xff:alice-secret").decode(), False),
        ("Basic é", False),
    ],
)
def test_authorize(users_config: WebConfig, header: str | None, allowed: bool) -> None:
    assert users_config.authorize(header) is allowed


def test_no_users_allows_everything(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/tls.yml"))
    assert config.authorize(None) and config.authorize("Bearer x")


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Hashes bcrypt.checkpw was called with."""
    calls: list[bytes] = []
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_successful_logins_are_cached(workdir: Path, users_config: WebConfig, checkpw_calls: list[bytes]) -> None:
    good, bad = basic("alice", "alice-secret"), basic("alice", "wrong")
    assert users_config.authorize(good) and len(checkpw_calls) == 1
    assert users_config.authorize(good) and len(checkpw_calls) == 1
    assert not users_config.authorize(bad) and len(checkpw_calls) == 2  # failures always pay bcrypt
    assert not users_config.authorize(bad) and len(checkpw_calls) == 3
    assert users_config.authorize(good) and len(checkpw_calls) == 3
    assert users_config.authorize(basic("bob", "bob-secret")) and len(checkpw_calls) == 4
    reloaded = load_web_config(workdir / "basic_auth.yml")
    assert reloaded.authorize(good) and len(checkpw_calls) == 5  # a new config starts with an empty cache


def test_unknown_users_pay_bcrypt_at_the_configured_cost(users_config: WebConfig, checkpw_calls: list[bytes]) -> None:
    assert not users_config.authorize(basic("mallory", "alice-secret"))
    assert not users_config.authorize(basic("mallory", "alice-secret"))
    assert len(checkpw_calls) == 2
    assert checkpw_calls[0] == checkpw_calls[1]
    assert checkpw_calls[0] not in users_config.basic_auth_users.values()
    assert checkpw_calls[0].startswith(b"$2b$04$")


# --- reloading -----------------------------------------------------------------------------------


def test_watcher_reloads_a_changed_file_at_most_once_per_interval(workdir: Path) -> None:
    clock = FakeClock()
    path = place(workdir, "good/basic_auth.yml")
    watcher = WebConfigWatcher(path, check_interval=1.0, clock=clock)
    first = watcher.current()
    assert set(first.basic_auth_users) == {"alice", "bob"}
    write(path, "basic_auth_users:\n  alice: " + first.basic_auth_users["alice"].decode() + "\n")
    clock.now += 0.5
    assert watcher.current() is first
    clock.now += 0.5
    second = watcher.current()
    assert set(second.basic_auth_users) == {"alice"}
    clock.now += 5
    assert watcher.current() is second
    assert (watcher.reloads_total, watcher.reload_failures_total) == (1, 0)


def test_watcher_keeps_the_last_good_config_on_a_bad_change(workdir: Path) -> None:
    clock = FakeClock()
    errors: list[WebConfigError] = []
    path = place(workdir, "good/tls.yml")
    watcher = WebConfigWatcher(path, clock=clock, on_error=errors.append)
    good = watcher.current()
    write(path, TLS + "  min_version: TLS99\n")
    clock.now += 1
    assert watcher.current() is good
    assert [e.problems for e in errors] == [
        ["tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS99'"]
    ]
    clock.now += 1
    assert watcher.current() is good
    assert len(errors) == 1  # reported once per change, not on every check
    write(path, TLS + "  min_version: TLS13\n")
    clock.now += 1
    fixed = watcher.current()
    assert fixed.tls is not None and fixed.tls.min_version == ssl.TLSVersion.TLSv1_3
    assert (watcher.reloads_total, watcher.reload_failures_total) == (1, 1)


def test_watcher_reloads_when_a_certificate_changes(workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    clock = FakeClock()
    watcher = WebConfigWatcher(place(workdir, "good/tls.yml"), clock=clock)
    before = watcher.current().ssl_context()
    renewed = make_tls_files(tmp_path_factory.mktemp("renewed"))
    write(workdir / "server.crt", renewed.server_cert.read_text())
    write(workdir / "server.key", renewed.server_key.read_text())
    clock.now += 1
    after = watcher.current().ssl_context()
    assert after is not None and after is not before
    assert watcher.reloads_total == 1


def test_watcher_retries_when_a_missing_file_appears(workdir: Path) -> None:
    clock = FakeClock()
    errors: list[WebConfigError] = []
    path = place(workdir, "good/tls.yml")
    watcher = WebConfigWatcher(path, clock=clock, on_error=errors.append)
    write(path, "tls_server_config:\n  cert_file: new.crt\n  key_file: server.key\n")
    clock.now += 1
    watcher.current()
    assert watcher.reload_failures_total == 1 and "new.crt" in str(errors[0])
    shutil.copy(workdir / "server.crt", workdir / "new.crt")
    clock.now += 1
    tls = watcher.current().tls
    assert tls is not None and tls.cert_file == workdir / "new.crt"
    assert (watcher.reloads_total, watcher.reload_failures_total) == (1, 1)


def test_watcher_rejects_a_bad_initial_file(workdir: Path) -> None:
    with pytest.raises(WebConfigError, match="tls_server_config.min_version"):
        WebConfigWatcher(place(workdir, "bad/min_version.yml"))


def test_watcher_is_thread_safe(workdir: Path) -> None:
    path = place(workdir, "good/basic_auth.yml")
    texts = [(FIXTURES / "good/empty.yml").read_text(), path.read_text()]
    watcher = WebConfigWatcher(path, check_interval=0)
    stop = threading.Event()
    failures: list[BaseException] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                assert isinstance(watcher.current(), WebConfig)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for index in range(21):
        staged = write(workdir / "staged.yml", texts[index % 2])
        os.replace(staged, path)  # atomically, as config management tools do
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert watcher.current().basic_auth_users == {}  # the last text
    assert watcher.reloads_total >= 1 and watcher.reload_failures_total == 0


# --- real TLS ------------------------------------------------------------------------------------


class _OkHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    """Wraps every accepted socket with the context and records each handshake's outcome."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.handshakes: queue.Queue[ssl.SSLError | None] = queue.Queue()
        super().__init__(("127.0.0.1", 0), _OkHandler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """Runs in the connection's thread: handshake, then serve."""
        request.settimeout(5)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except ssl.SSLError as exc:
            self.handshakes.put(exc)
            return
        self.handshakes.put(None)
        with connection:
            _OkHandler(connection, client_address, self)

    def next_handshake(self) -> ssl.SSLError | None:
        return self.handshakes.get(timeout=5)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def serving(config: WebConfig) -> Iterator[_TlsServer]:
    context = config.ssl_context()
    assert context is not None
    server = _TlsServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(url: str, **kwargs: object) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False  # no proxies from the environment
        return session.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]


def client_context(
    pki: TlsFiles, *, maximum_version: ssl.TLSVersion | None = None, curve: str | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if maximum_version is not None:
        context.maximum_version = maximum_version
    if curve is not None:
        context.set_ecdh_curve(curve)
    return context


def handshake(server: _TlsServer, context: ssl.SSLContext) -> tuple[str | None, str]:
    """Connect with ``context``; (TLS version, cipher) on success, ssl.SSLError otherwise."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return tls.version(), cipher[0]


def test_https_with_the_ca(workdir: Path, pki: TlsFiles) -> None:
    with serving(load_web_config(place(workdir, "good/tls.yml"))) as server:
        response = get(server.url, verify=str(pki.ca_cert))
        assert (response.status_code, response.text) == (200, "ok\n")
        assert server.next_handshake() is None


def test_mutual_tls(workdir: Path, pki: TlsFiles) -> None:
    with serving(load_web_config(place(workdir, "good/full.yml"))) as server:
        with pytest.raises(requests.exceptions.ConnectionError):
            get(server.url, verify=str(pki.ca_cert))
        refused = server.next_handshake()
        assert refused is not None and refused.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"

        assert get(server.url, verify=str(pki.ca_cert), cert=pki.client_pair).status_code == 200
        assert server.next_handshake() is None

        with pytest.raises(requests.exceptions.ConnectionError):
            get(server.url, verify=str(pki.ca_cert), cert=pki.wrong_client_pair)
        refused = server.next_handshake()
        assert refused is not None and refused.reason == "CERTIFICATE_VERIFY_FAILED"


def test_verify_client_cert_if_given(workdir: Path, pki: TlsFiles) -> None:
    text = TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"
    with serving(load_web_config(write(workdir / "web.yml", text))) as server:
        assert get(server.url, verify=str(pki.ca_cert)).status_code == 200
        assert get(server.url, verify=str(pki.ca_cert), cert=pki.client_pair).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            get(server.url, verify=str(pki.ca_cert), cert=pki.wrong_client_pair)


def test_min_version_tls13_refuses_a_tls12_client(workdir: Path, pki: TlsFiles) -> None:
    text = TLS + "  min_version: TLS13\n"
    with serving(load_web_config(write(workdir / "web.yml", text))) as server:
        with pytest.raises(ssl.SSLError):
            handshake(server, client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2))
        assert server.next_handshake() is not None
        assert handshake(server, client_context(pki))[0] == "TLSv1.3"


def test_max_version_and_cipher_suites_apply_to_tls12(workdir: Path, pki: TlsFiles) -> None:
    text = TLS + "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n"
    with serving(load_web_config(write(workdir / "web.yml", text))) as server:
        assert handshake(server, client_context(pki)) == ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305")


def test_a_single_curve_is_enforced(workdir: Path, pki: TlsFiles) -> None:
    text = TLS + "  curve_preferences: [CurveP384]\n"
    with serving(load_web_config(write(workdir / "web.yml", text))) as server:
        assert handshake(server, client_context(pki, curve="secp384r1"))[0] == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            handshake(server, client_context(pki, curve="prime256v1"))
