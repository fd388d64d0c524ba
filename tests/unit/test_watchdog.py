"""The sink watchdog restarts a FAILED task, with a pause that doubles while it keeps failing,
and never touches a record (the gate decided every record before the sink read it)."""

from connect.watchdog import FIRST_PAUSE_S, MAX_PAUSE_S, Watchdog
from ordersync.config import Settings
from tests.doubles import Clock, ConnectWorker


def test_a_failed_task_is_restarted_and_a_running_one_is_left_alone():
    worker = ConnectWorker("RUNNING", "FAILED")
    Watchdog(Settings(), call=worker, clock=Clock()).check_all()
    assert worker.restarts == ["/connectors/orders-sink/tasks/1/restart"]
    assert not [c for c in worker.calls if c[0] not in ("GET", "POST")], "it never moves offsets or writes"


def test_while_it_keeps_failing_the_pause_doubles_up_to_a_cap():
    worker, clock = ConnectWorker("FAILED"), Clock()
    watchdog = Watchdog(Settings(), call=worker, clock=clock)
    restarted_at = []
    for _ in range(400):
        before = len(worker.restarts)
        watchdog.check_all()
        if len(worker.restarts) > before:
            restarted_at.append(clock.now)
        clock.now += 1
    pauses = [b - a for a, b in zip(restarted_at, restarted_at[1:])]
    assert pauses[:4] == [FIRST_PAUSE_S, FIRST_PAUSE_S * 2, FIRST_PAUSE_S * 4, FIRST_PAUSE_S * 8]
    assert max(pauses) == MAX_PAUSE_S


def test_once_running_again_the_next_failure_starts_with_a_short_pause():
    worker, clock = ConnectWorker("FAILED"), Clock()
    watchdog = Watchdog(Settings(), call=worker, clock=clock)
    for _ in range(100):
        watchdog.check_all()
        clock.now += 1
    worker.states = ["RUNNING"]
    watchdog.check_all()
    worker.states = ["FAILED"]
    clock.now += 100
    watchdog.check_all()
    first = len(worker.restarts)
    clock.now += FIRST_PAUSE_S
    watchdog.check_all()
    assert len(worker.restarts) == first + 1
