"""The pages' Content-Security-Policy: one definition for CloudFront and the local mode.

The frontend has no inline script or style, no eval, and loads everything from its own
origin, so the policy can be strict: a script injected into the page (XSS) can neither run
inline nor load code from elsewhere, nor send the tokens to another origin. What each
deployment adds are the origins the page talks to besides its own (`connect-src`): the
sign-in provider's token and revocation endpoints, and the inference socket when it is not on
the page's origin (locally it is on another port).

`'self'` in `connect-src` also admits `ws:`/`wss:` to the page's own host (CSP Level 3), which
is how the socket is reached through CloudFront.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

HEADER = "Content-Security-Policy"


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL (what a CSP source expression names)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(*, connect_to: Iterable[str] = ()) -> str:
    """The policy, with `connect_to` (origins) allowed for fetch and WebSocket besides the
    page's own origin. Origins may be CDK tokens: the string is joined, never parsed."""
    connect = ["'self'", *dict.fromkeys(connect_to)]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # The canvas and the frame encoder work on blobs; the favicon is a file.
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": connect,
        # The engine is an iframe of this origin; nothing else may frame or be framed.
        "frame-src": ["'self'"],
        "child-src": ["'self'"],
        "worker-src": ["'self'"],
        "frame-ancestors": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # No page submits a form; sign-in is a navigation, not a form post.
        "form-action": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())
