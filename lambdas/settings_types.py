"""Value types the settings models share: one parser for each kind of value.

The control plane's settings (`lambdas.settings`), the backend's (`gpu_host.backend.settings`),
the local mode's (`infra.local.settings`) and the CDK app's context (`infra.config`) all read
these. `lambdas/` ships with the Lambdas and with the GPU host's release alike.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

from lambdas.domain import tickets

INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")


def split_commas(value: object) -> tuple[object, ...]:
    """`"a, b,"` → `("a", "b")`; a list or tuple stays as it is (items are validated after)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ValueError(f"expected a comma-separated string or a list, got {value!r}")


CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]
"""A comma-separated environment value (`a,b`), not JSON."""


def _check_instance_types(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("name at least one instance type, e.g. 'g5.xlarge,g6.xlarge'")
    bad = [name for name in value if not INSTANCE_TYPE.match(name)]
    if bad:
        raise ValueError(f"not an EC2 instance type: {', '.join(bad)} (expected e.g. g5.xlarge)")
    if len(set(value)) != len(value):
        raise ValueError(f"instance types are listed twice: {','.join(value)}")
    return value


InstanceTypes = Annotated[CommaList, AfterValidator(_check_instance_types)]
"""EC2 instance types in fallback order, distinct; the first is the one launched."""


def _long_enough(value: SecretStr) -> SecretStr:
    tickets.check_secret(value.get_secret_value())
    return value


TicketSecret = Annotated[SecretStr, AfterValidator(_long_enough)]
"""The secret socket tickets are signed and verified with (lambdas.domain.tickets): the
control API and the backend hold the same one."""
