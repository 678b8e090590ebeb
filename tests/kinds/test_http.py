"""The ``http`` kind against a real HTTP server on 127.0.0.1, started per test."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from pardag import StepFailed, StepState, ValidationError, Workflow
from pardag.kinds.base import RunContext
from pardag.kinds.http import HTTPFailed, HttpKind, same_origin
from pardag.model import Step

pytestmark = pytest.mark.timeout(60)


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    port: int  # the client's port: the same port means the same pooled connection
    raw_query: str = ""


@dataclass
class Server:
    url: str
    seen: list[Seen] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)  # client ports whose connection ended


ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head>\n<title>503 Service &amp; Co Unavailable</title>\n"
    "</head><body>\n<h1>Service Unavailable</h1>\n"
    + "<p>The server is temporarily unable to service your request.</p>\n" * 40
    + "<address>Apache Server at example Port 80</address>\n</body></html>\n"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that connection reuse is visible
    server: _RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        finally:
            self.server.record.closed.append(self.client_address[1])

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        seen = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length),
            self.client_address[1],
            parts.query,
        )
        self.server.record.seen.append(seen)
        route = parts.path.strip("/").split("/")
        if route[0] == "status":
            self._reply(int(route[1]), "text/plain", f"status {route[1]} body".encode())
        elif route[0] == "page":
            self._reply(int(route[1]), "text/html", ERROR_PAGE.encode())
        elif route[0] == "lines":
            self._reply(502, "text/plain", b"\n\n  upstream timed out  \nretry later\n")
        elif route[0] == "text":
            self._reply(200, "text/plain; charset=utf-8", "plain text ✓".encode())
        elif route[0] == "problem":
            self._reply(200, "application/problem+json", b'{"title": "x"}')
        elif route[0] == "badjson":
            self._reply(200, "application/json", b"{not json")
        elif route[0] == "redirect":
            self.send_response(302)
            self.send_header("Location", "/json/redirected")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route[0] == "goto":  # /goto/307?to=URL: a redirect with that status
            self._redirect(int(route[1]), seen.query["to"][0])
        elif route[0] == "loop":
            self._redirect(302, "/loop")
        elif route[0] == "nowhere":
            self._redirect(302, "http://[::1")
        elif route[0] == "big":  # /big/N: N bytes
            self._reply(200, "text/plain", b"x" * int(route[1]))
        elif route[0] == "gzip":  # /gzip/N: N bytes, sent gzip-compressed
            packed = gzip.compress(b"a" * int(route[1]))
            self._reply(200, "text/plain", packed, {"Content-Encoding": "gzip"})
        elif route[0] == "slow":
            time.sleep(float(route[1]))
            self._reply(200, "text/plain", b"late")
        else:
            echo = {
                "method": seen.method,
                "path": seen.path,
                "query": seen.query,
                "body": seen.body.decode(),
                "content_type": seen.headers.get("content-type"),
                "items": [1, 2],
            }
            self._reply(200, "application/json", json.dumps(echo).encode(), {"X-Multi": "a"})

    def _reply(
        self, status: int, kind: str, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    record: Server

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer (a cancelled step) is expected here: stay quiet."""


