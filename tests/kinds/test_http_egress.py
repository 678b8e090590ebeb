"""The egress policy of HTTP steps, attacked: real requests (httpx) to real servers on loopback.

Each attack first shows what it does with no policy (the request reaches the server), then
that ``http.deny: [private]`` (or the rule under test) stops it before the server sees it.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pardag import Workflow
from pardag.results import RunResult

pytestmark = pytest.mark.timeout(60)


class _Handler(BaseHTTPRequestHandler):
    """``/to?url=U`` redirects to U (302); anything else answers 200 ``ok``."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        parts = urlsplit(self.path)
        if parts.path == "/to":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["url"][0])
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.hits: list[str] = []
        super().__init__((host, port), _Handler)


@contextmanager
def serving(host: str, port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[_Server]:
    """A server on ``host`` (an address), on ``port`` or a free one."""
    server = _Server(host, port)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def loopback() -> Iterator[tuple[int, list[_Server]]]:
    """Servers on 127.0.0.1 and ::1 on one port: whatever a loopback spelling reaches (only
    127.0.0.1 on a machine without IPv6)."""
    for _ in range(20):
        with serving("127.0.0.1") as v4:
            port = v4.server_address[1]
            try:
                with serving("::1", port) as v6:
                    yield port, [v4, v6]
                    return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # no IPv6 here
                    yield port, [v4]
                    return
    pytest.skip("no port free on both 127.0.0.1 and ::1")


def fetch(url: str, **settings: Any) -> RunResult:
    wf = Workflow("egress")
    wf.add("fetch", kind="http", params={"url": url, "timeout": 5})
    return wf.run(**settings)


def reason(result: RunResult) -> str:
    return result.steps["fetch"].reason or ""


def hits(servers: list[_Server]) -> int:
    return sum(len(s.hits) for s in servers)


def _hosts_file_loopback_names() -> list[str]:
    """Names /etc/hosts maps to a loopback address, besides ``localhost`` itself."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return []
    names = []
    for line in lines:
        fields = line.partition("#")[0].split()
        if len(fields) > 1 and (fields[0].startswith("127.") or fields[0] == "::1"):
            names += [n for n in fields[1:] if "localhost" not in n]
    return names


SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0177.0.0.1",
    "017700000001",
    "0x7f.0.0.1",
    "0x7f000001",
    "0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::]",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "LocalHost.",
    *_hosts_file_loopback_names()[:1],
]


@pytest.mark.parametrize("host", SPELLINGS)
def test_every_spelling_of_loopback_is_refused_under_the_private_preset(
    loopback: tuple[int, list[_Server]], host: str
) -> None:
    port, servers = loopback
    if host.startswith("[") and len(servers) == 1:
        pytest.skip("no IPv6 loopback on this machine")
    url = f"http://{host}:{port}/secret"
    open_run = fetch(url)
    reached = hits(servers)
    if host in ("0177.0.0.1",):  # httpx refuses a leading-zero octet as an invalid URL
        assert "the URL is invalid" in reason(open_run)
    elif not host.lower().startswith("localhost."):  # no resolver answers localhost. here
        assert open_run.ok and reached == 1, reason(open_run)  # the attack, without a policy

    result = fetch(url, http_deny=["private"])
    assert not result.ok
    assert hits(servers) == reached  # the server saw nothing more
    if host != "0177.0.0.1":
        assert "denied by http.deny preset 'private' (" in reason(result), reason(result)
        assert f"GET {url}".lower() in reason(result).lower()


def test_the_cloud_metadata_address_is_refused_before_connecting() -> None:
    for url, words in [
        ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16, link-local, cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "fc00::/7, unique local"),
        ("http://[::ffff:a9fe:a9fe]/", "169.254.0.0/16"),
    ]:
        result = fetch(url, http_deny="private")
        assert f"denied by http.deny preset 'private' ({words}" in reason(result), reason(result)


def test_a_redirect_to_a_denied_address_is_refused_at_the_hop(
    loopback: tuple[int, list[_Server]],
) -> None:
    """The first server may be reached (allowed by address and port); it redirects to the
    second, on loopback too, which never sees a request."""
    port, denied = loopback
    with serving("127.0.0.1") as allowed:
        first = f"http://127.0.0.1:{allowed.server_address[1]}"
        policy = {"http_deny": ["private"], "http_allow": [first[7:], "*"]}
        for target in (
            f"http://127.0.0.1:{port}/",
            f"http://[::1]:{port}/",
            f"http://0x7f.1:{port}/",
        ):
            result = fetch(f"{first}/to?url={target}", **policy)
            assert not result.ok
            assert f"GET {target} (a redirect from {first}/to?url=" in reason(result), reason(
                result
            )
            assert "denied by http.deny preset 'private'" in reason(result)
        assert hits(denied) == 0
        assert len(allowed.hits) == 3

        same = fetch(f"{first}/to?url={first}/landing", **policy)  # a hop the policy allows
        assert same.ok and same.outputs["fetch"]["body"] == "ok"
        open_run = fetch(f"{first}/to?url=http://127.0.0.1:{port}/")  # without the policy
        assert open_run.ok and hits(denied) == 1


def test_with_allow_set_only_its_hosts_and_ports_go(loopback: tuple[int, list[_Server]]) -> None:
    port, servers = loopback
    with serving("127.0.0.1") as other:
        other_port = other.server_address[1]
        allow = {"http_allow": f"127.0.0.1:{port}"}
        assert fetch(f"http://127.0.0.1:{port}/", **allow).ok
        assert fetch(f"http://localhost:{port}/", **allow).ok  # checked by its address
        refused = fetch(f"http://127.0.0.1:{other_port}/", **allow)
        assert f"(port {other_port}) is not in http.allow (127.0.0.1:{port})" in reason(refused)
        assert other.hits == [] and hits(servers) == 2

        by_name = fetch(f"http://localhost:{other_port}/", http_allow=["localhost"])
        assert by_name.ok and len(other.hits) == 1


def test_cidr_and_port_rules(loopback: tuple[int, list[_Server]]) -> None:
    port, servers = loopback
    with serving("127.0.0.1") as other:
        other_port = other.server_address[1]
        rules = {"http_deny": [f"127.0.0.0/8:{other_port}"]}
        assert fetch(f"http://127.0.0.1:{port}/", **rules).ok
        refused = fetch(f"http://127.0.0.1:{other_port}/", **rules)
        assert f"denied by http.deny entry '127.0.0.0/8:{other_port}'" in reason(refused)
        narrower = {"http_allow": ["127.0.0.0/8"], "http_deny": ["127.0.0.1/32"]}
        assert "denied by http.deny entry '127.0.0.1/32'" in reason(
            fetch(f"http://127.0.0.1:{port}/", **narrower)
        )
        assert other.hits == [] and hits(servers) == 1


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A controlled DNS: ``rebind.test`` is 127.0.0.2 the first time it is asked, 127.0.0.3
    every time after; ``both.test`` is both. It stands in for a DNS server an attacker runs,
    at the one place every resolution of the process goes through (``socket.getaddrinfo``);
    pardag's own code is not replaced. Returns the names asked, in order."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def answer(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("rebind.test", "both.test"):
            return real(host, port, *args, **kwargs)
        asked.append(host)
        first = host == "rebind.test" and asked.count(host) == 1
        addresses = ["127.0.0.2"] if first else ["127.0.0.3"]
        if host == "both.test":
            addresses = ["127.0.0.2", "127.0.0.3"]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", answer)
    return asked


@contextmanager
def good_and_bad() -> Iterator[tuple[int, _Server, _Server]]:
    """Servers on 127.0.0.2 (allowed) and 127.0.0.3 (denied), on one port."""
    for _ in range(20):
        with serving("127.0.0.2") as good:
            port = good.server_address[1]
            try:
                with serving("127.0.0.3", port) as bad:
                    yield port, good, bad
                    return
            except OSError:
                continue
    pytest.skip("no port free on both 127.0.0.2 and 127.0.0.3")


def test_dns_rebinding_between_the_check_and_the_connection_cannot_pass(
    rebinding: list[str],
) -> None:
    """The name is resolved once; the connection goes to the address that was checked. A
    check followed by httpx connecting by name would ask again and reach 127.0.0.3."""
    with good_and_bad() as (port, good, bad):
        result = fetch(f"http://rebind.test:{port}/", http_deny=["127.0.0.3"])
        assert result.ok, reason(result)
        assert (len(good.hits), len(bad.hits)) == (1, 0)
        assert rebinding == ["rebind.test"]
        again = fetch(f"http://rebind.test:{port}/", http_deny=["127.0.0.3"])  # now .3
        assert "rebind.test resolves to 127.0.0.3, denied by" in reason(again)
        assert bad.hits == []


def test_a_name_with_one_denied_address_among_its_answers_is_refused(
    rebinding: list[str],
) -> None:
    with good_and_bad() as (port, good, bad):
        result = fetch(f"http://both.test:{port}/", http_deny=["127.0.0.3"])
        assert "both.test resolves to 127.0.0.3, denied by http.deny entry" in reason(result)
        assert good.hits == [] and bad.hits == []


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


def test_https_to_a_pinned_address_still_verifies_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebinding: list[str]
) -> None:
    """The socket goes to the checked address; TLS checks the certificate against the URL's
    host name, so pinning loses no verification: a certificate the client trusts, but for
    another name, fails."""
    right, wrong = _certificate(tmp_path, "rebind.test"), _certificate(tmp_path, "other.test")
    trusted = tmp_path / "trusted.pem"
    trusted.write_text(right[1].read_text() + wrong[1].read_text())
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))  # httpx reads it (trust_env)
    for (key, cert), ok in ((right, True), (wrong, False)):
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        with serving("127.0.0.2", tls=tls) as server:
            url = f"https://rebind.test:{server.server_address[1]}/"
            result = fetch(url, http_deny=["10.0.0.0/8"])
            assert result.ok is ok, reason(result)
            if not ok:
                assert "certificate verify failed" in reason(result)
                assert "rebind.test" in reason(result)
        rebinding.clear()  # the next server is rebind.test's first answer again


def test_the_settings_reach_the_step_from_every_layer(
    tmp_path: Path, loopback: tuple[int, list[_Server]]
) -> None:
    """pardag.toml's [http], PARDAG_HTTP_ALLOW and --http-deny, each shown with its source,
    and a real run from the command line refused naming the rule."""
    port, servers = loopback
    (tmp_path / ".git").mkdir()
    (tmp_path / "pardag.toml").write_text('[http]\ndeny = ["private"]\n')
    (tmp_path / "flow.yaml").write_text(
        f"steps:\n  fetch:\n    kind: http\n    params: {{url: 'http://localhost:{port}/'}}\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src, "COLUMNS": "200"}

    def pardag(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pardag", *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = json.loads(pardag("run", "flow.yaml", "--show-settings", "--json").stdout)
    assert shown["http.deny"] == {"value": ["private"], "source": "pardag.toml"}
    assert shown["http.allow"] == {"value": [], "source": "default"}
    done = pardag("run", "flow.yaml")
    assert done.returncode == 1
    assert "step 'fetch' failed: HTTPFailed: GET http://localhost:" in done.stderr
    assert "is denied by http.deny preset 'private' (localhost" in done.stderr
    assert "Traceback" not in done.stderr and hits(servers) == 0

    lifted = {"PARDAG_HTTP_ALLOW": "localhost,127.0.0.1"}
    shown = json.loads(pardag("run", "flow.yaml", "--show-settings", "--json", **lifted).stdout)
    assert shown["http.allow"] == {
        "value": ["localhost", "127.0.0.1"],
        "source": "PARDAG_HTTP_ALLOW",
    }
    assert pardag("run", "flow.yaml", **lifted).returncode == 0
    assert hits(servers) == 1

    flagged = pardag("run", "flow.yaml", "--http-deny", f"127.0.0.1:{port}", **lifted)
    assert flagged.returncode == 1 and f"http.deny entry '127.0.0.1:{port}'" in flagged.stderr
    table = pardag(
        "run", "flow.yaml", "--show-settings", "--http-deny", "a.test", "--http-deny", "b.test"
    )
    assert ["http.deny", "a.test,", "b.test", "--http-deny"] in [
        r.split() for r in table.stdout.splitlines()
    ]
    bad = pardag("run", "flow.yaml", "--show-settings", PARDAG_HTTP_DENY="private,127.1")
    assert bad.returncode != 0
    assert (
        "Invalid PARDAG_HTTP_DENY value 'private,127.1': expected a list of entries, but '127.1'"
        in bad.stderr
    )


def test_a_node_graph_http_node_keeps_to_the_policy(loopback: tuple[int, list[_Server]]) -> None:
    port, servers = loopback
    wf = Workflow("nodes")
    wf.add("fetch", kind="http_node", params={"url": f"http://127.1:{port}/"})
    result = wf.run(http_deny="private")
    assert "127.1 resolves to 127.0.0.1, denied by http.deny preset" in reason(result)
    assert hits(servers) == 0
    assert wf.run().ok and hits(servers) == 1
