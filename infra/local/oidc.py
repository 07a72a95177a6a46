"""A minimal OpenID Connect provider for the local mode: the code flow the Cognito hosted UI
speaks, so that the browser's sign-in can be tested end to end without AWS.

- `/authorize` approves at once (no login form): the user is `login_hint` or the fixed
  development user; it redirects back with `code` and `state`.
- `/token`: `authorization_code` with PKCE (S256 only, as a public client must) and
  `refresh_token` with rotation: each use revokes the refresh token presented and returns a
  new one; presenting a rotated-out token again is reuse, which revokes the whole family
  (RFC 9700 §4.14.2) and answers `invalid_grant`.
- `/revoke` (RFC 7009): revokes a refresh token and its family; 200 whatever the token was.

Tokens are signed by the development issuer, so the control API and the backend verify them
exactly as the development token. Errors are OAuth error objects (RFC 6749 §5.2).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from infra.local.issuer import DEV_USER, DevIssuer

CODE_TTL_S = 60
"""An authorization code is single-use and short-lived (RFC 6749 §4.1.2 suggests ≤ 10 min)."""
MAX_LIVE_GRANTS = 10_000
"""Codes and refresh tokens held at once; a flood of sign-ins is refused, not stored."""
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class OidcError(Exception):
    """An OAuth error: `error` is the RFC 6749 code, `description` says what was wrong."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class RedirectError(OidcError):
    """An error that goes back to the client's redirect URI (its client and URI are valid)."""

    def __init__(self, error: str, description: str, *, location: str) -> None:
        super().__init__(error, description, status=302)
        self.location = location