@contextmanager
def _serving(host: str) -> Iterator[Server]:
    """A server on 127.0.0.1 whose URL names it as ``host``."""
    httpd = _RecordingServer(("127.0.0.1", 0), _Handler)
    httpd.record = Server(f"http://{host}:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def server() -> Iterator[Server]:
    with _serving("127.0.0.1") as record:
        yield record


@pytest.fixture
def other() -> Iterator[Server]:
    """A second server, on another port and named ``localhost``: another origin."""
    with _serving("localhost") as record:
        yield record


def run_http(**params: Any) -> Any:
    wf = Workflow("http")
    wf.add("call", kind="http", params=params)
    return wf.run()


# --- requests ---------------------------------------------------------------------------


def test_get_returns_status_headers_and_parsed_json(server: Server) -> None:
    result = run_http(url=f"{server.url}/json/x")
    assert result.ok, result.error
    out = result.outputs["call"]
    assert out["status"] == 200
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["x-multi"] == "a"
    assert out["body"]["method"] == "GET"
    assert out["body"]["path"] == "/json/x"
    assert [s.method for s in server.seen] == ["GET"]


@pytest.mark.parametrize("method", ["post", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_method_is_sent(server: Server, method: str) -> None:
    result = run_http(url=f"{server.url}/echo", method=method)
    assert result.outputs["call"]["body"]["method"] == method.upper()


def test_head_has_an_empty_body(server: Server) -> None:
    result = run_http(url=f"{server.url}/echo", method="HEAD")
    assert result.outputs["call"]["status"] == 200
    assert server.seen[0].method == "HEAD"


def test_headers_query_and_json_body_are_sent(server: Server) -> None:
    result = run_http(
        url=f"{server.url}/echo",
        method="POST",
        headers={"Authorization": "Bearer t0k", "X-Count": 3},
        query={"q": "a b&c", "tag": ["x", "y"], "n": 1},
        json={"rows": [1, 2], "ok": True},
    )
    assert result.ok, result.error
    [seen] = server.seen
    assert seen.headers["authorization"] == "Bearer t0k"
    assert seen.headers["x-count"] == "3"
    assert seen.query == {"q": ["a b&c"], "tag": ["x", "y"], "n": ["1"]}
    assert json.loads(seen.body) == {"rows": [1, 2], "ok": True}
    assert seen.headers["content-type"] == "application/json"


def test_a_text_body_is_sent_as_it_is(server: Server) -> None:
    run_http(url=f"{server.url}/echo", method="POST", body="line one\nline two")
    assert server.seen[0].body == b"line one\nline two"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("text", "plain text ✓"),
        ("problem", {"title": "x"}),
        ("badjson", "{not json"),  # claims JSON but is not: kept as text
    ],
)
def test_the_body_is_parsed_only_when_it_is_json(server: Server, path: str, expected: Any) -> None:
    assert run_http(url=f"{server.url}/{path}").outputs["call"]["body"] == expected


def test_redirects_are_followed(server: Server) -> None:
    out = run_http(url=f"{server.url}/redirect").outputs["call"]
    assert out["status"] == 200
    assert out["body"]["path"] == "/json/redirected"


@pytest.mark.parametrize(
    ("query", "raw"),
    [
        (None, "a=x%2Fy&b=2&a=3"),  # the URL's own query, as written
        ({"c": "d e"}, "a=x%2Fy&b=2&a=3&c=d%20e"),  # query adds to it
        ({"a": ["4", "5"], "b": 6}, "a=4&a=5&b=6"),  # a name in query replaces the URL's
    ],
)
def test_the_urls_query_string_is_kept_and_query_adds_to_it(
    server: Server, query: dict[str, Any] | None, raw: str
) -> None:
    result = run_http(url=f"{server.url}/echo?a=x%2Fy&b=2&a=3", query=query)
    assert result.ok, result.error
    [seen] = server.seen
    assert seen.raw_query == raw


def test_a_failures_url_is_the_one_sent_with_its_query(server: Server) -> None:
    result = run_http(url=f"{server.url}/status/404?a=1", query={"b": 2})
    assert f"HTTP 404 from GET {server.url}/status/404?a=1&b=2:" in (
        result.steps["call"].reason or ""
    )
    assert server.seen[0].raw_query == "a=1&b=2"


# --- the size of a response -------------------------------------------------------------


def test_a_body_over_max_response_fails_the_step_naming_the_limit(server: Server) -> None:
    wf = Workflow("capped")
    wf.add("fits", kind="http", params={"url": f"{server.url}/big/1024", "max_response": "1KiB"})
    wf.add("over", kind="http", params={"url": f"{server.url}/big/1025", "max_response": "1KiB"})
    result = wf.run(on_failure="continue")
    assert result.outputs["fits"]["body"] == "x" * 1024
    reason = result.steps["over"].reason or ""
    assert f"GET {server.url}/big/1025: the response body is larger than the step's " in reason
    assert "max_response of 1 KiB" in reason
    assert "raise it with the step's max_response, e.g. max_response: 100MiB" in reason


def test_the_default_cap_is_10_mib_and_max_response_raises_it(server: Server) -> None:
    url = f"{server.url}/big/{10 * 1024**2 + 1}"
    reason = run_http(url=url).steps["call"].reason or ""
    assert "max_response of 10 MiB" in reason
    assert len(run_http(url=url, max_response="11MiB").outputs["call"]["body"]) == 10 * 1024**2 + 1


def test_a_compressed_body_is_capped_as_it_inflates(server: Server) -> None:
    inflated = 64 * 1024**2
    assert len(gzip.compress(b"a" * inflated)) < 1024**2  # a small body on the wire
    result = run_http(url=f"{server.url}/gzip/{inflated}", max_response="1MiB")
    assert "max_response of 1 MiB (counted as decoded)" in (result.steps["call"].reason or "")
    out = run_http(url=f"{server.url}/gzip/5000").outputs["call"]
    assert (out["headers"]["content-encoding"], out["body"]) == ("gzip", "a" * 5000)


# --- redirects --------------------------------------------------------------------------

CREDENTIALS = {"X-Api-Key": "k3y", "Authorization": "Bearer t0k"}


def _goto(status: int, to: str) -> str:
    return f"/goto/{status}?{urlencode({'to': to})}"


@pytest.mark.parametrize("forward", [None, False])
def test_the_steps_headers_do_not_follow_a_redirect_to_another_host(
    server: Server, other: Server, forward: bool | None
) -> None:
    result = run_http(
        url=server.url + _goto(302, f"{other.url}/echo"),
        headers=CREDENTIALS,
        forward_headers_on_redirect=forward,
    )
    assert result.outputs["call"]["body"]["path"] == "/echo"
    assert server.seen[0].headers["x-api-key"] == "k3y"
    assert "x-api-key" not in other.seen[0].headers
    assert "authorization" not in other.seen[0].headers


def test_forward_headers_on_redirect_sends_them_to_another_host(
    server: Server, other: Server
) -> None:
    result = run_http(
        url=server.url + _goto(307, f"{other.url}/echo"),
        headers=CREDENTIALS,
        forward_headers_on_redirect=True,
    )
    assert result.ok, result.error
    assert other.seen[0].headers["x-api-key"] == "k3y"
    assert other.seen[0].headers["authorization"] == "Bearer t0k"


def test_a_redirect_to_another_port_drops_them(server: Server) -> None:
    with _serving("127.0.0.1") as third:
        result = run_http(url=server.url + _goto(302, f"{third.url}/echo"), headers=CREDENTIALS)
    assert result.ok, result.error
    assert server.seen[0].headers["x-api-key"] == "k3y"
    assert "x-api-key" not in third.seen[0].headers


@pytest.mark.parametrize(
    ("then", "same"),
    [
        ("http://h:8080/b?c=d", True),
        ("http://H:8080/a", True),  # host names are not case-sensitive
        ("http://h:8081/a", False),
        ("http://g:8080/a", False),
        ("https://h:8080/a", False),
    ],
)
def test_an_origin_is_the_scheme_host_and_port(then: str, same: bool) -> None:
    assert same_origin(httpx.URL("http://h:8080/a"), httpx.URL(then)) is same


def test_only_an_upgrade_to_https_on_the_default_ports_keeps_the_origin() -> None:
    assert same_origin(httpx.URL("http://h/a"), httpx.URL("https://h:443/b"))
    assert same_origin(httpx.URL("http://h:80/a"), httpx.URL("https://h/b"))
    assert not same_origin(httpx.URL("https://h/a"), httpx.URL("http://h/b"))  # a downgrade
    assert not same_origin(httpx.URL("http://h/a"), httpx.URL("https://g/b"))
    assert not same_origin(httpx.URL("http://h:8080/a"), httpx.URL("https://h:8443/b"))


def test_a_redirect_to_the_same_host_by_another_name_drops_them(server: Server) -> None:
    result = run_http(
        url=server.url + _goto(302, server.url.replace("127.0.0.1", "localhost") + "/echo"),
        headers=CREDENTIALS,
    )
    assert result.ok, result.error
    first, then = server.seen
    assert first.headers["x-api-key"] == "k3y"
    assert "x-api-key" not in then.headers


def test_headers_stay_on_the_same_origin_and_stay_dropped_after_leaving_it(
    server: Server, other: Server
) -> None:
    back = server.url + _goto(302, f"{server.url}/echo")
    result = run_http(
        url=server.url + _goto(302, _goto(302, other.url + _goto(302, back))),
        headers=CREDENTIALS,
    )
    assert result.ok, result.error
    assert [s.path for s in server.seen] == ["/goto/302", "/goto/302", "/goto/302", "/echo"]
    assert [s.headers.get("x-api-key") for s in server.seen] == ["k3y", "k3y", None, None]
    assert "x-api-key" not in other.seen[0].headers


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(307, "POST", {"n": 1}), (308, "POST", {"n": 1}), (303, "GET", None), (302, "GET", None)],
)
def test_a_redirect_keeps_or_drops_the_method_and_body(
    server: Server, status: int, method: str, body: Any
) -> None:
    result = run_http(url=server.url + _goto(status, "/echo"), method="POST", json={"n": 1})
    assert result.ok, result.error
    echo = result.outputs["call"]["body"]
    assert (echo["method"], json.loads(echo["body"] or "null")) == (method, body)


