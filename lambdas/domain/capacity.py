"""Starting under capacity shortage: walk INSTANCE_TYPES in order until one starts.

The service makes the EC2 calls; this module decides what each outcome means and what the
host record and the status message say about it. Every attempt and its outcome is in the
message, so a user sees "g5.xlarge: no capacity… g6.xlarge: started".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lambdas.domain.actions import Transition
from lambdas.settings import Settings

CAPACITY_ERRORS = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported"})
"""EC2 codes that mean "not this type here, now"; `Unsupported`: the type is not offered in
the instance's availability zone."""

RETRY_LATER_ERRORS = frozenset({"IncorrectInstanceState"})
"""The instance is between states; the next reconcile (or the `stopped` event) starts it."""


class Outcome(StrEnum):
    STARTED = "started"
    NO_CAPACITY = "no capacity"
    FAILED = "failed"


@dataclass(frozen=True)
class Attempt:
    instance_type: str
    outcome: Outcome
    code: str = ""

    def describe(self) -> str:
        detail = f" ({self.code})" if self.code else ""
        return f"{self.instance_type}: {self.outcome.value}{detail}"


def classify(code: str) -> Outcome:
    return Outcome.NO_CAPACITY if code in CAPACITY_ERRORS else Outcome.FAILED


def next_type(settings: Settings, attempts: Sequence[Attempt]) -> str | None:
    """The next type to try: the configured list in order, each once."""
    tried = {attempt.instance_type for attempt in attempts}
    return next((name for name in settings.instance_types if name not in tried), None)


def describe(attempts: Sequence[Attempt]) -> str:
    return "; ".join(attempt.describe() for attempt in attempts)


def progress(run_seq: int, attempts: Sequence[Attempt], trying: str) -> Transition:
    """Publish an attempt that found no capacity before trying the next type."""
    return Transition(
        "capacity_fallback",
        expect={"run_seq": run_seq, "run_open": True},
        changes={"message": f"{describe(attempts)}; trying {trying}…"},
    )


def started(run_seq: int, attempts: Sequence[Attempt]) -> Transition:
    last = attempts[-1]
    fell_back = len(attempts) > 1
    message = f"{describe(attempts)}. Running as {last.instance_type}." if fell_back else ""
    return Transition(
        "started",
        expect={"run_seq": run_seq, "run_open": True},
        changes={"instance_type": last.instance_type, "message": message},
    )


def exhausted(run_seq: int, attempts: Sequence[Attempt], zone: str | None) -> Transition:
    """No type started: back to stopped with the reason, so nothing is left half-started."""
    where = f" in {zone}" if zone else ""
    error = (
        f"No capacity{where} for any configured instance type ({describe(attempts)}). "
        "Try again in a few minutes, or add types to SPINUP_INSTANCE_TYPES."
    )
    return _abandon_start(run_seq, "capacity_exhausted", error)


def failed(run_seq: int, attempts: Sequence[Attempt]) -> Transition:
    error = (
        f"The instance did not start ({describe(attempts)}). "
        "An operator should check the instance and the control plane's permissions."
    )
    return _abandon_start(run_seq, "start_failed", error)


def retry_later(run_seq: int, attempts: Sequence[Attempt]) -> Transition:
    """Give the claim back; the next reconcile starts the instance once it has settled."""
    return Transition(
        "start_deferred",
        expect={"run_seq": run_seq, "run_open": True},
        changes={
            "run_open": False,
            "message": f"Start deferred, the instance is changing state ({describe(attempts)}).",
        },
    )


def _abandon_start(run_seq: int, name: str, error: str) -> Transition:
    return Transition(
        name,
        expect={"run_seq": run_seq, "run_open": True},
        changes={
            "run_open": False,
            "desired": "stopped",
            "sessions": {},
            "error": error,
            "message": error,
        },
    )
