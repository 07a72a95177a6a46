"""Where each host's sockets go: host id → origin name, read by the CloudFront Function on
`/ws/*` (`infra/edge/ws_router.js`) from a CloudFront KeyValueStore.

Reconcile writes an entry when a host runs and removes it when the host leaves; a host is
`ready` only once its entry is written. `infra.local.routes.LocalRoutes` is the local mode's
table, read by the local web front that routes `/ws/...` as the function does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from lambdas.aws.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudfront_keyvaluestore import CloudFrontKeyValueStoreClient

log = logging.getLogger(__name__)

ETAG_CONFLICTS = frozenset({"ConflictException", "PreconditionFailed", "ValidationException"})
ETAG_ATTEMPTS = 4
"""A write names the store's ETag; another writer in between makes it fail, and the write is
retried on a fresh ETag (reconcile runs from several Lambdas at once)."""


class RouteTable(Protocol):
    def entries(self) -> Mapping[str, str]: ...

    def put(self, host_id: str, origin: str) -> None: ...

    def delete(self, host_id: str) -> None: ...


class KeyValueStoreRoutes:
    """A CloudFront KeyValueStore (its data plane signs with SigV4A: boto3 needs the CRT)."""

    def __init__(self, client: CloudFrontKeyValueStoreClient, kvs_arn: str) -> None:
        self.client = client
        self.kvs_arn = kvs_arn

    def entries(self) -> dict[str, str]:
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"KvsARN": self.kvs_arn}
        while True:
            answer = self.client.list_keys(**kwargs)
            found.update({item["Key"]: item["Value"] for item in answer.get("Items", [])})
            token = answer.get("NextToken")
            if not token:
                return found
            kwargs["NextToken"] = token

    def put(self, host_id: str, origin: str) -> None:
        self._with_etag(
            lambda etag: self.client.put_key(
                KvsARN=self.kvs_arn, Key=host_id, Value=origin, IfMatch=etag
            )
        )

    def delete(self, host_id: str) -> None:
        try:
            self._with_etag(
                lambda etag: self.client.delete_key(KvsARN=self.kvs_arn, Key=host_id, IfMatch=etag)
            )
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise

    def _with_etag(self, write: Any) -> None:
        for attempt in range(1, ETAG_ATTEMPTS + 1):
            etag = self.client.describe_key_value_store(KvsARN=self.kvs_arn)["ETag"]
            try:
                write(etag)
                return
            except ClientError as error:
                if error_code(error) not in ETAG_CONFLICTS or attempt == ETAG_ATTEMPTS:
                    raise
                log.info("key value store changed under a write (attempt %d); retrying", attempt)
