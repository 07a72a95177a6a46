"""Replay synthetic usage traces through the pure `decide`, on a simulated clock.

Each trace is a few users visiting the page over a few hours: long and short streams, hidden
tabs (connected, no frames), returns to the tab just as it is about to stop, "Keep running"
clicks 0–5 s before the stop, reloads (a new session, the old one left open), Stop buttons,
closed tabs, and slow boots up to the boot grace. A small event simulator plays EC2 (pending
and stopping take time), the backend (it reports frames at most every 30 s, as the real one
does), the browser (status polls, keepalives) and reconcile (every minute, on every API call
and EC2 event, acting a little after it read, so that heartbeats and clicks race stops).

It asserts zero false stops — a stop while frames flowed within the idle timeout that
applied, within IDLE_AFTER_DISCONNECT_S of a keepalive, or before ready within the boot grace
— and prints the idle waste of each run: GPU time between the last use and the stop.

    python -m bench.idle_traces [--traces 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lambdas.domain.actions import Action, Ec2Call, RetryStop, Transition
from lambdas.domain.decide import decide
from lambdas.domain.host_record import HostRecord, SessionLease
from lambdas.domain.model import Ec2State, InstanceView, Snapshot
from lambdas.domain.status import phase_of, stop_at
from lambdas.settings import Settings

TRACE_COUNT = 1000
SEED = 7
EPOCH = 1_800_000_000 - 1_800_000_000 % 86400 + 6 * 3600
"""Traces start at 06:00 UTC, so a day's budget is not cut by midnight."""
TICK_S = 60.0
POLL_S = 5.0
REPORT_EVERY_S = 30.0
MAX_ACT_DELAY_S = 0.5
SIM_LIMIT_S = 48 * 3600.0

SegmentKind = Literal["stream", "hidden", "return_at_stop", "keepalive", "reload"]
Ending = Literal["stop_button", "close_tab", "leave_connected"]


def bench_settings() -> Settings:
    return Settings(table_name="bench", instance_id="i-00000000000000001", auth_mode="apigw")


# --- traces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    seconds: float = 0.0
    clicks: int = 0


@dataclass(frozen=True)
class Visit:
    user: str
    arrive_s: float
    segments: tuple[Segment, ...]
    ending: Ending


@dataclass(frozen=True)
class Trace:
    seed: int
    visits: tuple[Visit, ...]


def _stream(rng: random.Random) -> Segment:
    kind = rng.choices(("short", "medium", "long"), weights=(4, 4, 2))[0]
    low, high = {"short": (20, 300), "medium": (300, 1800), "long": (3600, 7200)}[kind]
    return Segment("stream", rng.uniform(low, high))


def _segments(rng: random.Random) -> tuple[Segment, ...]:
    segments = [_stream(rng)]
    for _ in range(rng.randint(0, 5)):
        pick = rng.choices(
            ("stream", "hidden", "return_at_stop", "keepalive", "reload"), weights=(3, 3, 1, 2, 1)
        )[0]
        if pick == "stream":
            segments.append(_stream(rng))
        elif pick == "hidden":
            segments.append(Segment("hidden", rng.uniform(10, 2400)))
        elif pick == "return_at_stop":
            segments += [Segment("return_at_stop"), _stream(rng)]
        elif pick == "keepalive":
            segments.append(Segment("keepalive", clicks=rng.randint(1, 3)))
        else:
            segments += [Segment("reload", rng.uniform(1, 10)), _stream(rng)]
    return tuple(segments)


def generate_traces(count: int = TRACE_COUNT, seed: int = SEED) -> list[Trace]:
    traces = []
    for index in range(count):
        rng = random.Random(seed * 1_000_003 + index)
        users = [f"user-{n}" for n in range(rng.randint(1, 4))]
        visits = [
            Visit(
                user=user,
                arrive_s=rng.uniform(0, 4 * 3600),
                segments=_segments(rng),
                ending=rng.choices(("stop_button", "close_tab", "leave_connected"), (4, 4, 2))[0],
            )
            for user in users
            for _ in range(rng.randint(1, 3))
        ]
        visits.sort(key=lambda visit: visit.arrive_s)
        traces.append(Trace(seed=rng.randrange(2**32), visits=tuple(visits)))
    return traces


