"""Every error of the HTTP API as one JSON shape: ``{"error": {"code", "message"}}``.

The message is the sentence the command line prints for the same mistake (the same
exception's text); a workflow that does not validate also lists its ``problems``, each as
``pardag validate`` words it, with its line. Bad input is a 4xx, never a 500; an unexpected
failure is a 500 that says so without a traceback (the server's log has it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from pardag.errors import ArgumentError, PardagError, StoreError, ValidationError

__all__ = ["RESPONSES", "ApiError", "ErrorBody", "error_body", "install"]

log = logging.getLogger("pardag.server")


class ApiError(Exception):
    """An answer other than success: ``status``, a short ``code`` and a sentence saying what
    to do (``headers`` for a 401's ``WWW-Authenticate``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The JSON of an error."""
    return {"error": {"code": code, "message": message, **more}}


def _answer(status: int, code: str, message: str, **more: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **more), status_code=status)


def _for(request: Request, status: int, code: str, message: str, **more: Any) -> Response:
    """The error as JSON, or as the web page's error page for a page's path (the app's
    ``state.error_page``, set when the page is served)."""
    page = getattr(request.app.state, "error_page", None)
    shown = page(request, status, message) if page is not None else None
    return shown if shown is not None else _answer(status, code, message, **more)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    response = _for(request, exc.status, exc.code, exc.message)
    response.headers.update(exc.headers or {})
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [_field_problem(e) for e in exc.errors()]
    return _for(request, 422, "invalid_request", "the request is invalid: " + "; ".join(problems))


def _field_problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where or 'body'}: {message}"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"there is no {request.url.path} here; the API is under /api (/api/openapi.json)"
    return _for(request, exc.status_code, codes.get(exc.status_code, "error"), message)


async def _pardag_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ValidationError):
        return _for(
            request,
            422,
            "invalid_workflow",
            str(exc),
            problems=[{"step": p.step, "where": p.where, "message": str(p)} for p in exc.problems],
        )
    if isinstance(exc, ArgumentError):
        return _for(request, 400, "refused", str(exc))
    if isinstance(exc, StoreError):
        log.error("run store error: %s", exc)
        return _for(request, 503, "store_unavailable", str(exc))
    return _for(request, 400, "error", str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return _for(
        request,
        500,
        "internal",
        f"pardag failed unexpectedly: {type(exc).__name__}; the server's log has the traceback",
    )


class ErrorDetail(BaseModel):
    """What went wrong (``code``) and what to do (``message``); an invalid workflow's
    ``problems`` too."""

    code: str
    message: str
    problems: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every error's JSON."""

    error: ErrorDetail


_ERRORS = {
    400: "The request cannot be done as sent (the message says why)",
    401: "No token, or one malformed, unknown, expired or revoked",
    403: "The token's role is too low for this",
    404: "No such object in your organisation (another organisation's is not found either)",
    409: "The object's state does not allow it now",
    413: "The request body is over the server's limit",
    422: "The request, or the workflow in it, is invalid (each problem listed)",
    503: "The run store cannot be reached",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()
}
"""The error answers every API route documents in the OpenAPI schema, all an ``ErrorBody``
(FastAPI's own 422 replaced: its shape is not ours)."""


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PardagError, _pardag_error)
    app.add_exception_handler(Exception, _unexpected)
