"""exporter.webconfig: parsing, bounded reading, reloading off the request path, and real TLS handshakes."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
from tests.support.hostile import yaml_bomb
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


# --- parsing -------------------------------------------------------------------------------------


def test_empty_file_means_plain_http_without_auth(workdir: Path) -> None:
    config = load_web_config(place(workdir, "good/empty.yml"))
    assert config == WebConfig()
    assert config.ssl_context() is None
    assert config.basic_auth_users == {}


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
    ("cert_file_not_found.yml", [("tls_server_config.cert_file", "does-not-exist.crt: file not found")]),
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
    with pytest.raises(WebConfigError, match="web.yml: file not found"):
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


# --- bounded reading -----------------------------------------------------------------------------


def test_a_fifo_is_refused_at_once(workdir: Path) -> None:
    path = workdir / "web.yml"
    os.mkfifo(path)
    with pytest.raises(WebConfigError, match="web.yml: cannot read: not a regular file \\(a FIFO\\)"):
        load_web_config(path)


def test_a_device_and_an_oversized_file_are_refused(workdir: Path) -> None:
    with pytest.raises(WebConfigError, match="not a regular file \\(a character device\\)"):
        load_web_config("/dev/zero")
    big = workdir / "web.yml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(WebConfigError, match="2000000 bytes, more than the 1 MiB allowed"):
        load_web_config(big)


def test_a_fifo_as_certificate_is_refused(workdir: Path) -> None:
    os.mkfifo(workdir / "fifo.crt")
    path = write(workdir / "web.yml", "tls_server_config:\n  cert_file: fifo.crt\n  key_file: server.key\n")
    with pytest.raises(WebConfigError, match="tls_server_config.cert_file: .*fifo.crt: cannot read: not a regular file"):
        load_web_config(path)


def test_an_alias_bomb_is_refused_and_values_are_quoted_short(workdir: Path) -> None:
    bomb = write(workdir / "web.yml", yaml_bomb(9, "http_server_config:\n  http2: *{last}\n"))
    with pytest.raises(WebConfigError, match="not valid YAML: more than 100000 nodes once aliases are expanded"):
        load_web_config(bomb)
    small = write(workdir / "web.yml", yaml_bomb(4, "http_server_config:\n  http2: *{last}\n"))  # 6,643 nodes: allowed
    with pytest.raises(WebConfigError) as caught:
        load_web_config(small)
    problem = next(p for p in caught.value.problems if p.startswith("http_server_config.http2"))
    assert len(problem) < 120, problem  # the value is quoted through a size-limited repr


# --- reloading off the request path --------------------------------------------------------------


def test_watcher_reloads_a_changed_file_only_when_checked(workdir: Path) -> None:
    path = place(workdir, "good/basic_auth.yml")
    reloaded: list[WebConfig] = []
    watcher = WebConfigWatcher(path, on_reload=reloaded.append)
    first = watcher.current()
    assert set(first.basic_auth_users) == {"alice", "bob"}
    write(path, "basic_auth_users:\n  alice: " + first.basic_auth_users["alice"].decode() + "\n")
    assert watcher.current() is first  # current() never reads the disk
    assert watcher.check() is True
    second = watcher.current()
    assert set(second.basic_auth_users) == {"alice"} and reloaded == [second]
    assert watcher.check() is False and watcher.current() is second  # nothing changed since
    assert watcher.check(force=True) is True and watcher.current() is not second  # SIGHUP: re-read anyway
    assert (watcher.reloads_total, watcher.reload_failures_total) == (2, 0)


def test_watcher_keeps_the_last_good_config_on_a_bad_change(workdir: Path) -> None:
    errors: list[WebConfigError] = []
    path = place(workdir, "good/tls.yml")
    watcher = WebConfigWatcher(path, on_error=errors.append)
    good = watcher.current()
    write(path, TLS + "  min_version: TLS99\n")
    watcher.check()
    assert watcher.current() is good
    assert [e.problems for e in errors] == [
        ["tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS99'"]
    ]
    watcher.check()
    assert watcher.current() is good
    assert len(errors) == 1  # reported once per change, not on every check
    write(path, TLS + "  min_version: TLS13\n")
    watcher.check()
    fixed = watcher.current()
    assert fixed.tls is not None and fixed.tls.min_version == ssl.TLSVersion.TLSv1_3
    assert (watcher.reloads_total, watcher.reload_failures_total) == (1, 1)


def test_watcher_reloads_when_a_certificate_changes(workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    watcher = WebConfigWatcher(place(workdir, "good/tls.yml"))
    before = watcher.current().ssl_context()
    renewed = make_tls_files(tmp_path_factory.mktemp("renewed"))
    write(workdir / "server.crt", renewed.server_cert.read_text())
    write(workdir / "server.key", renewed.server_key.read_text())
    watcher.check()
    after = watcher.current().ssl_context()
    assert after is not None and after is not before
    assert watcher.reloads_total == 1


def test_watcher_retries_when_a_missing_file_appears(workdir: Path) -> None:
    errors: list[WebConfigError] = []
    path = place(workdir, "good/tls.yml")
    watcher = WebConfigWatcher(path, on_error=errors.append)
    write(path, "tls_server_config:\n  cert_file: new.crt\n  key_file: server.key\n")
    watcher.check()
    assert watcher.reload_failures_total == 1 and "new.crt" in str(errors[0])
    shutil.copy(workdir / "server.crt", workdir / "new.crt")
    watcher.check()
    tls = watcher.current().tls
    assert tls is not None and tls.cert_file == workdir / "new.crt"
    assert (watcher.reloads_total, watcher.reload_failures_total) == (1, 1)


def test_watcher_rejects_a_bad_initial_file(workdir: Path) -> None:
    with pytest.raises(WebConfigError, match="tls_server_config.min_version"):
        WebConfigWatcher(place(workdir, "bad/min_version.yml"))


def test_watcher_thread_checks_by_itself_and_on_request(workdir: Path) -> None:
    path = place(workdir, "good/basic_auth.yml")
    reloaded = threading.Event()
    watcher = WebConfigWatcher(path, check_interval=0.05, on_reload=lambda config: reloaded.set())
    watcher.start()
    try:
        write(path, (FIXTURES / "good/empty.yml").read_text())
        assert reloaded.wait(5)
        assert watcher.current().basic_auth_users == {}
        reloaded.clear()
        watcher.request_reload()  # unchanged file, forced
        assert reloaded.wait(5)
    finally:
        watcher.stop()


def test_a_fifo_swapped_in_never_blocks_current(workdir: Path) -> None:
    path = place(workdir, "good/basic_auth.yml")
    errors: list[WebConfigError] = []
    watcher = WebConfigWatcher(path, on_error=errors.append)
    good = watcher.current()
    path.unlink()
    os.mkfifo(path)
    assert watcher.check() is False  # returns at once: the FIFO is refused, not read
    assert watcher.current() is good and "not a regular file" in str(errors[0])


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
                watcher.check()
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
    watcher.check()
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