def test_a_redirect_to_an_invalid_url_fails_the_step_naming_the_url(server: Server) -> None:
    reason = run_http(url=f"{server.url}/nowhere").steps["call"].reason or ""
    assert reason.startswith(f"HTTPFailed: GET {server.url}/nowhere failed: ")


def test_a_redirect_loop_fails_the_step(server: Server) -> None:
    result = run_http(url=f"{server.url}/loop")
    assert f"GET {server.url}/loop: more than 20 redirects" in (result.steps["call"].reason or "")
    assert len(server.seen) == 21


# --- templates --------------------------------------------------------------------------


def test_url_headers_query_and_json_are_rendered_from_upstream_steps(server: Server) -> None:
    wf = Workflow("templated")
    wf.add("user", lambda: {"id": 42, "name": "Ada L", "tags": ["a", "b"]})
    wf.add(
        "call",
        kind="http",
        depends_on=["user"],
        params={
            "url": server.url + "/users/{{ steps.user.output.id }}",
            "method": "{{ params.verb }}",
            "headers": {"X-User": "{{ inputs.user.name }}"},
            "query": {"tag": "{{ inputs.user.tags }}", "who": "{{ inputs.user.name }}"},
            "json": {"id": "{{ inputs.user.id }}", "greeting": "hi {{ inputs.user.name }}"},
            "timeout": "{{ params.wait }}",
        },
    )
    wf.add("status", lambda call: call["status"])
    result = wf.run(params={"verb": "post", "wait": "5s"})
    assert result.ok, result.error
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/users/42")
    assert seen.headers["x-user"] == "Ada L"
    assert seen.query == {"tag": ["a", "b"], "who": ["Ada L"]}
    assert json.loads(seen.body) == {"id": 42, "greeting": "hi Ada L"}  # the id stays a number
    assert result.outputs["status"] == 200