# --- the simulated world -------------------------------------------------------------------


@dataclass
class Run:
    """One run of the instance, with the truth the checks compare against."""

    started_at: float
    ready_at: float | None = None
    last_frame_at: float | None = None
    last_keepalive_at: float | None = None
    last_release_at: float | None = None


@dataclass
class Tab:
    visit: Visit
    session_id: str | None = None
    epoch: int = 0
    """Bumped whenever the tab's plans are void (its socket closed); stale events check it."""
    segment: int = 0
    connected: bool = False
    streaming: bool = False
    done: bool = False
    start_tries: int = 0


@dataclass
class Findings:
    runs: int = 0
    visits: int = 0
    stops: Counter[str] = field(default_factory=Counter)
    false_stops: list[str] = field(default_factory=list)
    idle_waste_s: dict[str, list[float]] = field(default_factory=dict)
    stops_lost_to_activity: int = 0
    left_running: int = 0


class SimTable:
    """The host record as DynamoDB would hold it: guarded writes, and consistent reads."""

    def __init__(self) -> None:
        self._host = HostRecord(host_id="bench")

    def host(self) -> HostRecord:
        return self._host

    def write(self, changes: Mapping[str, Any]) -> None:
        self._host = self._host.model_copy(update=changes)

    def apply(self, transition: Transition) -> bool:
        """Like the store's conditional update; a field left out reads as None there too."""
        if any(getattr(self._host, key) != value for key, value in transition.expect.items()):
            return False
        self.write(transition.changes)
        return True

    def bump(self, **changes: Any) -> None:
        """A start request, keepalive or heartbeat: activity that wins over a pending stop."""
        self.write({**changes, "generation": self._host.generation + 1})


