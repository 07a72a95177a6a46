"""Reports the backend's milestones and activity to the control plane's host record.

What gets written is the contract in `lambdas.domain.host_record` (docs/architecture.md, "What
the backend writes"), always conditional on the record existing so that the backend never
creates one: the milestones; connected_sessions when the count changes; models_loaded (the
models Triton holds, from the host store) when that set changes; and, at most every
`heartbeat_s` and only while frames are inferred, a heartbeat (last_inference_at +
connected_sessions, generation + 1; models_loaded again).

Every worker process has a reporter; what they write adds up through the host store they
share (`HostActivity`): the session count written is the host's (read when written, and
written again when it changed meanwhile, so that workers writing in turn leave the latest
count in the record), the heartbeat period is the host's (the worker that takes it sends
it), and each milestone is written once per backend run, by the first worker to reach it.

Writes happen in one background task, off the event loop (boto3 and SQLite block), and never
fail or delay inference: a DynamoDB problem is logged and the next update tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.domain.host_record import (
    PARTITION_KEY,
    RECORD_EXISTS,
    BackendUpdate,
    Milestone,
    heartbeat_update,
    host_key,
    milestone_update,
    models_update,
    sessions_update,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "REPORT_SIGNAL",
    "DynamoHostRecord",
    "HostActivity",
    "HostRecordStore",
    "Milestone",
    "Reporter",
]

log = logging.getLogger(__name__)

CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
)
"""Short timeouts: a late update is worth little, and the next one carries the same state."""
REPORT_SIGNAL = signal.SIGUSR1
"""What the supervisor sends a worker when another one died and its sessions were removed
from the host store: the host's session count changed, report it now (`sessions_changed`)."""


class HostRecordStore(Protocol):
    """Where host-record updates go (DynamoDB in production)."""

    def apply(self, update: BackendUpdate) -> None: ...


class HostActivity(Protocol):
    """The host's activity as all its workers see it (`gpu_host.backend.host_store`)."""

    def session_count(self) -> int: ...

    def loaded_models(self) -> tuple[str, ...]:
        """The models Triton holds, host-wide (the host store's model rows)."""
        ...

    def claim_milestone(self, name: str, at: float) -> bool:
        """True for the one caller (per backend run) that is to report milestone `name`."""
        ...

    def claim_heartbeat(self, now: float, period_s: float) -> float:
        """The host's last heartbeat time after taking one at `now` if one is due."""
        ...


class DynamoHostRecord:
    """The boto3 adapter: one conditional `UpdateItem` per update."""

    def __init__(
        self,
        *,
        table_name: str,
        host_id: str,
        region: str,
        endpoint_url: str | None = None,
        client: DynamoDBClient | None = None,
    ) -> None:
        self._table = table_name
        self._key: dict[str, AttributeValueTypeDef] = {PARTITION_KEY: {"S": host_key(host_id)}}
        self._client = client or boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG
        )

    def apply(self, update: BackendUpdate) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression=update.expression,
                ConditionExpression=RECORD_EXISTS,
                ExpressionAttributeValues={name: _value(v) for name, v in update.values.items()},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                log.info("no host record %s in %s; update skipped", self._key, self._table)
                return
            raise


def _value(value: float | tuple[str, ...]) -> AttributeValueTypeDef:
    if isinstance(value, tuple):  # a list of names (models_loaded); may be empty
        return {"L": [{"S": item} for item in value]}
    return _n(value)


def _n(value: float) -> AttributeValueTypeDef:
    # Milliseconds: the control plane compares these with the run's started_at, and whole
    # seconds would make a fast boot's steps look simultaneous.
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


@dataclass(slots=True)
class _Pending:
    milestones: dict[Milestone, float] = field(default_factory=dict)
    sessions: bool = False
    """The session count changed since the last write."""
    models: bool = False
    """The loaded models changed since the last write."""
    heartbeat_at: float | None = None

    def empty(self) -> bool:
        return (
            not self.milestones
            and not self.sessions
            and not self.models
            and self.heartbeat_at is None
        )


class Reporter:
    """Coalesces updates and writes them from one background task.

    Buffering is bounded by construction: one pending time per milestone, a "count changed"
    flag and one pending heartbeat; a newer value replaces the pending one (newest wins),
    since only the latest state matters to the control plane. Writes carry the host's
    session count current at write time.
    """

    def __init__(
        self,
        store: HostRecordStore | None,
        *,
        host: HostActivity,
        heartbeat_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._host = host
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._next_heartbeat = float("-inf")
        """Before this time no heartbeat can be due (this worker's, or another's, was sent
        within the period): frames until then cost no look at the store."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._store is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="host-record-reporter")

    async def stop(self) -> None:
        """Flush what is pending (best effort), then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._flush()

    def milestone(self, milestone: Milestone) -> None:
        if self._store is not None:
            self._pending.milestones[milestone] = self._clock()
            self._wake.set()

    def sessions_changed(self) -> None:
        """The host's session count may have changed (this worker opened or closed one, or
        started); the writer reads it."""
        if self._store is not None:
            self._pending.sessions = True
            self._wake.set()

    def models_changed(self) -> None:
        """Triton's loaded models changed (this worker loaded or unloaded one, or started);
        the writer reads the host's set from the store."""
        if self._store is not None:
            self._pending.models = True
            self._wake.set()

    def frame_inferred(self) -> None:
        """Called for every inferred frame; becomes a heartbeat at most every `heartbeat_s`,
        host-wide."""
        if self._store is None:
            return
        now = self._clock()
        if now >= self._next_heartbeat:
            # Until the store says otherwise, the next one is a period away.
            self._next_heartbeat = now + self._heartbeat_s
            self._pending.heartbeat_at = now
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except Exception:  # the host store failed: report later, never stop reporting
                log.exception("host record reporting failed; the next update tries again")

    async def _flush(self) -> None:
        store = self._store
        if store is None or self._pending.empty():
            return
        pending, self._pending = self._pending, _Pending()
        host = self._host
        updates = [
            milestone_update(m, at)
            for m, at in pending.milestones.items()
            if await asyncio.to_thread(host.claim_milestone, m.value, at)
        ]
        heartbeat_at = pending.heartbeat_at
        if heartbeat_at is not None:
            last = await asyncio.to_thread(host.claim_heartbeat, heartbeat_at, self._heartbeat_s)
            # The host's next one is due a period after its last, whoever sent that: try
            # then, not a period after this try (which would leave up to two periods between
            # heartbeats while frames go on).
            self._next_heartbeat = last + self._heartbeat_s
            if last != heartbeat_at:  # another worker sent the period's heartbeat
                heartbeat_at = None
        sessions: int | None = None
        if heartbeat_at is not None or pending.sessions:
            sessions = await asyncio.to_thread(host.session_count)
            updates.append(
                sessions_update(sessions)
                if heartbeat_at is None
                else heartbeat_update(heartbeat_at, sessions)  # carries the count too
            )
        if heartbeat_at is not None or pending.models:
            updates.append(models_update(await asyncio.to_thread(host.loaded_models)))
        for update in updates:
            try:
                await asyncio.to_thread(store.apply, update)
            except (BotoCoreError, ClientError) as exc:
                log.warning("host record update failed: %s", exc)
        # Another worker may have written an older count after we read ours, or the count
        # changed while we wrote: the last writer to look sees the latest and writes it.
        if sessions is not None and await asyncio.to_thread(host.session_count) != sessions:
            self._pending.sessions = True
            self._wake.set()
