"""Replay synthetic usage traces of several users through the pure fleet `decide`, on a
simulated clock, with the GPU hosts as an Auto Scaling group.

Each trace is a few users visiting the page over a few hours, overlapping: long and short
streams, hidden tabs (connected, no frames), returns to the tab just as its host is about to
stop, "Keep running" clicks 0–5 s before the stop, reloads (the same session again), Stop
buttons, closed tabs, tabs left open, slow boots up to the boot grace and hosts that never
become ready; users come back later. With two sessions per host and three hosts at most, the
users spread over several hosts, and a full fleet makes some wait for a place.

A small event simulator plays the group and EC2 (`bench.fleet_sim`: a scale-out starts an
instance from the warm pool, a scale-in takes any unprotected one), the backend of each host
(it reports frames at most every 30 s, as the real one does), the browsers (status polls while
waiting, keepalives, releases) and reconcile (every minute, on every API call and every group
event, acting a little after it read, so that heartbeats and clicks race leaves).

It asserts zero false stops — a host taken out while frames flowed on it within the idle
timeout that applied, within IDLE_AFTER_DISCONNECT_S of a keepalive, before ready within the
boot grace, or without a leave decided for exactly it — and no host left running, and prints
the idle waste of each host run: GPU time between the host's last use and its leave, next to
the single instance's figure on the same traces (BASELINE).

    python -m bench.idle_traces [--traces 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import math
import os
import random
import statistics
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from bench.fleet_sim import (
    CallRefusedError,
    GroupEvents,
    SimGroup,
    SimInstance,
    SimRoutes,
    SimTable,
)
from lambdas.domain import budget, leases
from lambdas.domain.actions import (
    Action,
    Call,
    Converge,
    Transition,
)
from lambdas.domain.decide import decide
from lambdas.domain.host_record import HOST_PREFIX, SessionItem, host_id_of
from lambdas.domain.model import Phase, Snapshot
from lambdas.domain.status import host_phase, host_stop_at
from lambdas.domain.stop_rules import REPORT_LAG_S, plan_stop
from lambdas.reconcile.service import perform
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
MAX_HOSTS = 3
SESSIONS_PER_HOST = 2
WAIT_LIMIT_S = 10 * 60.0
"""A page waiting this long for a place (the fleet full) is closed; its session stays open.
(A host that is booting, however slowly, is waited for.)"""
FAILED_BOOT_SHARE = 0.03
"""Launches whose host never becomes ready (a broken disk, a bad image): replaced."""

SegmentKind = Literal["stream", "hidden", "return_at_stop", "keepalive", "reload"]
Ending = Literal["stop_button", "close_tab", "leave_connected"]
IDLE_REASONS = ("idle_connected", "idle_disconnected", "released")


def bench_settings() -> Settings:
    return Settings(
        table_name="bench",
        group_name="bench-gpu",
        auth_mode="apigw",
        sessions_per_host=SESSIONS_PER_HOST,
    )


# --- traces ----------------------------------------------------------------------------------
# The same shapes as the single-instance replay's, so that it can replay these traces too
# (BASELINE).


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
    """Traces of 1–6 users, each visiting 1–3 times within four hours (so visits overlap)."""
    traces = []
    for index in range(count):
        rng = random.Random(seed * 1_000_003 + index)
        users = [f"user-{n}" for n in range(rng.randint(1, 6))]
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
class HostRun:
    """One stretch of one instance in service, with the truth the checks compare against."""

    started_at: float
    ready_at: float | None = None
    last_frame_at: float | None = None
    last_keepalive_at: float | None = None
    last_release_at: float | None = None
    last_placed_at: float | None = None


@dataclass
class Tab:
    visit: Visit
    session_id: str | None = None
    host_id: str | None = None
    """The host its socket is connected to."""
    epoch: int = 0
    """Bumped whenever the tab's plans are void (its socket closed); stale events check it."""
    segment: int = 0
    connected: bool = False
    streaming: bool = False
    done: bool = False
    start_tries: int = 0
    waiting_since: float = 0.0