class World:
    """One trace played out: EC2, the backend, the browsers and reconcile, on one clock."""

    def __init__(self, trace: Trace, settings: Settings, findings: Findings) -> None:
        self.settings = settings
        self.findings = findings
        self.rng = random.Random(trace.seed)
        self.now = float(EPOCH)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self.table = SimTable()
        self.ec2: Ec2State = "stopped"
        self.run: Run | None = None
        self.tabs = [Tab(visit) for visit in trace.visits]
        self.reporting = 0
        """The backend's heartbeat chain (0: none); a stale chain's events do nothing."""
        self.last_report = float("-inf")
        for tab in self.tabs:
            self.at(EPOCH + tab.visit.arrive_s, functools.partial(self.open_page, tab))

    # the event loop

    def at(self, when: float, event: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (max(when, self.now), next(self._order), event))

    def later(self, tab: Tab, when: float, event: Callable[[], None]) -> None:
        epoch = tab.epoch
        self.at(when, lambda: event() if tab.epoch == epoch and not tab.done else None)

    def play(self) -> None:
        self.at(self.now + TICK_S, self.tick)
        while self._queue:
            self.now, _, event = heapq.heappop(self._queue)
            if self.now - EPOCH > SIM_LIMIT_S:
                self.findings.left_running += 1
                return
            event()

    def tick(self) -> None:
        """EventBridge's schedule; it ends once every visit is over and the instance stopped."""
        idle = self.ec2 == "stopped" and self.table.host().desired == "stopped"
        if not (idle and all(tab.done for tab in self.tabs)):
            self.reconcile()
            self.at(self.now + TICK_S, self.tick)

    def next_tick(self, after: float) -> float:
        return EPOCH + TICK_S * math.ceil((after - EPOCH) / TICK_S)

    # reconcile

    def snapshot(self) -> Snapshot:
        instance = InstanceView(self.settings.instance_id, self.ec2, "g5.xlarge")
        return Snapshot(host=self.table.host(), instance=instance)

    def reconcile(self) -> None:
        """Read and decide now; act a moment later, as a Lambda does, so activity can race."""
        actions = decide(self.snapshot(), self.settings, self.now)
        if actions:
            self.at(self.now + self.rng.uniform(0, MAX_ACT_DELAY_S), lambda: self.act(actions))

    def act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, RetryStop):
                self.ec2_call(Ec2Call.STOP)
            elif self.table.apply(action):
                if action.name == "stop":
                    self.judge_stop(str(action.changes["stop_reason"]))
                if action.then is not None:
                    self.ec2_call(action.then)
            elif action.name == "stop":
                self.findings.stops_lost_to_activity += 1

    # EC2 and the backend

    def ec2_call(self, call: Ec2Call) -> None:
        if call is Ec2Call.START and self.ec2 == "stopped":
            self.ec2 = "pending"
            self.run = Run(started_at=self.table.host().started_at or self.now)
            self.findings.runs += 1
            pending_s = self.rng.uniform(10, 40)
            grace = self.settings.boot_grace_s
            slow = self.rng.random() < 0.15
            boot_s = self.rng.uniform(0.8 * grace, grace) if slow else self.rng.uniform(60, 400)
            boot_s = min(boot_s, grace - pending_s - 1)
            self.at(self.now + pending_s, lambda: self.ec2_running(boot_s))
        elif call is Ec2Call.STOP and self.ec2 == "running":
            self.ec2 = "stopping"
            for tab in self.tabs:
                if tab.connected:
                    self.socket_closed(tab)
            self.at(self.now + self.rng.uniform(15, 60), self.ec2_stopped)

    def ec2_running(self, boot_s: float) -> None:
        self.ec2 = "running"
        self.last_report = float("-inf")
        run = self.run
        self.at(self.now + boot_s, lambda: self.backend_ready(run))
        self.reconcile()

    def ec2_stopped(self) -> None:
        self.ec2 = "stopped"
        self.run = None
        self.reporting = 0
        self.reconcile()

    def backend_ready(self, run: Run | None) -> None:
        if run is self.run and run is not None and self.ec2 == "running":
            run.ready_at = self.now
            self.table.write({"ready_at": self.now})

    def count_connections(self) -> None:
        """Connection counts are reported without a generation bump: they are not activity."""
        self.table.write({"connected_sessions": sum(tab.connected for tab in self.tabs)})

    def frames_started(self) -> None:
        if not self.reporting:
            self.reporting = chain = next(self._ids)
            self.at(max(self.now, self.last_report + REPORT_EVERY_S), lambda: self.report(chain))

    def report(self, chain: int) -> None:
        """The backend's heartbeat: at most every 30 s, and only while frames are inferred."""
        if chain != self.reporting:
            return
        if self.run is None or not any(tab.streaming for tab in self.tabs):
            self.reporting = 0
            return
        self.last_report = self.now
        connected = sum(tab.connected for tab in self.tabs)
        self.table.bump(last_inference_at=self.now, connected_sessions=connected)
        self.at(self.now + REPORT_EVERY_S, lambda: self.report(chain))

    # the browser

    def open_page(self, tab: Tab) -> None:
        """Press Start (POST /api/sessions). A reloaded page keeps its session if it is still
        open; at the per-user limit the page reuses the user's oldest one."""
        self.findings.visits += tab.start_tries == 0
        tab.start_tries += 1
        host = self.table.host()
        held = host.sessions_of(tab.visit.user)
        if tab.session_id not in held and len(held) < self.settings.max_sessions_per_user:
            tab.session_id = f"s{next(self._ids)}"
            lease = SessionLease(created_at=self.now, expires_at=self.now + self.settings.max_run_s)
            sessions = {**host.sessions, tab.visit.user: {**held, tab.session_id: lease}}
            self.table.bump(
                sessions=sessions,
                desired="running",
                last_start_request_at=self.now,
                message="",
                error=None,
            )
        elif tab.session_id not in held:
            tab.session_id = min(held, key=lambda sid: held[sid].created_at)
        self.reconcile()
        self.later(tab, self.now + POLL_S, lambda: self.poll_until_ready(tab))

    def poll_until_ready(self, tab: Tab) -> None:
        self.reconcile()
        phase = phase_of(self.snapshot())
        if phase == "ready":
            tab.connected = True
            self.count_connections()
            self.next_segment(tab)
        elif phase in ("stopped", "error"):
            if tab.start_tries < 3:
                self.open_page(tab)
            else:
                self.leave(tab)
        else:
            self.later(tab, self.now + POLL_S, lambda: self.poll_until_ready(tab))

    def next_segment(self, tab: Tab) -> None:
        if tab.segment == len(tab.visit.segments):
            self.end_visit(tab)
            return
        segment = tab.visit.segments[tab.segment]
        tab.segment += 1
        if segment.kind == "stream":
            tab.streaming = True
            self.frames_started()
            self.later(tab, self.now + segment.seconds, lambda: self.pause(tab))
        elif segment.kind == "hidden":
            self.later(tab, self.now + segment.seconds, lambda: self.next_segment(tab))
        elif segment.kind == "return_at_stop":
            self.later(tab, self.return_time(), lambda: self.next_segment(tab))
        elif segment.kind == "keepalive":
            self.plan_click(tab, segment.clicks)
        else:
            self.socket_closed(tab, reload=True)
            self.later(tab, self.now + segment.seconds, lambda: self.open_page(tab))

    def return_time(self) -> float:
        """Back to the tab right at the stop: around `stop_at`, or inside the moment a
        reconcile has decided the stop but not yet made it."""
        planned = stop_at(self.snapshot(), self.settings, self.now) or self.now
        if self.rng.random() < 0.5:
            return planned + self.rng.uniform(-1.0, 1.0)
        return self.next_tick(planned) + self.rng.uniform(0, MAX_ACT_DELAY_S)

    def pause(self, tab: Tab) -> None:
        tab.streaming = False
        if self.run is not None:
            self.run.last_frame_at = self.now
        self.next_segment(tab)

    def plan_click(self, tab: Tab, clicks: int) -> None:
        """The countdown is on screen; the user clicks Keep running 0–5 s before it ends."""
        if clicks == 0:
            self.next_segment(tab)
            return
        planned = stop_at(self.snapshot(), self.settings, self.now) or self.now
        click = max(self.now, planned - self.rng.uniform(0, 5))
        self.later(tab, click, lambda: self.click_keepalive(tab, clicks))

    def click_keepalive(self, tab: Tab, clicks: int) -> None:
        if tab.session_id not in self.table.host().sessions_of(tab.visit.user):
            self.leave(tab)  # 409: the session ended with a stop
            return
        self.table.bump(last_keepalive_at=self.now)
        if self.run is not None:
            self.run.last_keepalive_at = self.now
        self.reconcile()
        self.plan_click(tab, clicks - 1)

    def end_visit(self, tab: Tab) -> None:
        if tab.visit.ending == "leave_connected":
            return  # a forgotten tab: connected, no frames, until the instance stops
        if tab.visit.ending == "stop_button":
            self.release(tab)
        self.leave(tab)
        self.reconcile()

    def release(self, tab: Tab) -> None:
        """DELETE /api/sessions/{id}."""
        host = self.table.host()
        held = dict(host.sessions_of(tab.visit.user))
        if held.pop(tab.session_id or "", None) is None:
            return
        self.table.write(
            {"sessions": {**host.sessions, tab.visit.user: held}, "last_release_at": self.now}
        )
        if self.run is not None:
            self.run.last_release_at = self.now

    def socket_closed(self, tab: Tab, *, reload: bool = False) -> None:
        if tab.streaming and self.run is not None:
            self.run.last_frame_at = self.now
        tab.streaming = False
        tab.connected = False
        tab.epoch += 1
        tab.done = not reload
        self.count_connections()

    def leave(self, tab: Tab) -> None:
        if tab.connected:
            self.socket_closed(tab)
        tab.done = True
        tab.epoch += 1

    # the checks

    def judge_stop(self, reason: str) -> None:
        """Called as a stop is applied: was anyone still using the instance?"""
        run, settings, now = self.run, self.settings, self.now
        self.findings.stops[reason] += 1
        if run is None:
            self.findings.false_stops.append(f"{reason} stop without a run")
            return
        if reason in ("max_run", "budget"):
            return  # hard limits, by design
        if run.ready_at is None:
            if now < run.started_at + settings.boot_grace_s:
                self.findings.false_stops.append(f"{reason} stop during the boot grace")
            return
        streaming = any(tab.streaming for tab in self.tabs)
        connected = any(tab.connected for tab in self.tabs)
        timeout = settings.idle_while_connected_s if connected else settings.idle_after_disconnect_s
        released = run.last_release_at if reason == "released" else None
        last_frame = now if streaming else run.last_frame_at
        # A release stops the instance on purpose, unless the use came after the release.
        if _recent(last_frame, now, timeout) and not _before(last_frame, released):
            idle_s = now - (last_frame or now)
            self.findings.false_stops.append(
                f"{reason} stop {idle_s:.0f} s after frames (timeout {timeout} s)"
            )
        keepalive = run.last_keepalive_at
        if _recent(keepalive, now, settings.idle_after_disconnect_s) and not _before(
            keepalive, released
        ):
            self.findings.false_stops.append(
                f"{reason} stop {now - (keepalive or now):.0f} s after a keepalive"
            )
        marks = (run.ready_at, last_frame, run.last_keepalive_at, run.last_release_at)
        waste = now - max(mark for mark in marks if mark is not None)
        self.findings.idle_waste_s.setdefault(reason, []).append(waste)


