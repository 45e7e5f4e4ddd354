"""Which tenant a request acts for: a middleware that resolves it, a dependency that demands it.

As the real server (syft-space-api.md, "Tenancy"): single-tenant mode ignores `X-Tenant-Name`
and uses `root`. Multi-tenant mode resolves the header on every request (404 unknown, 403
inactive), and the models routes' dependency answers 400 when the header is missing or empty.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from reconciler.sandbox.auth import header
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import ROOT_TENANT, Tenant
from reconciler.sandbox.traffic import send_body

TENANT_KEY = "sandbox.tenant"
HEADER_REQUIRED = "X-Tenant-Name header is required for this endpoint when multi-tenancy is enabled"


async def _send_detail(send: Send, status: int, detail: str) -> None:
    # The real middleware formats this JSON by hand, without escaping the name; so do we.
    await send_body(send, status, f'{{"detail":"{detail}"}}'.encode())


class TenantMiddleware:
    """Puts the request's Tenant into the scope, or answers 404/403 for a bad one."""

    def __init__(self, app: ASGIApp, *, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store = self.state.store
        name = header(scope, b"x-tenant-name") if self.state.config.multi_tenancy else None
        if name:
            tenant = store.tenant(name)
            if tenant is None:
                await _send_detail(send, 404, f"Tenant '{name}' not found")
                return
        else:
            tenant = store.tenant(ROOT_TENANT)
            assert tenant is not None, "the store always has a root tenant"
        if not tenant.is_active:
            await _send_detail(send, 403, f"Tenant '{tenant.name}' is not active")
            return
        scope[TENANT_KEY] = tenant
        await self.app(scope, receive, send)


def refuse_stale(request: Request) -> None:
    """503 for a request that arrived before the last reset: the last check before a handler
    writes (its body may have come in after the reset; traffic.py checks after the latency)."""
    if request.app.state.sandbox.stale(request.scope):
        raise HTTPException(status_code=503, detail="Service Unavailable")


async def current_tenant(request: Request) -> Tenant:
    """FastAPI dependency of the models routes: the tenant, demanding the header when needed.

    Async only so that FastAPI does not send it to a thread pool.
    """
    state: SandboxState = request.app.state.sandbox
    refuse_stale(request)
    if state.config.multi_tenancy and not request.headers.get("x-tenant-name"):
        raise HTTPException(status_code=400, detail=HEADER_REQUIRED)
    tenant: Tenant = request.scope[TENANT_KEY]
    return tenant
