"""``pardag serve``'s HTTP API: workflows, runs, approvals and live events over the run store.

FastAPI on uvicorn (``pip install 'pardag[server]'``). ``create_app(store)`` is the ASGI app;
``Service`` runs it with uvicorn and workers in one process. Every request but ``/healthz``
carries a Bearer token (``pardag.tokens``) whose organisation scopes what it sees.
"""

from __future__ import annotations

from pardag.server.app import create_app

__all__ = ["create_app"]
