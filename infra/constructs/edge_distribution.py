"""CloudFront in front of everything the browser talks to.

- default: the private site bucket through origin access control (cached);
- `/api/*`: the HTTP API (not cached; every viewer header but Host, so `Authorization` gets
  through);
- `/ws/*`: nginx on one GPU host of the fleet. The behavior's CloudFront Function
  (`HostRoutes`) reads the host's public DNS name from the KeyValueStore and switches the
  request's origin to it; the behavior's own origin is a placeholder the function always
  replaces (`UNROUTED_ORIGIN`). CloudFront VPC origins do not carry WebSockets, hence public
  origins; a host is closed to everything but CloudFront by its security group (CloudFront's
  origin-facing prefix list) and by nginx, which requires the secret `X-Origin-Verify` header
  that only CloudFront adds — a custom header of the behavior's origin, which the function
  keeps. `AllViewer` forwards the WebSocket upgrade headers.

CloudFront talks HTTP to the hosts: it accepts an origin certificate only from a public CA for
the origin's own name, which an `ec2-….amazonaws.com` name cannot have (docs/operations.md).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

UNROUTED_ORIGIN: Final = "unrouted.invalid"
"""The `/ws/*` behavior's origin as configured: the function replaces it on every request it
forwards and answers every other one itself. `.invalid` is reserved and never resolves (RFC 6761,
section 6.4), so even a request that escaped the function could only fail (502), never carry
the origin secret to a host that somebody else controls."""


class EdgeDistribution(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        site_bucket: s3.IBucket,
        log_bucket: s3.IBucket,
        api_domain_name: str,
        api_path_prefix: str,
        host_port: int,
        host_path_pattern: str,
        host_router: cloudfront.FunctionAssociation,
        origin_verify_header: str,
        origin_verify_value: str,
        content_security_policy: str,
    ) -> None:
        super().__init__(scope, construct_id)
        api_origin = origins.HttpOrigin(
            api_domain_name,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        host_origin = origins.HttpOrigin(
            UNROUTED_ORIGIN,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=host_port,
            custom_headers={origin_verify_header: origin_verify_value},
            # A stopping host refuses fast; no point in CloudFront's 3 x 10 s retries.
            connection_attempts=1,
            connection_timeout=Duration.seconds(5),
            read_timeout=Duration.seconds(60),
        )
        uncached_api = cloudfront.BehaviorOptions(
            origin=api_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )
        uncached_host = cloudfront.BehaviorOptions(
            origin=host_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER,
            function_associations=[host_router],
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Spinup: frontend, control API and inference socket",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=_page_headers(self, content_security_policy),
                compress=True,
            ),
            additional_behaviors={
                f"{api_path_prefix}/*": uncached_api,
                host_path_pattern: uncached_host,
            },
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/",
        )
        for finding, reason in (
            (
                "AwsSolutions-CFR1",
                "The audience is not limited by country; sign-in gates every use.",
            ),
            (
                "AwsSolutions-CFR2",
                "No WAF (a fixed monthly cost larger than the idle system's): the API needs a "
                "Cognito JWT and is throttled, the socket checks the token in its hello.",
            ),
            (
                "AwsSolutions-CFR5",
                "The GPU origins are EC2 public DNS names; no public CA issues certificates "
                "for them and CloudFront accepts no other, so that leg is HTTP. It is limited to "
                "CloudFront's prefix list and a secret header (docs/operations.md: custom domain).",
            ),
        ):
            acknowledge(self.distribution, finding, reason=reason)
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            reason="The distribution uses the default *.cloudfront.net certificate, whose "
            "viewer TLS policy CloudFront fixes; a custom domain with an ACM certificate lifts it.",
        )

    @property
    def domain_name(self) -> str:
        return self.distribution.distribution_domain_name


def _page_headers(scope: Construct, csp: str) -> cloudfront.ResponseHeadersPolicy:
    """The pages' security headers: the Content-Security-Policy (infra/csp.py, the same the
    local mode sends) and what CloudFront's managed SecurityHeaders policy sets, with a
    stricter referrer policy (no page needs to tell anyone where it came from)."""
    override = True  # an origin (S3) cannot weaken them
    return cloudfront.ResponseHeadersPolicy(
        scope,
        "PageHeaders",
        comment="Spinup pages: Content-Security-Policy and security headers",
        security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
            content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                content_security_policy=csp, override=override
            ),
            content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=override),
            frame_options=cloudfront.ResponseHeadersFrameOptions(
                frame_option=cloudfront.HeadersFrameOption.SAMEORIGIN, override=override
            ),
            referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=override
            ),
            strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                access_control_max_age=Duration.days(365),
                include_subdomains=True,
                override=override,
            ),
        ),
    )