@dataclass
class Quiet:
    """The last `decide` decided nothing on `snapshot`, the records' `state` then."""

    state: tuple[int, int, int]
    snapshot: Snapshot
    until: float | None = None
    """Until when it decides nothing on the same records (`World.quiet_until`)."""


@dataclass
class Findings:
    host_runs: int = 0
    visits: int = 0
    peak_hosts: int = 0
    starts_refused: int = 0
    pages_gave_up_waiting: int = 0
    stops: Counter[str] = field(default_factory=Counter)
    false_stops: list[str] = field(default_factory=list)
    idle_waste_s: dict[str, list[float]] = field(default_factory=dict)
    stops_lost_to_activity: int = 0
    reconciles_failed: int = 0
    left_running: int = 0

    def merge(self, other: Findings) -> None:
        """Add `other`'s findings (of other traces) to these."""
        for name in (
            "host_runs",
            "visits",
            "starts_refused",
            "pages_gave_up_waiting",
            "stops_lost_to_activity",
            "reconciles_failed",
            "left_running",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.peak_hosts = max(self.peak_hosts, other.peak_hosts)
        self.stops.update(other.stops)
        self.false_stops += other.false_stops
        for reason, seconds in other.idle_waste_s.items():
            self.idle_waste_s.setdefault(reason, []).extend(seconds)


class World(GroupEvents):
    """One trace played out: the group, the backends, the browsers and reconcile, on one
    clock."""

    def __init__(
        self, trace: Trace, settings: Settings, findings: Findings, *, skip_quiet: bool = True
    ) -> None:
        self.settings = settings
        self.findings = findings
        self.skip_quiet = skip_quiet
        self._quiet: Quiet | None = None
        self._read: tuple[tuple[int, ...], Snapshot] | None = None
        """The last snapshot and the records' state it was read at."""
        self.rng = random.Random(trace.seed)
        self.now = float(EPOCH)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self.table = SimTable()
        self.routes = SimRoutes()
        self.group = SimGroup(
            self,
            random.Random(trace.seed + 1),
            max_size=MAX_HOSTS,
            later=lambda delay, event: self.at(self.now + delay, event),
        )
        self.runs: dict[str, HostRun] = {}
        """Instance id → its current run (from the start until the group takes it out)."""
        self.leaving: set[str] = set()
        """Hosts whose leave was written and that the group has not taken out yet."""
        self.reporting: dict[str, int] = {}
        """Each host's heartbeat chain (absent: none); a stale chain's events do nothing."""
        self.last_report: dict[str, float] = {}
        self.tabs = [Tab(visit) for visit in trace.visits]
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
                break
            event()
        self.findings.left_running += len(self.group.serving())

    def tick(self) -> None:
        """EventBridge's schedule; it ends once every visit is over and the fleet is empty."""
        fleet = self.table.fleet
        waiting = any(lease.expires_at > self.now for _, _, lease in fleet.unplaced())
        if all(tab.done for tab in self.tabs) and not self.group.serving() and not waiting:
            return
        self.reconcile()
        self.at(self.now + TICK_S, self.tick)

    def next_tick(self, after: float) -> float:
        return EPOCH + TICK_S * math.ceil((after - EPOCH) / TICK_S)

    # reconcile

    def snapshot(self) -> Snapshot:
        """What `read_snapshot` reads, with a host record for every instance that serves."""
        key = (*self.state(), self.table.activity)
        if self._read is not None and self._read[0] == key:
            return self._read[1]
        group = self.group.describe()
        for instance in group.serving:
            self.table.ensure_host(instance.instance_id)
        fleet = self.table.fleet
        ids = {i.instance_id for i in group.instances} | set(fleet.runs)
        hosts = {h: self.table.hosts[h] for h in ids if h in self.table.hosts}
        snapshot = Snapshot(fleet=fleet, group=group, hosts=hosts)
        self._read = ((*self.state(), self.table.activity), snapshot)
        return snapshot

    def reconcile(self) -> None:
        """Read and decide now; act a moment later, as a Lambda does, so activity can race."""
        quiet = self._quiet
        if quiet is not None and quiet.state == self.state():
            if quiet.until is None:  # worked out once it is needed: the records change often
                quiet.until = self.quiet_until(quiet.snapshot)
            if self.now < quiet.until:
                return  # `decide` would decide nothing again
        snapshot = self.snapshot()
        actions = decide(snapshot, self.settings, self.now)
        if actions:
            self._quiet = None
            self.at(self.now + self.rng.uniform(0, MAX_ACT_DELAY_S), lambda: self.act(actions))
        elif self.skip_quiet:
            self._quiet = Quiet(self.state(), snapshot)

    def state(self) -> tuple[int, int, int]:
        return (self.table.version, self.group.version, self.routes.version)

    def quiet_until(self, snapshot: Snapshot) -> float:
        """Until when `decide`, having decided nothing on `snapshot`, decides nothing on the
        same records: the clock enters its rules only through a host's stop plan, the
        budget running out, a waiting session expiring and the UTC day. A heartbeat since
        (`SimTable.activity`) only moves stop plans later, so the bound still holds. (A
        speed-up of the replay; `replay(..., skip_quiet=False)` decides every time, with the
        same report.)"""
        fleet, settings, now = snapshot.fleet, self.settings, self.now
        out_of_budget = budget.exhausted_at(fleet, settings, now)
        marks = [budget.day_start(now) + budget.DAY_S]
        marks += [out_of_budget] if out_of_budget is not None else []
        marks += [lease.expires_at for _, _, lease in fleet.unplaced()]
        for host in snapshot.hosts.values():
            plan = plan_stop(
                host,
                settings,
                placed=len(fleet.placed_on(host.host_id)),
                out_of_budget=out_of_budget,
            )
            if plan is not None:
                marks.append(plan.at)
        return min(marks)

    def act(self, actions: list[Action]) -> None:
        """`lambdas.reconcile.service.execute`: each action under its own guard, a
        transition's calls only once it is applied; a refused call fails the reconcile."""
        try:
            for action in actions:
                if isinstance(action, Transition):
                    if not self.table.apply(action):
                        self.findings.stops_lost_to_activity += action.name == "leave"
                        continue
                    self.applied(action)
                    calls = action.then
                else:
                    assert isinstance(action, Converge)
                    calls = action.calls
                for call in calls:
                    self.call(call)
        except CallRefusedError:
            self.findings.reconciles_failed += 1

    def call(self, call: Call) -> None:
        perform(call, self.group, self.routes)
        self.findings.peak_hosts = max(self.findings.peak_hosts, len(self.group.serving()))

    def applied(self, transition: Transition) -> None:
        """Bookkeeping of a transition just written: the checks' truth."""
        hosts = [host_id_of(u.key) for u in transition.updates if u.key.startswith(HOST_PREFIX)]
        if transition.name == "place":
            for host_id in hosts:
                run = self.runs.get(host_id)
                if run is not None:
                    run.last_placed_at = self.now
        elif transition.name in ("leave", "replace"):
            (host_id,) = hosts
            (update,) = (u for u in transition.updates if u.key.startswith(HOST_PREFIX))
            self.judge_leave(host_id, str(update.set[("stop_reason",)]))
            if transition.name == "leave":
                self.leaving.add(host_id)
        elif transition.name == "run_ended":
            self.findings.stops["outside"] += 1

    # the group's events (GroupEvents), EC2 and the backend

    def clock(self) -> float:
        return self.now

    def launched(self, instance: SimInstance) -> None:
        host_id, launches = instance.instance_id, instance.launches
        self.runs[host_id] = HostRun(started_at=self.now)
        self.reporting.pop(host_id, None)
        self.last_report.pop(host_id, None)
        self.findings.host_runs += 1
        pending_s = self.rng.uniform(10, 40)
        grace = self.settings.boot_grace_s
        slow = self.rng.random() < 0.15
        boot_s = self.rng.uniform(0.8 * grace, grace) if slow else self.rng.uniform(60, 400)
        boot_s = min(boot_s, grace - pending_s - 1)
        fails = self.rng.random() < FAILED_BOOT_SHARE

        def current() -> bool:
            return instance.launches == launches and instance.serving

        def running() -> None:
            if current():
                self.group.running(instance)
                self.reconcile()  # EC2's state-change event
                if not fails:
                    self.at(self.now + boot_s, ready)

        def ready() -> None:
            if current():
                self.runs[host_id].ready_at = self.now
                self.table.backend_write(host_id, {"ready_at": self.now}, bump=False)
                self.group.complete_launch(instance)
                self.reconcile()  # Auto Scaling's launch event

        self.reconcile()  # Auto Scaling's event: an instance launching
        self.at(self.now + pending_s, running)

    def taken_out(self, instance: SimInstance, *, replaced: bool) -> None:
        host_id = instance.instance_id
        if not replaced and host_id not in self.leaving:
            self.findings.false_stops.append(f"{host_id} scaled in without a leave decided for it")
        self.leaving.discard(host_id)
        for tab in self.tabs:
            if tab.host_id == host_id and tab.connected:
                self.socket_closed(tab)
        self.runs.pop(host_id, None)
        self.reporting.pop(host_id, None)
        self.at(self.now, self.reconcile)  # Auto Scaling's event, once the call returned

    def count_connections(self, host_id: str) -> None:
        """Connection counts are reported without a generation bump: they are not activity."""
        count = sum(tab.connected and tab.host_id == host_id for tab in self.tabs)
        self.table.backend_write(host_id, {"connected_sessions": count}, bump=False)

    def frames_started(self, host_id: str) -> None:
        if host_id not in self.reporting:
            self.reporting[host_id] = chain = next(self._ids)
            first = max(self.now, self.last_report.get(host_id, -math.inf) + REPORT_EVERY_S)
            self.at(first, lambda: self.report(host_id, chain))

    def report(self, host_id: str, chain: int) -> None:
        """A host's heartbeat: at most every 30 s, and only while frames are inferred on it."""
        if self.reporting.get(host_id) != chain:
            return
        on_host = [tab for tab in self.tabs if tab.host_id == host_id and tab.connected]
        if host_id not in self.runs or not any(tab.streaming for tab in on_host):
            del self.reporting[host_id]
            return
        self.last_report[host_id] = self.now
        changes = {"last_inference_at": self.now, "connected_sessions": len(on_host)}
        self.table.backend_write(host_id, changes, bump=True)
        self.at(self.now + REPORT_EVERY_S, lambda: self.report(host_id, chain))

    # the browser

    def open_page(self, tab: Tab) -> None:
        """Press Start (POST /api/sessions). A reloaded page keeps its session if it is still
        open; at the per-user limit the page reuses the user's oldest one."""
        self.findings.visits += tab.start_tries == 0
        tab.start_tries += 1
        fleet, user, limit = self.table.fleet, tab.visit.user, self.settings.max_sessions_per_user
        if budget.refusal(fleet, self.settings, self.now) is not None:
            self.findings.starts_refused += 1  # 429: the daily budget is used up
            self.leave(tab)
            return
        held = fleet.sessions_of(user)
        if tab.session_id not in held and len(held) < limit:
            tab.session_id = f"s{next(self._ids)}"
            item = SessionItem(
                session_id=tab.session_id,
                user=user,
                created_at=self.now,
                expires_at=self.now + self.settings.max_run_s,
            )
            change = leases.open_lease(fleet, item, limit)
            assert change is not None, "under the limit, a lease is granted"
            self.table.apply(change)
        elif tab.session_id not in held:
            tab.session_id = min(held, key=lambda sid: held[sid].created_at)
        tab.waiting_since = self.now
        self.reconcile()
        self.later(tab, self.now + POLL_S, lambda: self.poll_until_ready(tab))

    def poll_until_ready(self, tab: Tab) -> None:
        self.reconcile()  # as GET /api/status does; it answers from what it read
        snapshot = self.snapshot()
        lease = snapshot.fleet.sessions_of(tab.visit.user).get(tab.session_id or "")
        if lease is None:
            phase: Phase = "stopped"  # the session ended (its host left, or the budget)
        elif lease.host_id is None:
            phase = "starting"  # waiting for a place (`session_status` says so)
        else:
            phase = host_phase(snapshot.host(lease.host_id), snapshot.instance(lease.host_id))
        if phase == "ready" and lease is not None and lease.host_id is not None:
            tab.host_id = lease.host_id
            tab.connected = True
            self.count_connections(lease.host_id)
            self.next_segment(tab)
        elif phase in ("stopped", "error"):
            if tab.start_tries < 3:
                self.open_page(tab)
            else:
                self.leave(tab)
        elif (
            lease is not None
            and lease.host_id is None
            and self.now - tab.waiting_since > WAIT_LIMIT_S
        ):
            self.findings.pages_gave_up_waiting += 1
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
            if tab.host_id is not None:
                self.frames_started(tab.host_id)
            self.later(tab, self.now + segment.seconds, lambda: self.pause(tab))
        elif segment.kind == "hidden":
            self.later(tab, self.now + segment.seconds, lambda: self.next_segment(tab))
        elif segment.kind == "return_at_stop":
            self.later(tab, self.return_time(tab), lambda: self.next_segment(tab))
        elif segment.kind == "keepalive":
            self.plan_click(tab, segment.clicks)
        else:
            self.socket_closed(tab, reload=True)
            self.later(tab, self.now + segment.seconds, lambda: self.open_page(tab))

    def stop_at(self, tab: Tab) -> float:
        """The countdown the page shows: when the tab's host leaves unless it is used."""
        if tab.host_id is None:
            return self.now
        snapshot = self.snapshot()
        host = snapshot.host(tab.host_id)
        return host_stop_at(snapshot, host, self.settings, self.now) or self.now

    def return_time(self, tab: Tab) -> float:
        """Back to the tab right at the stop: around `stop_at`, or inside the moment a
        reconcile has decided the leave but not yet written it."""
        planned = self.stop_at(tab)
        if self.rng.random() < 0.5:
            return planned + self.rng.uniform(-1.0, 1.0)
        return self.next_tick(planned) + self.rng.uniform(0, MAX_ACT_DELAY_S)

    def pause(self, tab: Tab) -> None:
        tab.streaming = False
        run = self.runs.get(tab.host_id or "")
        if run is not None:
            run.last_frame_at = self.now
        self.next_segment(tab)

    def plan_click(self, tab: Tab, clicks: int) -> None:
        """The countdown is on screen; the user clicks Keep running 0–5 s before it ends."""
        if clicks == 0:
            self.next_segment(tab)
            return
        click = max(self.now, self.stop_at(tab) - self.rng.uniform(0, 5))
        self.later(tab, click, lambda: self.click_keepalive(tab, clicks))

    def click_keepalive(self, tab: Tab, clicks: int) -> None:
        user, session_id = tab.visit.user, tab.session_id or ""
        lease = self.table.fleet.sessions_of(user).get(session_id)
        if lease is None or lease.host_id is None:
            self.leave(tab)  # 409: the session ended when its host left
            return
        if not self.table.apply(leases.keepalive(user, session_id, lease.host_id, self.now)):
            self.leave(tab)
            return
        run = self.runs.get(lease.host_id)
        if run is not None:
            run.last_keepalive_at = self.now
        self.reconcile()
        self.plan_click(tab, clicks - 1)

    def end_visit(self, tab: Tab) -> None:
        if tab.visit.ending == "leave_connected":
            return  # a forgotten tab: connected, no frames, until its host leaves
        if tab.visit.ending == "stop_button":
            self.release(tab)
        self.leave(tab)
        self.reconcile()

    def release(self, tab: Tab) -> None:
        """DELETE /api/sessions/{id}."""
        user, session_id = tab.visit.user, tab.session_id or ""
        lease = self.table.fleet.sessions_of(user).get(session_id)
        if lease is None:
            return
        self.table.apply(leases.release(user, session_id, lease.host_id, self.now))
        run = self.runs.get(lease.host_id or "")
        if run is not None:
            run.last_release_at = self.now

    def socket_closed(self, tab: Tab, *, reload: bool = False) -> None:
        run = self.runs.get(tab.host_id or "")
        if tab.streaming and run is not None:
            run.last_frame_at = self.now
        host_id = tab.host_id
        tab.streaming = False
        tab.connected = False
        tab.host_id = None
        tab.epoch += 1
        tab.done = not reload
        if host_id is not None:
            self.count_connections(host_id)

    def leave(self, tab: Tab) -> None:
        if tab.connected:
            self.socket_closed(tab)
        tab.done = True
        tab.epoch += 1

    # the checks

    def judge_leave(self, host_id: str, reason: str) -> None:
        """Called as a leave (or replacement) is written: was anyone still using the host?"""
        run, settings, now = self.runs.get(host_id), self.settings, self.now
        self.findings.stops[reason] += 1
        if run is None:
            self.findings.false_stops.append(f"{reason} leave of {host_id} without a run")
            return
        if reason in ("max_run", "budget"):
            return  # hard limits, by design
        if reason == "boot_timeout":
            if now < run.started_at + settings.boot_grace_s:
                self.findings.false_stops.append(f"{host_id} given up within the boot grace")
            return
        if run.ready_at is None:
            self.findings.false_stops.append(f"{reason} leave of {host_id} before it was ready")
            return
        on_host = [tab for tab in self.tabs if tab.host_id == host_id and tab.connected]
        streaming = any(tab.streaming for tab in on_host)
        timeout = settings.idle_while_connected_s if on_host else settings.idle_after_disconnect_s
        released = run.last_release_at if reason == "released" else None
        last_frame = now if streaming else run.last_frame_at
        # A release stops the host on purpose, unless the use came after the release.
        if _recent(last_frame, now, timeout) and not _before(last_frame, released):
            idle_s = now - (last_frame or now)
            self.findings.false_stops.append(
                f"{reason} leave {idle_s:.0f} s after frames (timeout {timeout} s)"
            )
        keepalive = run.last_keepalive_at
        if _recent(keepalive, now, settings.idle_after_disconnect_s) and not _before(
            keepalive, released
        ):
            self.findings.false_stops.append(
                f"{reason} leave {now - (keepalive or now):.0f} s after a keepalive"
            )
        marks = (run.ready_at, last_frame, keepalive, run.last_release_at, run.last_placed_at)
        waste = now - max(mark for mark in marks if mark is not None)
        self.findings.idle_waste_s.setdefault(reason, []).append(waste)


def _recent(mark: float | None, now: float, within_s: float) -> bool:
    return mark is not None and now - mark < within_s


def _before(mark: float | None, limit: float | None) -> bool:
    return mark is not None and limit is not None and mark <= limit


# --- running it ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Waste:
    """Idle waste of the host runs that left for one reason (or all): seconds of GPU time
    between the host's last use (ready, frames, keepalive, release, a session placed on it)
    and its leave."""

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

    def no_worse_than(self, baseline: Waste, bound_s: float) -> bool:
        """The median and p95 at most the baseline's; the max within `bound_s`, the longest
        any run may idle (the schedule's period makes the max of either wander below it)."""
        return (
            self.p50_s <= baseline.p50_s and self.p95_s <= baseline.p95_s and self.max_s <= bound_s
        )


BASELINE = Waste(runs=1474, p50_s=926, p95_s=972, max_s=988)
"""The single instance's idle waste per run on these 1000 traces (seed 7): the replay of
commit 73fe4f1 (its `bench/idle_traces.py`: one instance, the decide of then) fed with this
module's `generate_traces()` — the same users, visits and segments, one instance for them all.
By reason there: idle_connected p50 940 / p95 975 / max 988, idle_disconnected 341 / 493 / 909,
released 104 / 134 / 145 (s)."""


def idle_bound_s(settings: Settings) -> float:
    """The longest a host may stay up unused: frames reported up to REPORT_LAG_S late, the
    connected idle timeout, then up to one schedule period and a reconcile's delay."""
    return settings.idle_while_connected_s + REPORT_LAG_S + TICK_S + MAX_ACT_DELAY_S


@dataclass(frozen=True)
class Report:
    traces: int
    visits: int
    host_runs: int
    peak_hosts: int
    starts_refused: int
    pages_gave_up_waiting: int
    stops: dict[str, int]
    false_stops: list[str]
    stops_lost_to_activity: int
    reconciles_failed: int
    left_running: int
    waste: Waste
    waste_by_reason: dict[str, Waste]

    def lines(self) -> list[str]:
        return [
            f"traces {self.traces}, visits {self.visits}, host runs {self.host_runs}, "
            f"most hosts at once {self.peak_hosts}",
            f"starts refused (budget) {self.starts_refused}, pages that gave up waiting for a "
            f"place {self.pages_gave_up_waiting}, reconciles failed {self.reconciles_failed}",
            f"leaves by reason: {dict(sorted(self.stops.items()))}",
            f"leaves abandoned because activity won the race: {self.stops_lost_to_activity}",
            f"false stops: {len(self.false_stops)}; hosts left running: {self.left_running}",
            "idle waste per host run (s):",
            self.waste.line("all"),
            *(self.waste_by_reason[reason].line(reason) for reason in sorted(self.waste_by_reason)),
            BASELINE.line("one instance (then)"),
        ]


def play(traces: list[Trace], settings: Settings, skip_quiet: bool) -> Findings:
    findings = Findings()
    for trace in traces:
        World(trace, settings, findings, skip_quiet=skip_quiet).play()
    return findings


def replay(
    traces: list[Trace],
    settings: Settings | None = None,
    *,
    skip_quiet: bool = True,
    workers: int = 1,
) -> Report:
    """Play every trace (in `workers` processes, each a contiguous share of the traces: the
    report is the same however many)."""
    settings = settings or bench_settings()
    if workers > 1 and len(traces) > 1:
        size = math.ceil(len(traces) / workers)
        shares = [traces[start : start + size] for start in range(0, len(traces), size)]
        findings = Findings()
        with ProcessPoolExecutor(len(shares)) as pool:
            for part in pool.map(
                play, shares, [settings] * len(shares), [skip_quiet] * len(shares)
            ):
                findings.merge(part)
    else:
        findings = play(traces, settings, skip_quiet)
    idle = [s for reason in IDLE_REASONS for s in findings.idle_waste_s.get(reason, [])]
    return Report(
        traces=len(traces),
        visits=findings.visits,
        host_runs=findings.host_runs,
        peak_hosts=findings.peak_hosts,
        starts_refused=findings.starts_refused,
        pages_gave_up_waiting=findings.pages_gave_up_waiting,
        stops=dict(findings.stops),
        false_stops=findings.false_stops,
        stops_lost_to_activity=findings.stops_lost_to_activity,
        reconciles_failed=findings.reconciles_failed,
        left_running=findings.left_running,
        waste=Waste.of(idle),
        waste_by_reason={k: Waste.of(v) for k, v in findings.idle_waste_s.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay idle traces through decide().")
    parser.add_argument("--traces", type=int, default=TRACE_COUNT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes (default: CPUs)"
    )
    args = parser.parse_args()
    report = replay(generate_traces(args.traces, args.seed), workers=args.workers)
    for line in report.lines():
        print(line)
    failures = []
    if report.false_stops or report.left_running:
        failures.append(f"{report.false_stops[:10]}, left running {report.left_running}")
    full_set = (args.traces, args.seed) == (TRACE_COUNT, SEED)
    if full_set and not report.waste.no_worse_than(BASELINE, idle_bound_s(bench_settings())):
        failures.append("idle waste per host is worse than the single instance's")
    if failures:
        raise SystemExit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
