"""`KeyValueStoreRoutes` against the CloudFront KeyValueStore data plane, stubbed (moto has
no data plane): every write names the store's current ETag, a write that lost a race is
retried on a fresh ETag a bounded number of times, and deleting a missing route is done.

The data plane signs with SigV4A, which botocore implements only with the CRT (`awscrt`, which
the Lambda bundle needs). The stubbed client here is unsigned: the Stubber answers before any
request would be signed, and the tests need no CRT. API reference:
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_kvs_PutKey.html
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.aws.routes import ETAG_ATTEMPTS, KeyValueStoreRoutes

ARN = "arn:aws:cloudfront::123456789012:key-value-store/0123abcd-4567-89ab-cdef-0123456789ab"
HOST = "i-0aaaaaaaaaaaaaaa1"
ORIGIN = "ec2-1.compute-1.amazonaws.example"


@pytest.fixture
def stub() -> Iterator[tuple[KeyValueStoreRoutes, Stubber]]:
    client = boto3.client(
        "cloudfront-keyvaluestore",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    with Stubber(client) as stubber:
        yield KeyValueStoreRoutes(client, ARN), stubber
        stubber.assert_no_pending_responses()


def etag_read(stubber: Stubber, etag: str) -> None:
    stubber.add_response(
        "describe_key_value_store",
        {
            "KvsARN": ARN,
            "Created": datetime(2027, 1, 15, tzinfo=UTC),
            "ETag": etag,
            "ItemCount": 1,
            "TotalSizeInBytes": 64,
        },
        {"KvsARN": ARN},
    )


def put(stubber: Stubber, etag: str, *, error: str | None = None) -> None:
    params: dict[str, Any] = {"KvsARN": ARN, "Key": HOST, "Value": ORIGIN, "IfMatch": etag}
    if error is not None:
        stubber.add_client_error("put_key", error, http_status_code=409, expected_params=params)
        return
    answer = {"ETag": etag + "+1", "ItemCount": 2, "TotalSizeInBytes": 128}
    stubber.add_response("put_key", answer, params)


def delete(stubber: Stubber, etag: str, *, error: str | None = None) -> None:
    params = {"KvsARN": ARN, "Key": HOST, "IfMatch": etag}
    if error is not None:
        stubber.add_client_error("delete_key", error, http_status_code=404, expected_params=params)
        return
    stubber.add_response(
        "delete_key", {"ETag": etag + "+1", "ItemCount": 0, "TotalSizeInBytes": 0}, params
    )


def test_a_put_names_the_current_etag(stub: tuple[KeyValueStoreRoutes, Stubber]) -> None:
    routes, stubber = stub
    etag_read(stubber, "e1")
    put(stubber, "e1")
    routes.put(HOST, ORIGIN)


@pytest.mark.parametrize("conflict", ["ConflictException", "ValidationException"])
def test_a_write_that_lost_a_race_is_retried_on_a_fresh_etag(
    conflict: str, stub: tuple[KeyValueStoreRoutes, Stubber]
) -> None:
    """Another reconcile wrote in between: the ETag named no longer matches."""
    routes, stubber = stub
    etag_read(stubber, "e1")
    put(stubber, "e1", error=conflict)
    etag_read(stubber, "e2")
    put(stubber, "e2")
    routes.put(HOST, ORIGIN)


def test_a_write_gives_up_after_a_bounded_number_of_races(
    stub: tuple[KeyValueStoreRoutes, Stubber],
) -> None:
    routes, stubber = stub
    for attempt in range(ETAG_ATTEMPTS):
        etag_read(stubber, f"e{attempt}")
        put(stubber, f"e{attempt}", error="ConflictException")
    with pytest.raises(ClientError, match="ConflictException"):
        routes.put(HOST, ORIGIN)


def test_any_other_error_is_not_retried(stub: tuple[KeyValueStoreRoutes, Stubber]) -> None:
    routes, stubber = stub
    etag_read(stubber, "e1")
    put(stubber, "e1", error="AccessDeniedException")
    with pytest.raises(ClientError, match="AccessDenied"):
        routes.put(HOST, ORIGIN)


def test_a_delete_names_the_current_etag(stub: tuple[KeyValueStoreRoutes, Stubber]) -> None:
    routes, stubber = stub
    etag_read(stubber, "e1")
    delete(stubber, "e1")
    routes.delete(HOST)


def test_deleting_a_route_that_is_not_there_is_done(
    stub: tuple[KeyValueStoreRoutes, Stubber],
) -> None:
    routes, stubber = stub
    etag_read(stubber, "e1")
    delete(stubber, "e1", error="ResourceNotFoundException")
    routes.delete(HOST)


def test_the_entries_are_read_page_by_page(stub: tuple[KeyValueStoreRoutes, Stubber]) -> None:
    routes, stubber = stub
    stubber.add_response(
        "list_keys",
        {"Items": [{"Key": HOST, "Value": ORIGIN}], "NextToken": "page-2"},
        {"KvsARN": ARN},
    )
    stubber.add_response(
        "list_keys",
        {"Items": [{"Key": "i-0bbbbbbbbbbbbbbb2", "Value": "ec2-2.example"}]},
        {"KvsARN": ARN, "NextToken": "page-2"},
    )
    assert routes.entries() == {HOST: ORIGIN, "i-0bbbbbbbbbbbbbbb2": "ec2-2.example"}