def test_urlencode_filter_for_values_in_the_url(server: Server) -> None:
    wf = Workflow("encoded")
    wf.add(
        "call",
        kind="http",
        params={"url": server.url + "/files/{{ params.name | urlencode }}"},
    )
    wf.run(params={"name": "a b/c"})
    assert server.seen[0].path == "/files/a%20b/c"


def test_a_template_error_fails_the_step_naming_it(server: Server) -> None:
    result = run_http(url=server.url + "/{{ params.nope }}")
    reason = result.steps["call"].reason or ""
    assert "step 'call' params" in reason
    assert "key 'nope' not found" in reason
    assert server.seen == []


# --- failures ---------------------------------------------------------------------------


def test_a_status_outside_2xx_fails_the_step_with_the_body_tail(server: Server) -> None:
    result = run_http(url=f"{server.url}/status/404")
    step = result.steps["call"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepFailed)
    assert isinstance(step.error.cause, HTTPFailed)
    assert step.error.cause.status == 404
    assert f"HTTP 404 from GET {server.url}/status/404: status 404 body" in (step.reason or "")


def test_allowed_statuses_do_not_fail(server: Server) -> None:
    wf = Workflow("allowed")
    wf.add(
        "missing", kind="http", params={"url": f"{server.url}/status/404", "allow_status": [404]}
    )
    wf.add("error", kind="http", params={"url": f"{server.url}/status/500", "allow_status": [404]})
    result = wf.run(on_failure="continue")
    assert result.outputs["missing"]["status"] == 404
    assert result.outputs["missing"]["body"] == "status 404 body"
    assert result.steps["error"].state is StepState.FAILED
    assert "HTTP 500" in (result.steps["error"].reason or "")


def test_a_connection_error_names_the_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    result = run_http(url=url)
    reason = result.steps["call"].reason or ""
    assert f"GET {url} failed: ConnectError" in reason


def test_a_request_timeout_names_the_url(server: Server) -> None:
    result = run_http(url=f"{server.url}/slow/3", timeout="100ms")
    reason = result.steps["call"].reason or ""
    assert f"GET {server.url}/slow/3 timed out (0.1s per phase)" in reason


# --- the shared client ------------------------------------------------------------------


def test_one_client_serves_a_run_and_is_closed_after_it(server: Server) -> None:
    wf = Workflow("pooled")
    wf.add("a", kind="http", params={"url": f"{server.url}/json/a"})
    wf.add("b", kind="http", depends_on=["a"], params={"url": f"{server.url}/json/b"})
    wf.add("c", kind="http", depends_on=["b"], params={"url": f"{server.url}/json/c"})
    assert wf.run().ok
    ports = {seen.port for seen in server.seen}
    assert len(ports) == 1  # three requests, one pooled connection
    [port] = ports
    _eventually(lambda: port in server.closed)  # the run closed its client
    assert wf.run().ok
    assert server.seen[-1].port != port  # the next run has its own client


