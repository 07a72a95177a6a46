"""The local mode's front door on one port: the control API, the frontend and `/config.json`.

In AWS, CloudFront serves the frontend from S3 (with the Content-Security-Policy as a response
headers policy) and routes `/api/*` to API Gateway; Cognito signs users in. Here one ASGI app
does all of it: the development issuer's JWKS, its code-flow provider under `/local-oidc/`,
and a config that carries either a development token or the provider's endpoints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from infra.csp import HEADER as CSP_HEADER
from infra.local.oidc import LocalOidcProvider, OidcError, ProviderSettings, RedirectError

API_PREFIX = "/api/"
OIDC_PREFIX = "/local-oidc"
OIDC_SCOPES = ("openid", "email", "profile")
MAX_FORM_BYTES = 16_384
"""A token or revocation request is a few hundred bytes; anything larger is refused unread."""
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def code_flow_config(ui_origin: str, provider: ProviderSettings) -> dict[str, Any]:
    """config.json's `oidc` object for the local provider (the CDK app writes Cognito's)."""
    base = f"{ui_origin}{OIDC_PREFIX}"
    return {
        "authorizeUrl": f"{base}/authorize",
        "tokenUrl": f"{base}/token",
        "revokeUrl": f"{base}/revoke",
        "clientId": provider.client_id,
        "redirectUri": provider.redirect_uri,
        "scopes": list(OIDC_SCOPES),
    }


async def _form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (RFC 6749 §3.2), or OidcError."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise OidcError("invalid_request", "send the parameters form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OidcError("invalid_request", "request body too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _oauth_error(error: OidcError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=_NO_STORE)


def _add_oidc_routes(app: FastAPI, oidc: LocalOidcProvider, jwks: dict[str, Any]) -> None:
    async def authorize(request: Request) -> Response:
        try:
            location = oidc.authorize(dict(request.query_params))
        except RedirectError as error:
            return RedirectResponse(error.location, status_code=302)
        except OidcError as error:
            # Never redirect to a client or URI we do not know (RFC 6749 §4.1.2.1).
            return _oauth_error(error)
        return RedirectResponse(location, status_code=302)

    async def token(request: Request) -> Response:
        try:
            return JSONResponse(oidc.token(await _form(request)), headers=_NO_STORE)
        except OidcError as error:
            return _oauth_error(error)

    async def revoke(request: Request) -> Response:
        try:
            oidc.revoke(await _form(request))
        except OidcError as error:
            return _oauth_error(error)
        return Response(status_code=200, headers=_NO_STORE)

    async def jwks_json() -> JSONResponse:
        return JSONResponse(jwks)

    routes: list[tuple[str, Callable[..., Awaitable[Response]], str]] = [
        ("/authorize", authorize, "GET"),
        ("/token", token, "POST"),
        ("/revoke", revoke, "POST"),
        ("/jwks.json", jwks_json, "GET"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(
            f"{OIDC_PREFIX}{path}", endpoint, methods=[method], include_in_schema=False
        )


def add_local_routes(
    app: FastAPI,
    *,
    frontend_dir: Path,
    config: dict[str, Any],
    jwks: dict[str, Any],
    csp: str,
    oidc: LocalOidcProvider | None = None,
) -> FastAPI:
    """Mount the frontend and the local-only routes on the control API app; every response
    carries the pages' Content-Security-Policy (`csp`), as CloudFront adds it in AWS."""

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith(API_PREFIX):
            # As in AWS, where only the pages' behavior has the headers policy (and the
            # API's own docs page needs inline script).
            return response
        response.headers[CSP_HEADER] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def config_json() -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-store"})

    async def jwks_json() -> JSONResponse:
        return JSONResponse(jwks)

    app.add_api_route("/config.json", config_json, methods=["GET"], include_in_schema=False)
    app.add_api_route("/.well-known/jwks.json", jwks_json, methods=["GET"], include_in_schema=False)
    if oidc is not None:
        _add_oidc_routes(app, oidc, jwks)
    # Last, so that every route above and the API's own routes match first.
    app.mount("/", StaticFiles(directory=frontend_dir, html=True), name="frontend")
    return app
