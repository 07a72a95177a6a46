"""The control API's Lambda entry point: the app behind API Gateway's HTTP API, via Mangum."""

from __future__ import annotations

import functools
import logging
from typing import Any

from mangum import Mangum

from lambdas.aws.secrets import with_ticket_secret
from lambdas.control.app import create_app
from lambdas.settings import Settings


@functools.cache
def _adapter() -> Mangum:
    """Settings (and the ticket secret) read, clients and app created once per Lambda
    execution environment."""
    logging.getLogger("lambdas").setLevel(logging.INFO)
    return Mangum(create_app(with_ticket_secret(Settings())), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _adapter()(event, context)
    return response
