"""Reconcile's one decision: given the records, the group and the clock, what to do.

Pure: no I/O, no clock of its own. The service reads the snapshot, calls `decide`, and applies
the returned actions in order, each guarded by the values it was decided on (see `actions`).

Per host (an instance of the group, keyed by its instance id):
- an instance the group puts in service gets a run (`open_run`), its route once it runs
  (`route`), and protection from scale-in;
- when its stop is due (`stop_rules`) it leaves: one transaction closes its run (guarded by its
  generation) and lowers the fleet's desired capacity (guarded by the fleet's version); then it
  is unprotected and the group's desired capacity lowered, so the group takes exactly this
  instance back to the warm pool;
- a host that is not ready within the boot grace is replaced (its sessions wait for the
  replacement), at most `max_replacements` times in a row, and never once the budget is used up;
- a host that left the group some other way has its run closed and its sessions put back.
Then, for the fleet: sessions waiting for a host are placed (`placement`), the desired capacity
raised when they need more hosts (or, once the daily budget is used up, the waiting sessions end
with the reason), a failed scale-out reported, and the group converged on the fleet record.

Fleet transitions are chained: each expects the version the one before it writes, so one
reconcile can make several (and a concurrent reconcile makes none of them twice).
"""

from __future__ import annotations

from collections.abc import Mapping

from lambdas.domain import budget
from lambdas.domain.actions import (
    Action,
    Call,
    Converge,
    DeleteRoute,
    Path,
    Protect,
    PutRoute,
    Replace,
    SetDesired,
    Transition,
    Update,
    Value,
    fields,
)
from lambdas.domain.fleet import GroupInstance
from lambdas.domain.host_record import FLEET_KEY, FleetRecord, HostRecord, host_key
from lambdas.domain.model import Snapshot
from lambdas.domain.placement import Candidate, place
from lambdas.domain.stop_rules import StopPlan, StopReason, explain, plan_stop
from lambdas.settings import Settings

COLD_STARTS_KEPT = 10
_IDLE_REASONS = frozenset(
    {StopReason.IDLE_DISCONNECTED, StopReason.IDLE_CONNECTED, StopReason.RELEASED}
)
_HARD_LIMITS = frozenset({StopReason.MAX_RUN, StopReason.BUDGET})


def decide(snapshot: Snapshot, settings: Settings, now: float) -> list[Action]:
    return _Planner(snapshot, settings, now).plan()


def fleet_capacity_text(settings: Settings, max_size: int) -> str:
    per_host = settings.sessions_per_host
    if max_size == 1:
        return f"The GPU host is full ({per_host} session{'s' if per_host != 1 else ''})"
    return f"All {max_size} GPU hosts are full ({per_host} sessions each)"