def test_the_client_is_shared_through_the_run_context_and_closed_with_it(server: Server) -> None:
    ctx = RunContext("run", "wf", {})
    kind = HttpKind()
    first = kind.action(Step("a", kind="http", params={"url": f"{server.url}/json/1"}), ctx)
    second = kind.action(Step("b", kind="http", params={"url": f"{server.url}/json/2"}), ctx)

    async def main() -> httpx.AsyncClient:
        await first.fn(*first.bind({}, {})[0])
        await second.fn(*second.bind({}, {})[0])
        client: httpx.AsyncClient = ctx.state["http.client"]
        assert not client.is_closed
        await ctx.aclose()
        return client

    assert asyncio.run(main()).is_closed


def _eventually(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert check()


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "an http step needs params url: 'https://...'"),
        ({"url": "ftp://x/y"}, "must start with http:// or https://"),
        ({"url": "example.com/x"}, "must start with http:// or https://"),
        ({"url": "https://x", "method": "FETCH"}, "method 'FETCH' is unknown; use one of GET"),
        ({"url": "https://x", "headers": ["a"]}, "headers must be a mapping of name: value"),
        ({"url": "https://x", "headers": {"A": [1]}}, "headers 'A' must be a string"),
        ({"url": "https://x", "query": {"q": {"a": 1}}}, "query 'q' must be a string or a list"),
        ({"url": "https://x", "json": {}, "body": "x"}, "either json"),
        ({"url": "https://x", "body": {"a": 1}}, "body must be text; to send a value as JSON"),
        ({"url": "https://x", "timeout": "soon"}, "timeout 'soon'"),
        ({"url": "https://x", "timeout": 0}, "timeout must be more than 0 seconds"),
        ({"url": "https://x", "allow_status": 404}, "allow_status must be a list of status codes"),
        ({"url": "https://x", "allow_status": [99]}, "allow_status must be a list"),
        ({"url": "https://x", "max_response": "lots"}, "max_response 'lots' is not a size"),
        ({"url": "https://x", "max_response": 0}, "max_response must be more than 0 bytes"),
        (
            {"url": "https://x", "forward_headers_on_redirect": "yes"},
            "forward_headers_on_redirect must be true or false",
        ),
        ({"url": "https://x/{{ id }"}, "url: template syntax error"),
        ({"url": "https://x", "headers": {"A": "{{ a }"}}, "headers: template syntax error"),
        ({"url": "https://x", "json": {"a": ["{% if %}"]}}, "json: template syntax error"),
    ],
)
def test_bad_params_are_validation_problems(params: dict[str, Any], fragment: str) -> None:
    wf = Workflow("bad")
    wf.add("call", kind="http", params=params)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    messages = [p.message for p in info.value.problems]
    assert any(fragment in m for m in messages), messages
    assert all(p.step == "call" for p in info.value.problems)


def test_fields() -> None:
    assert HttpKind.fields == (
        "url",
        "method",
        "headers",
        "query",
        "json",
        "body",
        "timeout",
        "allow_status",
        "max_response",
        "forward_headers_on_redirect",
    )


def test_a_failed_requests_reason_is_one_line_and_its_body_goes_to_the_log(
    server: Server, tmp_path: Any
) -> None:
    from pardag.store import open_store

    wf = Workflow("pages")
    wf.add("page", kind="http", params={"url": f"{server.url}/page/503"})
    wf.add("lines", kind="http", params={"url": f"{server.url}/lines"})
    url = str(tmp_path / "runs.db")
    result = wf.run(store=url, on_failure="continue")
    page = result.steps["page"].reason or ""
    assert (
        page == f"HTTPFailed: HTTP 503 from GET {server.url}/page/503: 503 Service & Co Unavailable"
    )
    lines = result.steps["lines"].reason or ""
    assert lines.endswith(f"HTTP 502 from GET {server.url}/lines: upstream timed out")
    with open_store(url) as store:
        logged = "".join(p.text for p in store.get_logs(result.run_id, "page"))
    assert logged == f"HTTP 503 from GET {server.url}/page/503, response body:\n{ERROR_PAGE}\n"


def test_the_gist_of_a_body_is_short_and_says_when_there_is_none() -> None:
    from pardag.kinds.http import gist

    assert gist("") == "(empty body)"
    assert (
        gist("<html><title> </title><p>first</p></html>")
        == "<html><title> </title><p>first</p></html>"
    )
    assert gist("x" * 500) == "x" * 197 + "..."
