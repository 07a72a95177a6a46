import cf from 'cloudfront';

// Routes a socket to its GPU host: CloudFront Function (runtime cloudfront-js-2.0) on the
// distribution's `/ws/*` behavior, viewer request. This file is exactly what CDK deploys
// (infra/constructs/host_routes.py reads it); tests/frontend/ws-router.test.mjs runs it.
//
// A session on host H connects to `/ws/H/inference` (lambdas/domain/routing.py). The
// function reads H's origin (its public DNS name) from the KeyValueStore that reconcile keeps,
// switches the request's origin to it and forwards `/ws/inference`, the backend's own path.
// `/ws/H/health` and `/ws/H/health/ready` reach the same host's health checks (a smoke test
// of the route without a socket). Anything else never leaves CloudFront:
// - not a routed path, or an unknown host: 404;
// - the store failing, or holding something that is not a host name: 502.
// The engine retries both on connect (a route appears shortly after its host runs).
//
// cf.updateRequestOrigin gets the domain name only: every other property of the behavior's
// origin stays, in particular its custom headers (X-Origin-Verify, the secret nginx checks):
// passing customHeaders would replace them.
// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
//   helper-functions-origin-modification.html
// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-custom-methods.html

// HOST_ID_PATTERN of lambdas/domain/routing.py (a test keeps the two equal).
const HOST_ID_PATTERN = '[A-Za-z0-9_.-]{1,64}';
const ROUTED = new RegExp('^/ws/(' + HOST_ID_PATTERN + ')/(inference|health|health/ready)$');
const BACKEND_PATHS = {
  'inference': '/ws/inference',
  'health': '/health',
  'health/ready': '/health/ready',
};
const DOTS_ONLY = /^\.+$/;
// A public DNS name such as ec2-203-0-113-5.compute-1.amazonaws.com.
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

const kvs = cf.kvs();

function refuse(statusCode, statusDescription) {
  return {
    statusCode: statusCode,
    statusDescription: statusDescription,
    headers: { 'cache-control': { value: 'no-store' } },
  };
}

async function handler(event) {
  const request = event.request;
  const match = ROUTED.exec(request.uri);
  // `.` and `..` fit the pattern but are no host: never a lookup, never a traversal.
  if (match === null || DOTS_ONLY.test(match[1])) {
    return refuse(404, 'Not Found');
  }
  const host = match[1];
  let origin;
  try {
    // get() throws for a missing key as for a failing store: ask first, to tell them apart.
    if (!(await kvs.exists(host))) {
      return refuse(404, 'Not Found');
    }
    origin = await kvs.get(host);
  } catch (error) {
    return refuse(502, 'Bad Gateway');
  }
  if (typeof origin !== 'string' || !HOST_NAME.test(origin)) {
    return refuse(502, 'Bad Gateway');
  }
  cf.updateRequestOrigin({ domainName: origin });
  request.uri = BACKEND_PATHS[match[2]];
  return request;
}