class _Planner:
    def __init__(self, snapshot: Snapshot, settings: Settings, now: float) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self.now = now
        self.fleet = snapshot.fleet
        """The fleet record as the transitions decided so far leave it."""
        self.actions: list[Action] = []
        self.leaving: set[str] = set()
        self.scaling_in: set[str] = set()
        """Leaving hosts that still serve: the group takes them out as the capacity drops."""
        self.desired_set = False

    # --- the plan --------------------------------------------------------------------------

    def plan(self) -> list[Action]:
        snapshot = self.snapshot
        ids = sorted(
            {i.instance_id for i in snapshot.group.instances}
            | set(snapshot.fleet.runs)
            | {h for h, record in snapshot.hosts.items() if record.run_open or record.stop_pending}
        )
        for host_id in ids:
            self._host(host_id, snapshot.host(host_id), snapshot.instance(host_id))
        self._scale_out_failed()
        self._expire_waiting()
        self._place()
        self._stale_routes()
        self._converge_capacity()
        return self.actions

    # --- one host --------------------------------------------------------------------------

    def _host(self, host_id: str, host: HostRecord, instance: GroupInstance | None) -> None:
        serving = instance is not None and instance.serving
        if host.stop_pending:
            self._leaving(host, instance)
            return
        if not host.run_open:
            if serving and instance is not None:
                self._open_run(host, instance)
            return
        if not serving or instance is None:
            self._run_ended(host)
            return
        self._route(host, instance)
        if not instance.protected:
            self.actions.append(Converge("protect", (Protect(host_id, protected=True),)))
        if host.ready_this_run is not None and host.cold_start_seq != host.run_seq:
            self._record_cold_start(host)
        out_of_budget = budget.exhausted_at(self.fleet, self.settings, self.now)
        plan = plan_stop(
            host,
            self.settings,
            placed=len(self.fleet.placed_on(host_id)),
            out_of_budget=out_of_budget,
        )
        if plan is None or plan.at > self.now:
            return
        if plan.reason in _IDLE_REASONS and self._takes_waiting(host):
            # A session waiting for a host goes here, and its placement is activity: a start
            # request wins over an idle stop, as it does over one decided concurrently.
            return
        if plan.reason is StopReason.BOOT_TIMEOUT:
            if out_of_budget is not None and out_of_budget <= self.now:
                # A replacement would run on a budget that is used up: leave instead.
                self._leave(host, StopPlan(plan.at, StopReason.BUDGET))
                return
            if self.fleet.replacements < self.settings.max_replacements:
                self._replace(host, plan)
                return
            self._leave(host, plan, error=self._gave_up_text())
            return
        self._leave(host, plan)

    def _open_run(self, host: HostRecord, instance: GroupInstance) -> None:
        """An instance the group put in service: its run starts now (the boot grace, the
        budget and the ETA count from here)."""
        runs = len(self.fleet.runs) + 1
        self._transition(
            "open_run",
            host_update=Update(
                key=host_key(host.host_id),
                expect={"run_seq": host.run_seq, "run_open": False, "stop_pending": False},
                set=fields(
                    {
                        "run_seq": host.run_seq + 1,
                        "run_open": True,
                        "started_at": self.now,
                        "instance_type": instance.instance_type,
                        "routed_at": None,
                        "route_origin": None,
                        "connected_sessions": 0,
                        "error": None,
                        "message": "",
                    }
                ),
            ),
            fleet_set={
                **budget.open_run(host.host_id, self.now),
                # An instance put in service by someone else (the console) counts too, so that
                # converging the group never takes it away while it runs.
                ("desired_capacity",): max(self.fleet.desired_capacity, runs),
            },
        )

    def _route(self, host: HostRecord, instance: GroupInstance) -> None:
        """Sockets reach a running host once its route is written; only then is it ready.
        The fleet record keeps what was written, so that reconcile never lists the store."""
        host_id, origin = host.host_id, instance.public_dns
        if instance.ec2_state != "running" or not origin:
            return
        written = self.fleet.routes.get(host_id) == origin
        if written and host.routed_this_run and host.route_origin == origin:
            return
        if not written:
            self.actions.append(Converge("route", (PutRoute(host_id, origin),)))
        self._transition(
            "routed",
            host_update=Update(
                key=host_key(host_id),
                expect={"run_seq": host.run_seq, "run_open": True},
                set=fields({"routed_at": self.now, "route_origin": origin}),
            ),
            fleet_set=None if written else {("routes", host_id): origin},
        )

    def _record_cold_start(self, host: HostRecord) -> None:
        ready = host.ready_this_run
        if ready is None or host.started_at is None:
            return
        kept = (*self.fleet.cold_starts, round(ready - host.started_at, 3))[-COLD_STARTS_KEPT:]
        self._transition(
            "record_cold_start",
            host_update=Update(
                key=host_key(host.host_id),
                expect={"cold_start_seq": host.cold_start_seq, "run_seq": host.run_seq},
                set=fields({"cold_start_seq": host.run_seq}),
            ),
            fleet_set={("cold_starts",): kept, ("replacements",): 0},
        )

    def _leave(self, host: HostRecord, plan: StopPlan, *, error: str | None = None) -> None:
        """The stop lock: applied only if no placement, keepalive or heartbeat bumped the
        host's generation, and no other fleet change came first. The sessions placed on the
        host end with it."""
        host_id = host.host_id
        capacity = max(0, self.fleet.desired_capacity - 1)
        text = explain(plan.reason, self.settings)
        fleet_set: dict[Path, Value] = {
            **self._drop_placed(host_id),
            # Each user whose session ends here is told why, until they start again.
            **{("ended", user): error or text for user, _ in self.fleet.placed_on(host_id)},
            **budget.close_run(self.fleet, host_id, self.now),
            **self._forget_route(host_id),
            ("desired_capacity",): capacity,
        }
        if error is not None:
            fleet_set[("error",)] = error
            fleet_set[("message",)] = error
        self.leaving.add(host_id)
        self.scaling_in.add(host_id)
        self.desired_set = True
        # The group scales in an unprotected instance: make sure this host is the only one.
        # Hosts already leaving stay unprotected, whether decided on before this one or not.
        guard_others = tuple(
            Protect(i.instance_id, protected=True)
            for i in self.snapshot.group.serving
            if not i.protected
            and i.instance_id != host_id
            and i.instance_id not in self.leaving
            and not self.snapshot.host(i.instance_id).stop_pending
        )
        # The stop lock is the idle stops': activity wins over them. A hard limit stops a busy
        # host too, so its frames must not make the write fail (and with it, chained after it,
        # every other leave of this reconcile, again and again while the heartbeats land
        # between the schedule's read and its write).
        self._transition(
            "leave",
            host_update=self._close_run(
                host,
                plan.reason.value,
                text,
                locked=plan.reason not in _HARD_LIMITS,
                stop_pending=True,
                error=error,
            ),
            fleet_set=fleet_set,
            then=(
                *self._unroute(host_id),
                *guard_others,
                Protect(host_id, protected=False),
                SetDesired(capacity),
            ),
        )

    def _replace(self, host: HostRecord, plan: StopPlan) -> None:
        """Not ready within the boot grace: the group replaces the instance; its sessions wait
        for the replacement."""
        host_id = host.host_id
        self.leaving.add(host_id)
        self._transition(
            "replace",
            host_update=self._close_run(
                host,
                plan.reason.value,
                explain(plan.reason, self.settings) + " It was replaced.",
                locked=True,
            ),
            fleet_set={
                **self._unplace(host_id),
                **budget.close_run(self.fleet, host_id, self.now),
                **self._forget_route(host_id),
                ("replacements",): self.fleet.replacements + 1,
            },
            then=(*self._unroute(host_id), Replace(host_id)),
        )

    def _run_ended(self, host: HostRecord) -> None:
        """The instance left service without a leave of ours (the group replaced it after a
        failed health check or an abandoned launch, or someone terminated it): its sessions
        wait for another host."""
        self._transition(
            "run_ended",
            host_update=self._close_run(
                host, "outside", "The host left the fleet outside Spinup.", locked=False
            ),
            fleet_set={
                **self._unplace(host.host_id),
                **budget.close_run(self.fleet, host.host_id, self.now),
                **self._forget_route(host.host_id),
            },
            then=self._unroute(host.host_id),
        )

    def _close_run(
        self,
        host: HostRecord,
        reason: str,
        message: str,
        *,
        locked: bool,
        stop_pending: bool = False,
        error: str | None = None,
    ) -> Update:
        """The host record's side of a run ending now. `locked`: only if nothing bumped the
        host's generation since it was read (the stop lock; a host gone needs none)."""
        expect: dict[str, Value] = {"run_seq": host.run_seq, "run_open": True}
        if locked:
            expect["generation"] = host.generation
        changes: dict[str, Value] = {
            "run_open": False,
            "stopped_at": self.now,
            "stop_reason": reason,
            "message": message,
        }
        if stop_pending:
            changes["stop_pending"] = True
        if stop_pending or error is not None:
            changes["error"] = error
        return Update(key=host_key(host.host_id), expect=expect, set=fields(changes))

    def _leaving(self, host: HostRecord, instance: GroupInstance | None) -> None:
        """A leave was written: converge until the group has taken the host out of service.

        The group may start the same instance again from the warm pool soon after; EC2's
        launch time moves on every start, so a launch after the stop is a new run."""
        relaunched = (
            instance is not None
            and instance.serving
            and instance.launch_time is not None
            and host.stopped_at is not None
            and instance.launch_time > host.stopped_at
        )
        if instance is None or not instance.serving or relaunched:
            self.actions.append(
                Transition(
                    "left",
                    (
                        Update(
                            key=host_key(host.host_id),
                            expect={"run_seq": host.run_seq, "stop_pending": True},
                            set=fields({"stop_pending": False}),
                        ),
                    ),
                )
            )
            return
        self.leaving.add(host.host_id)
        self.scaling_in.add(host.host_id)
        if host.host_id in self.fleet.routes:
            self._forget(host.host_id)
        if instance.protected:
            self.actions.append(Converge("leave_again", (Protect(host.host_id, protected=False),)))

    # --- the fleet -------------------------------------------------------------------------

    def _scale_out_failed(self) -> None:
        """A scale-out the group could not carry out (no capacity for any of its types in any
        zone): say so, and stop waiting for it."""
        fleet, group = self.fleet, self.snapshot.group
        since = fleet.scaled_out_at
        if since is None:
            return
        failures = [f for f in group.failures if f.at >= since]
        if not failures:
            return
        serving = [i for i in group.serving if i.instance_id not in self.leaving]
        if len(serving) >= fleet.desired_capacity:
            return
        capacity = len(serving)
        tried = ", ".join(self.settings.instance_types)
        error = (
            f"No GPU host could be started: {failures[0].message} "
            f"(instance types: {tried}). Try again in a few minutes."
        )
        waiting: dict[Path, Value] = {
            ("sessions", user, sid): None for user, sid, _ in fleet.unplaced()
        }
        self.desired_set = True
        self._transition(
            "scale_out_failed",
            fleet_set={
                **waiting,
                ("desired_capacity",): capacity,
                ("scaled_out_at",): None,
                ("error",): error,
                ("message",): error,
            },
            then=(SetDesired(capacity),),
        )

    def _expire_waiting(self) -> None:
        """A session that waited for a host until its lease ran out ends (it would otherwise
        count against its user's limit for ever); the user is told why."""
        expired = [(u, s) for u, s, lease in self.fleet.unplaced() if lease.expires_at <= self.now]
        if not expired:
            return
        why = "Your session waited for a GPU host until it expired. Press Start to try again."
        self._transition(
            "expire_waiting",
            fleet_set={
                **{("sessions", user, sid): None for user, sid in expired},
                **{("ended", user): why for user, _ in expired},
            },
        )

    def _place(self) -> None:
        fleet, group = self.fleet, self.snapshot.group
        waiting = [(u, s, lease) for u, s, lease in fleet.unplaced() if lease.expires_at > self.now]
        if not waiting:
            return
        refusal = budget.refusal(fleet, self.settings, self.now)
        if refusal is not None:
            # The budget ran out while they waited: no host starts for them (as a start
            # request is refused); they end with the reason.
            self._transition(
                "cancel_waiting",
                fleet_set={
                    **{("sessions", user, sid): None for user, sid, _ in waiting},
                    ("error",): refusal,
                    ("message",): refusal,
                },
            )
            return
        candidates = []
        for instance in group.serving:
            host = self.snapshot.host(instance.instance_id)
            if instance.instance_id in self.leaving or not host.run_open:
                continue
            candidates.append(
                Candidate(
                    host_id=instance.instance_id,
                    ready=host.ready_this_run is not None,
                    placed=len(fleet.placed_on(instance.instance_id)),
                )
            )
        # Wanted but not a candidate yet: launching, or its run opened in this reconcile.
        on_the_way = max(0, fleet.desired_capacity - len(candidates))
        placement = place(
            [sid for _, sid, _ in waiting],
            candidates,
            per_host=self.settings.sessions_per_host,
            on_the_way=on_the_way,
        )
        capacity = min(group.max_size, fleet.desired_capacity + placement.hosts_needed)
        if self.scaling_in:
            # Raising the capacity before a leaving host is out could make the group keep
            # that host (unprotected, its run closed) instead of launching one: scale out
            # once it has left.
            capacity = fleet.desired_capacity
        if not placement.assignments and capacity <= fleet.desired_capacity:
            return
        owner = {sid: user for user, sid, _ in waiting}
        fleet_set: dict[Path, Value] = {
            ("sessions", owner[sid], sid, "host_id"): host_id
            for sid, host_id in placement.assignments.items()
        }
        then: tuple[Call, ...] = ()
        if capacity > fleet.desired_capacity:
            fleet_set[("desired_capacity",)] = capacity
            fleet_set[("scaled_out_at",)] = self.now
            fleet_set[("message",)] = ""
            self.desired_set = True
            then = (SetDesired(capacity),)
        host_updates = []
        for host_id in sorted(set(placement.assignments.values())):
            host = self.snapshot.host(host_id)
            # Activity from now, not from the request: a session that waited for a place
            # gets the whole idle timeout to connect.
            host_updates.append(
                Update(
                    key=host_key(host_id),
                    expect={"run_seq": host.run_seq, "run_open": True},
                    set=fields({"last_start_request_at": self.now}),
                    add={"generation": 1},
                )
            )
        self._transition(
            "place",
            fleet_set=fleet_set,
            present=tuple(("sessions", owner[sid], sid) for sid in placement.assignments),
            others=tuple(host_updates),
            then=then,
        )

    def _stale_routes(self) -> None:
        """Routes of hosts without an open run (a reconcile that failed midway)."""
        for host_id in sorted(self.fleet.routes):
            host = self.snapshot.hosts.get(host_id)
            if host_id in self.leaving or (host is not None and host.run_open):
                continue
            self._forget(host_id)

    def _forget(self, host_id: str) -> None:
        """Delete a route the fleet record still has, and forget it."""
        self._transition(
            "unroute", fleet_set={("routes", host_id): None}, then=(DeleteRoute(host_id),)
        )

    def _converge_capacity(self) -> None:
        """The group's desired capacity is the fleet record's (after a failed or lost call)."""
        if self.desired_set:
            return
        wanted = self.fleet.desired_capacity
        if self.snapshot.group.desired_capacity != wanted:
            self.actions.append(Converge("converge_capacity", (SetDesired(wanted),)))

    # --- helpers ---------------------------------------------------------------------------

    def _transition(
        self,
        name: str,
        *,
        host_update: Update | None = None,
        fleet_set: Mapping[Path, Value] | None = None,
        present: tuple[Path, ...] = (),
        others: tuple[Update, ...] = (),
        then: tuple[Call, ...] = (),
    ) -> None:
        updates = [u for u in (host_update, *others) if u is not None]
        if fleet_set is not None:
            version = self.fleet.version
            changes = {**fleet_set, ("version",): version + 1}
            updates.insert(
                0, Update(key=FLEET_KEY, expect={"version": version}, present=present, set=changes)
            )
            self.fleet = applied(self.fleet, changes)
        self.actions.append(Transition(name, tuple(updates), then))

    def _unplace(self, host_id: str) -> dict[Path, Value]:
        placed = self.fleet.placed_on(host_id)
        return {("sessions", user, sid, "host_id"): None for user, sid in placed}

    def _drop_placed(self, host_id: str) -> dict[Path, Value]:
        return {("sessions", user, sid): None for user, sid in self.fleet.placed_on(host_id)}

    def _unroute(self, host_id: str) -> tuple[Call, ...]:
        return (DeleteRoute(host_id),) if host_id in self.fleet.routes else ()

    def _forget_route(self, host_id: str) -> dict[Path, Value]:
        return {("routes", host_id): None} if host_id in self.fleet.routes else {}

    def _takes_waiting(self, host: HostRecord) -> bool:
        """A ready host with room while sessions wait: placement puts one on it."""
        if host.ready_this_run is None:
            return False
        if len(self.fleet.placed_on(host.host_id)) >= self.settings.sessions_per_host:
            return False
        return any(lease.expires_at > self.now for _, _, lease in self.fleet.unplaced())

    def _gave_up_text(self) -> str:
        return (
            f"{self.settings.max_replacements + 1} GPU hosts in a row were not ready within "
            f"{self.settings.boot_grace_s} s; Spinup stopped trying. An operator should check "
            "the hosts' logs (spinup-backend, spinup-triton). Press Start to try again."
        )


def applied(fleet: FleetRecord, changes: Mapping[Path, Value]) -> FleetRecord:
    """The fleet record with `changes` made, as the store would make them (for decisions that
    follow in the same reconcile)."""
    data = fleet.model_dump()
    for path, value in changes.items():
        parent = data
        for step in path[:-1]:
            child = parent.get(step)
            if not isinstance(child, dict):
                break
            parent = child
        else:
            if value is None:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
    return FleetRecord.model_validate(data)
