"""The ``http`` kind: one HTTP request, its response as the step's output.

Params (every string in them may be a template, see :mod:`pardag.templates`):

* ``url`` (required, ``http://`` or ``https://``); ``method`` (``GET`` by default);
* ``headers`` and ``query``: mappings (a query value may be a list: the name repeats);
* ``json`` (any JSON value, sent as JSON) or ``body`` (text), not both;
* ``timeout``: seconds or a duration string (``"500ms"``, ``"2m"``); 30 seconds by default.
  It bounds each phase (connecting, each read); the step's own ``timeout`` bounds the whole;
* ``allow_status``: status codes that do not fail the step, besides every 2xx;
* ``max_response``: the most body a response may have, counted as decoded (after gzip and
  the like), a size (``"50MiB"``) or bytes; 10 MiB by default. Reading stops past it and the
  step fails naming the limit, so a huge body or a compression bomb cannot fill memory;
* ``forward_headers_on_redirect``: ``true`` sends the step's ``headers`` on after a redirect
  to another origin too (see below); ``false`` by default.

A ``url`` with a query string keeps it: ``query`` adds to it, and a name in ``query``
replaces that name's values in the URL.

The output is ``{"status": int, "headers": {...}, "body": ...}``, the body parsed when the
response says it is JSON (``application/json`` or ``+json``) and text otherwise. Headers are
lower-cased names; a repeated header is joined with ``", "``.

Redirects are followed (at most 20), here rather than by httpx, so that the headers the step
set itself (``X-Api-Key``, ``Authorization``, ...) are dropped, for that hop and every later
one, once a redirect leaves the first URL's origin: its scheme, host or port (as browsers
scope credentials; ``127.0.0.1`` and ``localhost`` differ). The one exception is ``http`` to
``https`` on the same host at the default ports, an upgrade httpx also keeps
``Authorization`` for. ``forward_headers_on_redirect: true`` keeps them on every hop, like
curl's ``--location-trusted``. A 303 (and a 301 or 302 to a non-HEAD request) continues as a
GET without the body, as browsers do.

A status that is neither 2xx nor allowed fails the step with one line, ``HTTP 404 from GET
http://...: <the body's title or first line>`` (an HTML page's ``<title>``, else its first
non-empty line, shortened), and the whole body goes into the step's log (``pardag logs RUN
STEP``); a connection error or timeout fails it naming the URL.

Where a request may connect is the run's ``http.allow``/``http.deny`` (``pardag.egress``):
with either set, the client connects through ``pardag.kinds.http_connect``, which checks the
name and every address it resolves to before each new connection (so each redirect hop to
another origin too) and connects to a checked address; a refusal fails the step naming the
URL, the address and the rule.

Values substituted into ``url`` are inserted as they are: put values in ``query`` (encoded for
you) or encode them with ``{{ value | urlencode }}``. All the steps of a run share one pooled
``httpx.AsyncClient`` (connections are reused); it is closed when the run ends.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

from pardag.egress import EgressPolicy, EgressRefused
from pardag.errors import HTTPFailed
from pardag.kinds.base import Action, RunContext, idempotency_key, lazy_module
from pardag.kinds.cluster import OnWorker, watched
from pardag.secrets import secrets_of
from pardag.states import ExecutorName
from pardag.steplog import current
from pardag.templates import is_template, namespace, render, template_problems, to_text
from pardag.units import format_size, parse_duration, parse_size

if TYPE_CHECKING:
    from pardag.model import Step

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")

__all__ = [
    "DEFAULT_MAX_RESPONSE",
    "DEFAULT_TIMEOUT",
    "Exchange",
    "HTTPFailed",
    "HttpKind",
    "HttpOnWorker",
    "client",
    "gist",
    "new_client",
    "same_origin",
    "with_query",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds each phase of a request may take when the step gives no ``timeout``."""
DEFAULT_MAX_RESPONSE = 10 * 1024**2
"""Bytes of decoded body a response may have when the step gives no ``max_response``."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_GIST = 200
"""Characters of a failed response's body that its one-line reason keeps."""
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def client(ctx: RunContext) -> httpx.AsyncClient:
    """The run's pooled client, made on first use and closed when the run ends."""

    def make() -> httpx.AsyncClient:
        made = new_client(ctx.egress)
        ctx.on_close(made.aclose)
        return made

    return ctx.shared("http.client", make)


