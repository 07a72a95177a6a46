"""The local mode's front door on one port: the control API, the frontend and `/config.json`.

In AWS, CloudFront serves the frontend from S3 and routes `/api/*` to API Gateway; here one
ASGI app does both, plus the development issuer's JWKS and a config that carries a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles


def add_local_routes(
    app: FastAPI, *, frontend_dir: Path, config: dict[str, Any], jwks: dict[str, Any]
) -> FastAPI:
    """Mount the frontend and the local-only routes on the control API app."""

    async def config_json() -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-store"})

    async def jwks_json() -> JSONResponse:
        return JSONResponse(jwks)

    app.add_api_route("/config.json", config_json, methods=["GET"], include_in_schema=False)
    app.add_api_route("/.well-known/jwks.json", jwks_json, methods=["GET"], include_in_schema=False)
    # Last, so that every route above and the API's own routes match first.
    app.mount("/", StaticFiles(directory=frontend_dir, html=True), name="frontend")
    return app