def pkce_challenge(verifier: str) -> str:
    """S256: BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _Code:
    user: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float


@dataclass
class _Family:
    """Every refresh token descended from one sign-in; reuse of any revokes them all."""

    user: str
    scope: str
    expires_at: float
    live: str | None = None
    revoked: bool = False
    spent: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ProviderSettings:
    client_id: str
    redirect_uri: str
    token_ttl_s: int
    refresh_ttl_s: int
    default_user: str = DEV_USER


class LocalOidcProvider:
    """The provider's logic over plain parameter mappings; the HTTP routes live in web.py.

    Thread-safe: FastAPI runs these from its thread pool.
    """

    def __init__(
        self,
        *,
        issuer: DevIssuer,
        settings: ProviderSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._families: dict[str, _Family] = {}
        self._family_of: dict[str, str] = {}  # refresh token (live or spent) -> family id

    @property
    def settings(self) -> ProviderSettings:
        return self._settings

    # ---- /authorize --------------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> str:
        """The URL to redirect the browser to: the client's redirect URI with `code` and
        `state`. Raises OidcError (shown, not redirected) for an unknown client or redirect
        URI, RedirectError for anything else wrong with the request."""
        s = self._settings
        if params.get("client_id") != s.client_id:
            raise OidcError("invalid_client", f"unknown client_id {params.get('client_id')!r}")
        if params.get("redirect_uri") != s.redirect_uri:
            raise OidcError(
                "invalid_request",
                f"redirect_uri {params.get('redirect_uri')!r} is not registered for this client",
            )
        state = params.get("state", "")

        def refuse(error: str, description: str) -> RedirectError:
            query = {"error": error, "error_description": description}
            if state:
                query["state"] = state
            return RedirectError(
                error, description, location=f"{s.redirect_uri}?{urlencode(query)}"
            )

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "only response_type=code is supported")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "PKCE with code_challenge_method=S256 is required")
        challenge = params.get("code_challenge", "")
        if not _CHALLENGE.match(challenge):
            raise refuse("invalid_request", "code_challenge must be a base64url SHA-256 digest")
        scope = params.get("scope", "openid")
        if "openid" not in scope.split():
            raise refuse("invalid_scope", "the openid scope is required")

        code = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            if len(self._codes) + len(self._family_of) >= MAX_LIVE_GRANTS:
                raise refuse("temporarily_unavailable", "too many sign-ins in flight")
            self._codes[code] = _Code(
                user=params.get("login_hint") or s.default_user,
                redirect_uri=s.redirect_uri,
                challenge=challenge,
                scope=scope,
                expires_at=self._clock() + CODE_TTL_S,
            )
        query = {"code": code}
        if state:
            query["state"] = state
        return f"{s.redirect_uri}?{urlencode(query)}"

    # ---- /token ------------------------------------------------------------------------

    def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token response for an `authorization_code` or `refresh_token` grant."""
        if form.get("client_id") != self._settings.client_id:
            raise OidcError("invalid_client", "unknown or missing client_id", status=401)
        match form.get("grant_type"):
            case "authorization_code":
                return self._exchange_code(form)
            case "refresh_token":
                return self._refresh(form)
            case other:
                raise OidcError("unsupported_grant_type", f"grant_type {other!r} is not supported")

    def _exchange_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier):
            raise OidcError("invalid_request", "code_verifier must be 43-128 unreserved characters")
        with self._lock:
            # Single use: taken out before anything is checked, so a failed try spends it too.
            code = self._codes.pop(form.get("code", ""), None)
            now = self._clock()
            if code is None or code.expires_at <= now:
                raise OidcError("invalid_grant", "the code is unknown, used or expired")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OidcError("invalid_grant", "redirect_uri differs from the authorize request")
            if not secrets.compare_digest(pkce_challenge(verifier), code.challenge):
                raise OidcError("invalid_grant", "code_verifier does not match the code_challenge")
            family_id = secrets.token_urlsafe(16)
            family = _Family(
                user=code.user, scope=code.scope, expires_at=now + self._settings.refresh_ttl_s
            )
            self._families[family_id] = family
            return self._tokens(family_id, family, now)

    def _refresh(self, form: Mapping[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token", "")
        with self._lock:
            now = self._clock()
            self._forget_expired()
            family_id = self._family_of.get(presented)
            family = None if family_id is None else self._families.get(family_id)
            if family_id is None or family is None or family.revoked:
                raise OidcError("invalid_grant", "the refresh token is unknown, expired or revoked")
            if presented != family.live:
                # A rotated-out token came back: someone holds a copy. End the sign-in.
                family.revoked = True
                raise OidcError("invalid_grant", "the refresh token was already used (reuse)")
            family.spent.add(presented)
            return self._tokens(family_id, family, now)

    def _tokens(self, family_id: str, family: _Family, now: float) -> dict[str, Any]:
        """Signs a new ID and access token and rotates the family's refresh token."""
        s = self._settings
        refresh = secrets.token_urlsafe(48)
        family.live = refresh
        self._family_of[refresh] = family_id
        issued = int(now)
        id_token = self._issuer.issue(
            family.user, ttl_s=s.token_ttl_s, now=issued, aud=s.client_id, token_use="id"
        )
        # Like Cognito's: no `aud` (so it cannot pass for an ID token), `client_id` instead.
        access_token = self._issuer.issue(
            family.user,
            ttl_s=s.token_ttl_s,
            now=issued,
            aud=None,
            client_id=s.client_id,
            scope=family.scope,
            token_use="access",
        )
        return {
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": s.token_ttl_s,
        }

    # ---- /revoke -----------------------------------------------------------------------

    def revoke(self, form: Mapping[str, str]) -> None:
        """Revokes the refresh token's whole sign-in. Unknown tokens are fine (RFC 7009 §2.2)."""
        if form.get("client_id") != self._settings.client_id:
            raise OidcError("invalid_client", "unknown or missing client_id", status=401)
        with self._lock:
            family_id = self._family_of.get(form.get("token", ""))
            family = None if family_id is None else self._families.get(family_id)
            if family is not None:
                family.revoked = True

    def is_revoked(self, refresh_token: str) -> bool:
        """Whether the refresh token can no longer be used (for tests and logs)."""
        with self._lock:
            family_id = self._family_of.get(refresh_token)
            family = None if family_id is None else self._families.get(family_id)
            return family is None or family.revoked or family.live != refresh_token

    def _forget_expired(self) -> None:
        now = self._clock()
        for code, grant in list(self._codes.items()):
            if grant.expires_at <= now:
                del self._codes[code]
        for family_id, family in list(self._families.items()):
            if family.expires_at <= now:
                del self._families[family_id]
                for token in (*family.spent, family.live):
                    if token is not None:
                        self._family_of.pop(token, None)