def new_client(egress: EgressPolicy) -> httpx.AsyncClient:
    """A client that keeps to ``egress`` (the run's http.allow / http.deny, checked at each
    connection) and follows no redirect itself: ``_follow`` does, keeping headers safe."""
    transport = None
    if not egress.open:
        from pardag.kinds.http_connect import checked_transport

        transport = checked_transport(egress)
    return httpx.AsyncClient(transport=transport)


# --- validation -------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _url_problems(url: Any) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return [f"an http step needs params url: 'https://...', got {url!r}"]
    if is_template(url):
        return template_problems(url, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"url {url!r} must start with http:// or https:// and name a host"]
    return []


def _mapping_problems(name: str, value: Any, lists: bool = False) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{name} must be a mapping of name: value, got {value!r}"]
    out = []
    for key, item in value.items():
        ok = _scalar(item) or (lists and isinstance(item, list) and all(map(_scalar, item)))
        if not isinstance(key, str) or not ok:
            kind = "a string or a list of strings" if lists else "a string"
            out.append(f"{name} {key!r} must be {kind}, got {item!r}")
    return out + template_problems(value, name)


def _timeout_problems(timeout: Any) -> list[str]:
    if timeout is None:
        return []
    if is_template(timeout):
        return template_problems(timeout, "timeout")
    return _positive_problems(parse_duration, timeout, "timeout", "seconds", "10")


def _max_response_problems(cap: Any) -> list[str]:
    if cap is None:
        return []
    return _positive_problems(parse_size, cap, "max_response", "bytes", "50MiB")


def _positive_problems(
    parse: Callable[[object, str], float], value: Any, name: str, unit: str, example: str
) -> list[str]:
    """What is wrong with ``value`` as the amount ``parse`` reads, which must be above 0."""
    try:
        amount = parse(value, name)
    except ValueError as exc:
        return [str(exc)]
    return [] if amount > 0 else [f"{name} must be more than 0 {unit}, e.g. {name}: {example}"]


def _allow_problems(allow: Any) -> list[str]:
    if allow is None:
        return []
    if not isinstance(allow, list) or not all(
        isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
        for code in allow
    ):
        return [f"allow_status must be a list of status codes such as [404, 409], got {allow!r}"]
    return []


def _forward_problems(forward: Any) -> list[str]:
    if forward is None or isinstance(forward, bool):
        return []
    return [f"forward_headers_on_redirect must be true or false, got {forward!r}"]


