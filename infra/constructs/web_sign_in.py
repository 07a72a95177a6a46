"""Cognito user pool, hosted sign-in domain and the browser's app client.

Users are invited by an administrator (no self sign-up): every signed-in user can start a
GPU. The client uses the implicit flow because the static frontend takes the ID token from
the redirect fragment (frontend/js/auth.js); the ID token carries `aud`, which both API
Gateway's JWT authorizer and the inference backend check.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.nag import acknowledge

_SCOPES = (cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE)


class WebSignIn(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, domain_prefix: str, app_url: str
    ) -> None:
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
        self.client = self.user_pool.add_client(
            "Web",
            generate_secret=False,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(implicit_code_grant=True),
                scopes=list(_SCOPES),
                callback_urls=[app_url],
                logout_urls=[app_url],
            ),
        )
        self._app_url = app_url
        # CDK creates the authorizer resource in the API's scope when a route first uses it.
        self.api_authorizer = authorizers.HttpJwtAuthorizer(
            "CognitoJwt",
            self.issuer,
            jwt_audience=[self.client.user_pool_client_id],
            identity_source=["$request.header.Authorization"],
        )

    @property
    def issuer(self) -> str:
        return self.user_pool.user_pool_provider_url

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def login_url(self) -> str:
        """Hosted sign-in; it redirects back to the app with `#id_token=…`."""
        scope = "+".join(s.scope_name for s in _SCOPES)
        return (
            f"{self.domain.base_url()}/login?client_id={self.client.user_pool_client_id}"
            f"&response_type=token&scope={scope}&redirect_uri={self._app_url}"
        )
