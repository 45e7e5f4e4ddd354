"""A loopback stand-in for the Syft Space REST API (models, datasets, endpoints, policies, their
types, tenants), with faults.

It answers like the real server, status for status and body for body (../shared/syft-space-api.md
and syft-space-api-kinds.md), over FastAPI and SQLite, fast enough that benchmarks measure the
reconciler, not the server.
"""

from reconciler.sandbox.app import create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.server import SandboxServer, serve

__all__ = ["SandboxConfig", "SandboxServer", "create_app", "serve"]
