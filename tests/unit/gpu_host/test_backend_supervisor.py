"""The supervisor's decisions: when a dead worker is replaced, how its end reads, which
worker reports the count after a death, and which temporary state dirs are stale."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from gpu_host.backend.host_store import pid_alive
from gpu_host.backend.supervisor import (
    MAX_RESTART_DELAY_S,
    STATE_DIR_PREFIX,
    exit_description,
    remove_stale_state_dirs,
    report_target,
    restart_delay,
    stale_state_dirs,
    state_dir_owner,
    state_directory,
)


@pytest.mark.parametrize(
    ("quick_exits", "delay"),
    [(0, 0.0), (1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_a_crash_loop_backs_off_and_a_lone_death_is_replaced_at_once(
    quick_exits: int, delay: float
) -> None:
    assert restart_delay(quick_exits) == delay
    assert restart_delay(quick_exits) <= MAX_RESTART_DELAY_S


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        (-signal.SIGKILL, "signal SIGKILL"),
        (-signal.SIGTERM, "signal SIGTERM"),
        (1, "exit status 1"),
    ],
)
def test_exit_description(returncode: int, words: str) -> None:
    assert exit_description(returncode) == words


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("spinup-backend-4242-abc_12", 4242),
        ("spinup-backend-4242-", None),
        ("spinup-backend-x1-abc", None),
        ("spinup-backend-abc", None),
        ("spinup-4242-abc", None),
    ],
)
def test_state_dir_owner(name: str, owner: int | None) -> None:
    assert state_dir_owner(name) == owner


def test_only_dead_supervisors_state_dirs_are_removed(tmp_path: Path) -> None:
    """A supervisor killed outright leaves its state dir; the next start removes it, and
    leaves those of running supervisors and anything not named like one."""
    dead, alive = 1001, 1002
    dead_dir = tmp_path / f"{STATE_DIR_PREFIX}{dead}-k3j2"
    live_dir = tmp_path / f"{STATE_DIR_PREFIX}{alive}-x9z1"
    others = [tmp_path / "spinup-backend-notapid", tmp_path / f"elsewhere-{dead}-a"]
    for path in (dead_dir, live_dir, *others):
        (path / "metrics").mkdir(parents=True)
    (dead_dir / "host.sqlite3").write_bytes(b"x")
    file_named_like_one = tmp_path / f"{STATE_DIR_PREFIX}{dead}-file"
    file_named_like_one.write_bytes(b"")

    def is_alive(pid: int) -> bool:
        return pid == alive

    assert stale_state_dirs(tmp_path, is_alive) == [dead_dir]
    remove_stale_state_dirs(tmp_path, is_alive)
    assert sorted(tmp_path.iterdir()) == sorted([live_dir, *others, file_named_like_one])


def test_the_temporary_state_dir_is_named_after_its_supervisor_and_removed_at_exit() -> None:
    with state_directory(None) as made:
        assert state_dir_owner(made.name) == os.getpid()
        assert stale_state_dirs(made.parent, pid_alive).count(made) == 0
    assert not made.exists()


@pytest.mark.parametrize(
    ("live", "target"),
    [([], None), ([(5.0, 20)], 20), ([(9.0, 30), (2.0, 31), (4.0, 12)], 31)],
)
def test_the_longest_running_worker_reports_the_count(
    live: list[tuple[float, int]], target: int | None
) -> None:
    assert report_target(live) == target
