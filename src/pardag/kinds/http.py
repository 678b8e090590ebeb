"""The ``http`` kind: one HTTP request, its response as the step's output.

Params (every string in them may be a template, see :mod:`pardag.templates`):

* ``url`` (required, ``http://`` or ``https://``); ``method`` (``GET`` by default);
* ``headers`` and ``query``: mappings (a query value may be a list: the name repeats);
* ``json`` (any JSON value, sent as JSON) or ``body`` (text), not both;
* ``timeout``: seconds or a duration string (``"500ms"``, ``"2m"``); 30 seconds by default.
  It bounds each phase (connecting, each read); the step's own ``timeout`` bounds the whole;
* ``allow_status``: status codes that do not fail the step, besides every 2xx.

The output is ``{"status": int, "headers": {...}, "body": ...}``, the body parsed when the
response says it is JSON (``application/json`` or ``+json``) and text otherwise. Headers are
lower-cased names; a repeated header is joined with ``", "``. Redirects are followed. A status
that is neither 2xx nor allowed fails the step with one line, ``HTTP 404 from GET
http://...: <the body's title or first line>`` (an HTML page's ``<title>``, else its first
non-empty line, shortened), and the whole body goes into the step's log (``pardag logs RUN
STEP``); a connection error or timeout fails it naming the URL.

Values substituted into ``url`` are inserted as they are: put values in ``query`` (encoded for
you) or encode them with ``{{ value | urlencode }}``. All the steps of a run share one pooled
``httpx.AsyncClient`` (connections are reused); it is closed when the run ends.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pardag.errors import HTTPFailed
from pardag.kinds.base import Action, RunContext, idempotency_key, lazy_module
from pardag.states import ExecutorName
from pardag.steplog import current
from pardag.templates import is_template, namespace, render, template_problems, to_text
from pardag.units import parse_duration

if TYPE_CHECKING:
    from pardag.model import Step

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")

__all__ = ["DEFAULT_TIMEOUT", "HTTPFailed", "HttpKind", "client", "gist"]

DEFAULT_TIMEOUT = 30.0
"""Seconds each phase of a request may take when the step gives no ``timeout``."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_GIST = 200
"""Characters of a failed response's body that its one-line reason keeps."""
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def client(ctx: RunContext) -> httpx.AsyncClient:
    """The run's pooled client, made on first use and closed when the run ends."""

    def make() -> httpx.AsyncClient:
        made = httpx.AsyncClient(follow_redirects=True)
        ctx.on_close(made.aclose)
        return made

    return ctx.shared("http.client", make)


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
    try:
        seconds = parse_duration(timeout, "timeout")
    except ValueError as exc:
        return [str(exc)]
    return [] if seconds > 0 else ["timeout must be more than 0 seconds, e.g. timeout: 10"]


def _allow_problems(allow: Any) -> list[str]:
    if allow is None:
        return []
    if not isinstance(allow, list) or not all(
        isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
        for code in allow
    ):
        return [f"allow_status must be a list of status codes such as [404, 409], got {allow!r}"]
    return []


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
    )
    templated: tuple[str, ...] = ("url", "method", "headers", "query", "json", "body", "timeout")
    """The fields rendered as templates (validation checks what they read)."""
    template_names: tuple[str, ...] = ("idempotency_key",)
    """Names its templates read besides ``pardag.templates.TEMPLATE_NAMES``."""

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
        ]

    def action(self, step: Step, ctx: RunContext) -> Action:
        params = dict(step.params)
        allowed = frozenset(params.get("allow_status") or ())
        where = f"step {step.id!r} params"

        key = idempotency_key(ctx.run_id, step.id)

        async def call(inputs: Mapping[str, Any]) -> dict[str, Any]:
            names = namespace(inputs, ctx, idempotency_key=key)
            request = render(params, names, where=where)
            method = to_text(request.get("method") or "GET").upper()
            url = to_text(request["url"])
            response = await _send(client(ctx), method, url, request, where)
            return _output(response, method, url, allowed)

        return Action(call, ExecutorName.ASYNC, _bind_inputs)


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


async def _send(
    http: httpx.AsyncClient, method: str, url: str, request: Mapping[str, Any], where: str
) -> httpx.Response:
    """Send the rendered request; errors without a response become ``HTTPFailed``."""
    timeout = request.get("timeout")
    seconds = DEFAULT_TIMEOUT if timeout is None else parse_duration(timeout, f"{where}.timeout")
    headers = {str(k): to_text(v) for k, v in (request.get("headers") or {}).items()}
    query = {
        str(k): [to_text(i) for i in v] if isinstance(v, list) else to_text(v)
        for k, v in (request.get("query") or {}).items()
    }
    body = request.get("body")
    try:
        return await http.request(
            method,
            url,
            headers=headers,
            params=query,
            json=request.get("json"),
            content=None if body is None else to_text(body).encode(),
            timeout=seconds,
        )
    except httpx.TimeoutException as exc:
        raise HTTPFailed(f"{method} {url} timed out ({seconds:g}s per phase): {exc!r}") from exc
    except httpx.InvalidURL as exc:
        raise HTTPFailed(f"{method} {url!r}: the URL is invalid: {exc}") from exc
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise HTTPFailed(f"{method} {url} failed: {type(exc).__name__}: {reason}") from exc


def _output(
    response: httpx.Response, method: str, url: str, allowed: frozenset[int]
) -> dict[str, Any]:
    body = _body(response)
    status = response.status_code
    if not (200 <= status < 300 or status in allowed):
        text = response.text
        log = current()
        if log is not None and text.strip():
            log.write("log", f"HTTP {status} from {method} {url}, response body:\n{text}\n")
        raise HTTPFailed(f"HTTP {status} from {method} {url}: {gist(text)}", status)
    return {"status": status, "headers": dict(response.headers.items()), "body": body}


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


def _body(response: httpx.Response) -> Any:
    """The body parsed as JSON when the response says it is JSON, else its text."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


KINDS = {"http": HttpKind()}
