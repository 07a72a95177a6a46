"""The local mode's front door on one port: the control API, the frontend, `/config.json`
and the sockets.

In AWS, CloudFront serves the frontend from S3 (with the Content-Security-Policy as a response
headers policy), routes `/api/*` to API Gateway and each `/ws/{host}/inference` socket to its
host (a CloudFront Function reading the route table); Cognito signs users in. Here one ASGI
app does all of it: the development issuer's JWKS, its code-flow provider under
`/local-oidc/`, the socket router (`infra.local.ws_proxy`), and a config that carries either a
development token or the provider's endpoints. `/config.json?user=NAME` carries a development
token for user NAME, so that two tabs (or tests) can be two users.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from infra.csp import HEADER as CSP_HEADER
from infra.local.oidc import LocalOidcProvider, OidcError, ProviderSettings, RedirectError
from infra.local.ws_proxy import proxy_socket
from lambdas.aws.routes import RouteTable

API_PREFIX = "/api/"
OIDC_PREFIX = "/local-oidc"
OIDC_SCOPES = ("openid", "email", "profile")
MAX_FORM_BYTES = 16_384
"""A token or revocation request is a few hundred bytes; anything larger is refused unread."""
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
USER_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"
"""Names `/config.json?user=` issues tokens for: what a user id in the records and logs may be."""
_USER = re.compile(USER_PATTERN)


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


def _config_route(
    config: dict[str, Any], dev_token: Callable[[str], str] | None
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def config_json(request: Request) -> JSONResponse:
        user = request.query_params.get("user")
        if user is None:
            return JSONResponse(config, headers={"Cache-Control": "no-store"})
        if dev_token is None:
            return _bad_request(
                "dev_tokens_off",
                "development tokens are off here (SPINUP_LOCAL_SIGN_IN=code): sign in instead",
            )
        if not _USER.fullmatch(user):
            return _bad_request(
                "bad_user",
                "user must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
                f"letter or digit; got {user[:80]!r}",
            )
        return JSONResponse(
            {**config, "devToken": dev_token(user)}, headers={"Cache-Control": "no-store"}
        )

    return config_json


def _bad_request(error: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "message": message}, status_code=400, headers={"Cache-Control": "no-store"}
    )


def _add_socket_routes(app: FastAPI, routes: RouteTable) -> None:
    async def routed(websocket: WebSocket) -> None:
        await proxy_socket(websocket, lambda host: routes.entries().get(host))

    # Every socket path under /ws/: those that name no host are refused as unknown hosts are.
    app.add_api_websocket_route("/ws/{path:path}", routed)


def front_config(
    app: FastAPI, *, host: str, port: int, lifespan: Literal["on", "off"] = "on"
) -> uvicorn.Config:
    """uvicorn's configuration for the web front.

    Its sockets never negotiate permessage-deflate. In AWS the browser's offer goes through
    CloudFront to the backend, which refuses it (frames are JPEG; `gpu_host.backend.server`).
    Here the router ends the browser's socket itself, so it answers as the backend would.
    Accepting the offer (uvicorn's default) had every browser, and the benchmarks' clients,
    deflate each frame for nothing, on the cores the local host shares."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan=lifespan,
        ws_per_message_deflate=False,
    )


def add_local_routes(
    app: FastAPI,
    *,
    frontend_dir: Path,
    config: dict[str, Any],
    jwks: dict[str, Any],
    csp: str,
    oidc: LocalOidcProvider | None = None,
    routes: RouteTable | None = None,
    dev_token: Callable[[str], str] | None = None,
    models: Sequence[Mapping[str, str]] = (),
) -> FastAPI:
    """Mount the frontend and the local-only routes on the control API app; every response
    carries the pages' Content-Security-Policy (`csp`), as CloudFront adds it in AWS.

    `routes`: route `/ws/{host}/inference` sockets through this table. `dev_token(user)`:
    serve `/config.json?user=NAME` with a development token for NAME. `models`: the user
    models the hosts serve beyond the built-in ones, which config.json's `models` offers the
    UI (`gpu_host.models.user_models.offered_models`); none: no `models` key, as before."""
    if models:
        config = {**config, "models": [dict(m) for m in models]}

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

    async def jwks_json() -> JSONResponse:
        return JSONResponse(jwks)

    app.add_api_route(
        "/config.json",
        _config_route(config, dev_token),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_api_route("/.well-known/jwks.json", jwks_json, methods=["GET"], include_in_schema=False)
    if oidc is not None:
        _add_oidc_routes(app, oidc, jwks)
    if routes is not None:
        _add_socket_routes(app, routes)
    # Last, so that every route above and the API's own routes match first.
    app.mount("/", StaticFiles(directory=frontend_dir, html=True), name="frontend")
    return app
