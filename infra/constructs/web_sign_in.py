"""Cognito user pool, hosted sign-in domain and the browser's app client.

Users are invited by an administrator (no self sign-up): every signed-in user can start a
GPU. The browser is a public client (no secret): it signs in with the authorization code
grant and PKCE (the implicit grant is off: tokens never travel in a URL), renews its tokens
with a refresh token that Cognito rotates on every use and that is valid only for a short
while, and revokes it on sign-out (frontend/js/auth.js). The ID token is the bearer token: it
carries `aud` (the client id), which both API Gateway's JWT authorizer and the inference
backend check.

The pool exists before the distribution (the pages' Content-Security-Policy names the
sign-in domain); the client is added once CloudFront's URL, its callback, is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import SignInLifetimes
from infra.nag import acknowledge

_SCOPES = (cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE)


@dataclass(frozen=True)
class WebClient:
    """The browser's app client and what is derived from it."""

    client: cognito.UserPoolClient
    api_authorizer: authorizers.HttpJwtAuthorizer
    browser_config: dict[str, Any]
    """config.json's `oidc` object (frontend/js/config.js reads it)."""


class WebSignIn(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, domain_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            # Refresh token rotation needs the Essentials plan (the default for new pools).
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            reason="Users are invited by an administrator; TOTP MFA is offered, not forced, "
            "because the worst a session can do is start a capped, budgeted GPU.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            reason="Threat protection needs the paid Plus feature plan; sign-up is closed, "
            "so the pool holds only users an administrator invited.",
        )
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"{domain_prefix}-{Aws.ACCOUNT_ID}"
            ),
        )

    @property
    def issuer(self) -> str:
        return self.user_pool.user_pool_provider_url

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def origin(self) -> str:
        """`https://<prefix>.auth.<region>.amazoncognito.com`: the hosted UI and the token,
        revocation and logout endpoints (the pages' CSP lets them reach it)."""
        return self.domain.base_url()

    def add_web_client(self, *, app_url: str, lifetimes: SignInLifetimes) -> WebClient:
        """The browser's app client, redirecting back to `app_url` (the CloudFront URL)."""
        client = self.user_pool.add_client(
            "Web",
            # Public: a secret in a static page is no secret. PKCE binds the code instead.
            generate_secret=False,
            prevent_user_existence_errors=True,
            # SRP only (the password never leaves the browser); with rotation on, CDK leaves
            # out ALLOW_REFRESH_TOKEN_AUTH, which rotation replaces.
            auth_flows=cognito.AuthFlow(user_srp=True),
            id_token_validity=Duration.minutes(lifetimes.token_minutes),
            access_token_validity=Duration.minutes(lifetimes.token_minutes),
            refresh_token_validity=Duration.hours(lifetimes.refresh_hours),
            refresh_token_rotation_grace_period=Duration.seconds(lifetimes.rotation_grace_s),
            enable_token_revocation=True,
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=list(_SCOPES),
                callback_urls=[app_url],
                logout_urls=[app_url],
            ),
        )
        client_id = client.user_pool_client_id
        # CDK creates the authorizer resource in the API's scope when a route first uses it.
        authorizer = authorizers.HttpJwtAuthorizer(
            "CognitoJwt",
            self.issuer,
            jwt_audience=[client_id],
            identity_source=["$request.header.Authorization"],
        )
        base = self.origin
        return WebClient(
            client=client,
            api_authorizer=authorizer,
            browser_config={
                "authorizeUrl": f"{base}/oauth2/authorize",
                "tokenUrl": f"{base}/oauth2/token",
                "revokeUrl": f"{base}/oauth2/revoke",
                # Ends the hosted UI's own session, then comes back to the app.
                "endSessionUrl": f"{base}/logout?client_id={client_id}&logout_uri={app_url}",
                "clientId": client_id,
                "redirectUri": app_url,
                "scopes": [s.scope_name for s in _SCOPES],
            },
        )