def _method_problems(method: Any) -> list[str]:
    if method is None or (isinstance(method, str) and is_template(method)):
        return template_problems(method, "method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        return [f"method {method!r} is unknown; use one of {', '.join(METHODS)}"]
    return []


def _body_problems(params: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if "json" in params and "body" in params:
        out.append("give either json (a value sent as JSON) or body (text), not both")
    body = params.get("body")
    if body is not None and not isinstance(body, str):
        out.append(f"body must be text; to send a value as JSON use json:, got {body!r}")
    return out + template_problems(params.get("json"), "json") + template_problems(body, "body")


# --- the kind ---------------------------------------------------------------------------


class HttpKind:
    """Sends one request; see the module docstring."""

    fields: tuple[str, ...] = (
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
    templated: tuple[str, ...] = ("url", "method", "headers", "query", "json", "body", "timeout")
    """The fields rendered as templates (validation checks what they read)."""
    template_names: tuple[str, ...] = ("idempotency_key",)
    """Names its templates read besides ``pardag.templates.TEMPLATE_NAMES``."""
    cluster = True
    """It may run on a Dask worker, rendered here (``pardag.kinds.cluster``)."""

    def problems(self, step: Step) -> list[str]:
        params = step.params
        return [
            *_url_problems(params.get("url")),
            *_method_problems(params.get("method")),
            *_mapping_problems("headers", params.get("headers")),
            *_mapping_problems("query", params.get("query"), lists=True),
            *_body_problems(params),
            *_timeout_problems(params.get("timeout")),
            *_allow_problems(params.get("allow_status")),
            *_max_response_problems(params.get("max_response")),
            *_forward_problems(params.get("forward_headers_on_redirect")),
        ]

    def action(self, step: Step, ctx: RunContext) -> Action:
        params = dict(step.params)
        allowed = frozenset(params.get("allow_status") or ())
        where = f"step {step.id!r} params"
        cap = params.get("max_response")
        cap = DEFAULT_MAX_RESPONSE if cap is None else parse_size(cap, f"{where}.max_response")
        forward = params.get("forward_headers_on_redirect") is True
        key = idempotency_key(ctx.run_id, step.id)

        exchange = Exchange(where, forward, cap, allowed)

        def rendered(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
            names = namespace(inputs, ctx, idempotency_key=key)
            request: Mapping[str, Any] = render(params, names, where=where)
            return request

        if step.executor == ExecutorName.DASK:  # rendered here, sent from a worker
            sender = HttpOnWorker(exchange, ctx.egress, step.timeout)
            call = OnWorker(step.id, sender, secrets_of(ctx).masker)

            def bind(
                inputs: Mapping[str, Any], run_params: Mapping[str, Any]
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
                return (rendered(inputs),), {}

            return Action(call, ExecutorName.DASK, bind)

        async def call_here(inputs: Mapping[str, Any]) -> dict[str, Any]:
            return await exchange(client(ctx), rendered(inputs))

        return Action(call_here, ExecutorName.ASYNC, _bind_inputs)


@dataclass(frozen=True)
class Exchange:
    """A step's request sent and its reply turned into the step's output (or its failure):
    the same on the runner's loop and on a Dask worker's (``pardag.kinds.cluster``)."""

    where: str
    forward: bool
    cap: int
    allowed: frozenset[int]

    async def __call__(self, http: httpx.AsyncClient, request: Mapping[str, Any]) -> dict[str, Any]:
        out = _outgoing(request, self.where)
        reply = await _send(http, out, self.forward, self.cap)
        return _output(reply, out, self.allowed)


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


# --- sending ----------------------------------------------------------------------------

_REDIRECTS = 20
"""Redirects followed before the step fails (httpx's own default)."""
_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class _Outgoing:
    """A rendered request as the step asked for it, before any redirect."""

    method: str
    url: httpx.URL  # with the step's query added
    headers: dict[str, str]
    content: bytes | None
    json: Any
    seconds: float


@dataclass(frozen=True)
class _Reply:
    """A response with its body read (at most the step's ``max_response`` of it)."""

    status: int
    headers: dict[str, str]
    content: bytes
    encoding: str

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")


def _outgoing(request: Mapping[str, Any], where: str) -> _Outgoing:
    timeout = request.get("timeout")
    body = request.get("body")
    method = to_text(request.get("method") or "GET").upper()
    url = to_text(request["url"])
    query = {
        str(k): [to_text(i) for i in v] if isinstance(v, list) else to_text(v)
        for k, v in (request.get("query") or {}).items()
    }
    try:  # urlsplit raises ValueError (a bracketed host that is no IPv6 address), httpx its own
        first = httpx.URL(with_query(url, query))
    except (ValueError, httpx.InvalidURL) as exc:
        raise HTTPFailed(f"{method} {url!r}: the URL is invalid: {exc}") from exc
    return _Outgoing(
        method=method,
        url=first,
        headers={str(k): to_text(v) for k, v in (request.get("headers") or {}).items()},
        content=None if body is None else to_text(body).encode(),
        json=request.get("json"),
        seconds=DEFAULT_TIMEOUT if timeout is None else parse_duration(timeout, f"{where}.timeout"),
    )


def with_query(url: str, query: Mapping[str, str | list[str]]) -> str:
    """``url`` with ``query`` added to its query string, a name in ``query`` replacing that
    name's values; the rest stays as written. (httpx >= 0.28 given ``params`` drops the
    URL's own query, sending the request to another resource.)"""
    if not query:
        return url
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in query
    ]
    added = urlencode(query, doseq=True, quote_via=quote)
    return urlunsplit(parts._replace(query="&".join([*kept, added])))


async def _send(http: httpx.AsyncClient, out: _Outgoing, forward: bool, cap: int) -> _Reply:
    """Send the request and read its reply; errors without a response become ``HTTPFailed``."""
    try:
        response = await _follow(http, out, forward)
        try:
            content = await _read(response, cap)
        finally:
            await response.aclose()
    except httpx.TimeoutException as exc:
        raise HTTPFailed(
            f"{out.method} {out.url} timed out ({out.seconds:g}s per phase): {exc!r}"
        ) from exc
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise HTTPFailed(f"{out.method} {out.url} failed: {type(exc).__name__}: {reason}") from exc
    if content is None:
        raise HTTPFailed(
            f"{out.method} {out.url}: the response body is larger than the step's max_response "
            f"of {format_size(cap)} (counted as decoded); reading stopped there. If such a "
            "body is expected, raise it with the step's max_response, e.g. max_response: 100MiB"
        )
    headers = dict(response.headers.items())
    return _Reply(response.status_code, headers, content, response.encoding or "utf-8")


async def _follow(http: httpx.AsyncClient, out: _Outgoing, forward: bool) -> httpx.Response:
    """The last response of the request's redirects, its body not yet read.

    Redirects are followed here, not by httpx, so that the step's headers stop (for good) at
    the first redirect away from the first URL's origin unless ``forward`` says otherwise.
    """
    first = out.url
    method, url, content, body_json = out.method, first, out.content, out.json
    headers: dict[str, str] | None = out.headers
    for _ in range(_REDIRECTS + 1):
        request = http.build_request(
            method, url, headers=headers, content=content, json=body_json, timeout=out.seconds
        )
        try:
            response = await http.send(request, stream=True, follow_redirects=False)
        except EgressRefused as exc:
            hop = "" if url == first else f" (a redirect from {first})"
            raise HTTPFailed(f"{method} {url}{hop}: {exc}") from None
        if response.next_request is None:  # httpx sets it for a redirect, checking Location
            return response
        await response.aclose()  # a redirect's body is not read: it could be any size
        url = response.next_request.url
        if not (forward or same_origin(first, url)):
            headers = None
        if _becomes_get(method, response.status_code):
            method, content, body_json = "GET", None, None
    raise HTTPFailed(f"{out.method} {out.url}: more than {_REDIRECTS} redirects, the last to {url}")


def same_origin(first: httpx.URL, then: httpx.URL) -> bool:
    """Whether headers meant for ``first`` may go to ``then``: the same scheme, host and port,
    or an upgrade from http to https on the same host at the default ports."""
    was = (first.scheme, first.host, first.port or _PORTS.get(first.scheme))
    now = (then.scheme, then.host, then.port or _PORTS.get(then.scheme))
    return was == now or (was == ("http", now[1], 80) and now == ("https", was[1], 443))


def _becomes_get(method: str, status: int) -> bool:
    """Whether a redirect continues as a GET without the body: after a 303, or a 302 to
    anything but HEAD, or a 301 to a POST (what browsers and httpx do)."""
    return (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST")


async def _read(response: httpx.Response, cap: int) -> bytes | None:
    """The body as decoded, or None as soon as it passes ``cap`` bytes: counting decoded
    bytes cuts a compression bomb while it inflates."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --- the output -------------------------------------------------------------------------


def _output(reply: _Reply, out: _Outgoing, allowed: frozenset[int]) -> dict[str, Any]:
    status, method, url = reply.status, out.method, out.url
    if not (200 <= status < 300 or status in allowed):
        text = reply.text
        log = current()
        if log is not None and text.strip():
            log.write("log", f"HTTP {status} from {method} {url}, response body:\n{text}\n")
        raise HTTPFailed(f"HTTP {status} from {method} {url}: {gist(text)}", status)
    return {"status": status, "headers": reply.headers, "body": _body(reply)}


def gist(body: str) -> str:
    """A failed response's body in one short line: an HTML page's ``<title>``, else the first
    non-empty line; ``(empty body)`` when there is none."""
    title = _TITLE.search(body)
    found = html.unescape(title.group(1)) if title else ""
    if not found.strip():
        found = next((line for line in body.splitlines() if line.strip()), "")
    line = " ".join(found.split())
    if not line:
        return "(empty body)"
    return line if len(line) <= _GIST else line[: _GIST - 3] + "..."


def _body(reply: _Reply) -> Any:
    """The body parsed as JSON when the response says it is JSON, else its text."""
    kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(reply.content)
        except ValueError:
            pass
    return reply.text


@dataclass(frozen=True)
class HttpOnWorker:
    """An HTTP step's rendered request, sent from the worker through a client of its own
    that checks ``egress`` there (names and DNS answers, as in the runner)."""

    exchange: Exchange
    egress: EgressPolicy
    timeout: float | None = None
    """The step's: the request is dropped then, or once Dask cancels the task."""

    def __call__(self, request: Mapping[str, Any]) -> Any:
        return watched(lambda: self._send(request), self.timeout, "the request")

    async def _send(self, request: Mapping[str, Any]) -> Any:
        async with new_client(self.egress) as http:
            return await self.exchange(http, request)


KINDS = {"http": HttpKind()}
