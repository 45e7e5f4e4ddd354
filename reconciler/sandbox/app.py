"""The sandbox's FastAPI app: the real server's models, types and tenants routes over a Store, and
the datasets, endpoints and policies routes of their own modules.

Routes, their order, handler names and body models mirror the real server, so that FastAPI gives
the same 307s, 405s, 422s and `/openapi.json` by construction. Handlers are async and call the
store directly (serialised by the event loop), and return the store's JSON as is; the declared
response models only document it. syft-space-api.md is the reference for every status and body.
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from reconciler.sandbox import datasets, endpoints, policies
from reconciler.sandbox.auth import AdminKeyMiddleware
from reconciler.sandbox.bodies import (
    CreateModelRequest,
    CreateTenantRequest,
    HealthcheckResponse,
    ModelListItem,
    ModelResponse,
    ModelResponseWithEndpoints,
    ModelTypeInfoResponse,
    TenantResponse,
    UpdateModelRequest,
)
from reconciler.sandbox.catalog import ModelType
from reconciler.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from reconciler.sandbox.routing import Routes, send_json
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import NameTaken, Store, Tenant
from reconciler.sandbox.tenancy import TenantMiddleware, current_tenant, refuse_stale
from reconciler.sandbox.traffic import TrafficMiddleware, quiet_uvicorn_errors

VERSION = "0.1.0"  # what the real server reports in /api/v1/health and /openapi.json

_TenantDep = Annotated[Tenant, Depends(current_tenant)]
# The actions route's optional body, `{}` by default as in the real server.
_ACTION_BODY = Body(default={})

_BEARER_SCHEME: dict[str, Any] = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}

# The real server's CORS settings, so that preflights answer alike.
_CORS_ORIGINS = [
    "http://localhost:5173",
    "http://localhost:5174",
    "http://localhost:5175",
    "http://localhost:8080",
    "https://syfthub.openmined.org",
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
]


def _type_routes(app: FastAPI, state: SandboxState) -> None:
    router = Routes(app, "/api/v1/models", tags=["models"])

    def type_or_404(name: str) -> ModelType:
        found = state.catalog.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Model type '{name}' not found")
        return found

    @router.get("/types/", response_model=list[ModelTypeInfoResponse])
    async def list_model_types() -> Response:
        return send_json([t.info() for t in state.catalog])

    @router.get("/types/{name}", response_model=ModelTypeInfoResponse)
    async def get_model_type(name: str) -> Response:
        return send_json(type_or_404(name).info())

    @router.get("/types/{name}/schema", response_model=dict[str, Any])
    async def get_model_type_schema(name: str) -> Response:
        return send_json(type_or_404(name).config_schema)

    @router.post("/types/{dtype}/actions/{action_name}")
    async def execute_type_action(
        dtype: str, action_name: str, body: dict[str, Any] = _ACTION_BODY
    ) -> dict[str, Any]:
        # Provider helpers (e.g. listing a provider's models) need the provider; the sandbox
        # has none, so every action of an offered type is unknown.
        type_or_404(dtype)
        raise HTTPException(
            status_code=404,
            detail=f"Action '{action_name}' not found for model type '{dtype}'",
        )


def _model_routes(app: FastAPI, state: SandboxState) -> None:
    router = Routes(app, "/api/v1/models", tags=["models"])

    @router.post("/", response_model=ModelResponse, status_code=201)
    async def create_model(request: CreateModelRequest, tenant: _TenantDep) -> Response:
        # The type is checked before the name (syft-space-api.md, "Models").
        if state.catalog.get(request.dtype) is None:
            raise HTTPException(status_code=400, detail=f"Model type '{request.dtype}' not found")
        try:
            created = state.store.create_model(
                tenant.id,
                name=request.name,
                dtype=request.dtype,
                configuration=request.configuration,
                summary=request.summary,
                tags=request.tags,
            )
        except NameTaken:
            if state.draw(state.config.race_500_rate):
                # The real server's unhandled unique-constraint error under a create race.
                return PlainTextResponse("Internal Server Error", status_code=500)
            raise HTTPException(status_code=409, detail=f"Model '{request.name}' already exists") from None
        return send_json(created, 201)

    @router.get("/", response_model=list[ModelListItem])
    async def list_models(tenant: _TenantDep) -> Response:
        return send_json(state.store.models_json(tenant.id))

    @router.get("/{name}", response_model=ModelResponseWithEndpoints)
    async def get_model(name: str, tenant: _TenantDep) -> Response:
        found = state.store.model_json(tenant.id, name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Model '{name}' not found")
        return send_json(found)

    @router.patch("/{name}", response_model=ModelResponse)
    async def update_model(name: str, request: UpdateModelRequest, tenant: _TenantDep) -> Response:
        try:
            updated = state.store.update_model(
                tenant.id,
                name,
                new_name=request.name,
                summary=request.summary,
                tags=request.tags,
            )
        except NameTaken as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        if updated is None:
            raise HTTPException(status_code=404, detail=f"Model '{name}' not found")
        return send_json(updated)

    @router.delete("/{name}", response_model=dict[str, str])
    async def delete_model(name: str, tenant: _TenantDep) -> Response:
        if not state.store.delete_model(tenant.id, name):
            raise HTTPException(status_code=404, detail=f"Model '{name}' not found")
        return send_json({"message": f"Successfully deleted model '{name}'"})


def _health_route(app: FastAPI, state: SandboxState) -> None:
    router = Routes(app, "/api/v1/models", tags=["models"])

    @router.get("/{name}/health", response_model=HealthcheckResponse)
    async def healthcheck(name: str, tenant: _TenantDep) -> Response:
        # Answers without contacting any provider: healthy whenever the type is offered.
        dtype = state.store.model_dtype(tenant.id, name)
        if dtype is None:
            raise HTTPException(status_code=404, detail=f"Model '{name}' not found")
        offered = state.catalog.get(dtype)
        if offered is None:
            return send_json({"status": "unhealthy", "message": f"Model type '{dtype}' not found"})
        return send_json({"status": "healthy", "message": offered.healthy_message})


def _tenant_routes(app: FastAPI, state: SandboxState) -> None:
    # The collection has no trailing slash here, unlike /models/ (syft-space-api.md).
    router = Routes(app, "/api/v1/tenants", tags=["tenants"])

    @router.post("", response_model=TenantResponse, status_code=201)
    async def create_tenant(request: CreateTenantRequest, http: Request) -> Response:
        refuse_stale(http)
        if not state.config.multi_tenancy:
            raise HTTPException(
                status_code=403,
                detail="Multi-tenancy is disabled. Cannot create new tenants.",
            )
        try:
            created = state.store.create_tenant(
                request.name, request.display_name, domain=request.domain, meta=request.meta
            )
        except NameTaken as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return send_json(created, 201)

    @router.get("", response_model=list[TenantResponse])
    async def list_tenants() -> Response:
        return send_json(state.store.tenants_json())

    @router.get("/{name}", response_model=TenantResponse)
    async def get_tenant(name: str) -> Response:
        found = state.store.tenant_json(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Tenant '{name}' not found")
        return send_json(found)


async def _unstorable(_request: Request, _exc: Exception) -> Response:
    # A lone surrogate (valid JSON, invalid UTF-8) cannot be stored; the real server's database
    # layer fails alike and answers its plain 500. Handled here, it leaves no traceback in the log.
    return PlainTextResponse("Internal Server Error", status_code=500)


def _declare_bearer_scheme(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(_BEARER_SCHEME)
        return generate()  # cached by FastAPI from the first call on

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: SandboxConfig = DEFAULT_CONFIG, db: str | Path = ":memory:") -> FastAPI:
    """A sandbox app over a fresh or existing SQLite database (`:memory:` or a file path).

    `app.state.sandbox` is its SandboxState: reset it, swap its config, read its stats.
    """
    quiet_uvicorn_errors()
    state = SandboxState(config, Store(db))
    # strict_content_type=False: the real server (an older FastAPI) parses a body without
    # Content-Type as JSON.
    app = FastAPI(
        title="Syft Space",
        version=VERSION,
        lifespan=state.lifespan,
        strict_content_type=False,
    )
    app.state.sandbox = state
    _declare_bearer_scheme(app)
    app.add_exception_handler(UnicodeEncodeError, _unstorable)

    # Registered in the real server's order, which decides 405s and the Allow header.
    _type_routes(app, state)
    _model_routes(app, state)
    _health_route(app, state)
    endpoints.register(app, state, datasets.register(app, state))
    policies.register(app, state)
    _tenant_routes(app, state)

    @Routes(app, "/api/v1", tags=["system"]).get("/health", response_model=None)
    async def health() -> dict[str, str]:
        return {"status": "healthy", "version": VERSION}

    @app.get("/", tags=["system"])
    async def redirect_root() -> RedirectResponse:
        return RedirectResponse(url="/docs", status_code=307)

    # Outermost last: traffic → CORS → admin key → tenant → routes, as in the real server.
    app.add_middleware(TenantMiddleware, state=state)
    app.add_middleware(AdminKeyMiddleware, state=state)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=_CORS_ORIGINS,
        allow_origin_regex=r"^https://[\w-]+\.syfthub\.ngrok\.app$",
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(TrafficMiddleware, state=state, routes=app.router.routes)
    return app