def _recent(mark: float | None, now: float, within_s: float) -> bool:
    return mark is not None and now - mark < within_s


def _before(mark: float | None, limit: float | None) -> bool:
    return mark is not None and limit is not None and mark <= limit


# --- running it ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Waste:
    """Idle waste of the runs that stopped for one reason (or all): seconds of GPU time
    between the last use (ready, frames, keepalive, release) and the stop."""

    runs: int
    p50_s: float
    p95_s: float
    max_s: float

    @classmethod
    def of(cls, seconds: list[float]) -> Waste:
        ordered = sorted(seconds) or [0.0]
        p95 = statistics.quantiles(ordered, n=20, method="inclusive")[-1] if len(ordered) > 1 else 0
        return cls(len(seconds), statistics.median(ordered), p95 or ordered[0], ordered[-1])

    def line(self, label: str) -> str:
        return (
            f"  {label:<18} runs {self.runs:>5}  p50 {self.p50_s:>5.0f}  "
            f"p95 {self.p95_s:>5.0f}  max {self.max_s:>5.0f}"
        )


@dataclass(frozen=True)
class Report:
    traces: int
    visits: int
    runs: int
    stops: dict[str, int]
    false_stops: list[str]
    stops_lost_to_activity: int
    left_running: int
    waste: Waste
    waste_by_reason: dict[str, Waste]

    def lines(self) -> list[str]:
        return [
            f"traces {self.traces}, visits {self.visits}, runs {self.runs}",
            f"stops by reason: {dict(sorted(self.stops.items()))}",
            f"stops abandoned because activity won the race: {self.stops_lost_to_activity}",
            f"false stops: {len(self.false_stops)}; instances left running: {self.left_running}",
            "idle waste per run (s):",
            self.waste.line("all"),
            *(self.waste_by_reason[reason].line(reason) for reason in sorted(self.waste_by_reason)),
        ]


def replay(traces: list[Trace], settings: Settings | None = None) -> Report:
    settings = settings or bench_settings()
    findings = Findings()
    for trace in traces:
        World(trace, settings, findings).play()
    every_run = [seconds for runs in findings.idle_waste_s.values() for seconds in runs]
    return Report(
        traces=len(traces),
        visits=findings.visits,
        runs=findings.runs,
        stops=dict(findings.stops),
        false_stops=findings.false_stops,
        stops_lost_to_activity=findings.stops_lost_to_activity,
        left_running=findings.left_running,
        waste=Waste.of(every_run),
        waste_by_reason={k: Waste.of(v) for k, v in findings.idle_waste_s.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay idle traces through decide().")
    parser.add_argument("--traces", type=int, default=TRACE_COUNT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    report = replay(generate_traces(args.traces, args.seed))
    for line in report.lines():
        print(line)
    if report.false_stops or report.left_running:
        raise SystemExit(f"FAILED: {report.false_stops[:10]}, left running {report.left_running}")


if __name__ == "__main__":
    main()
