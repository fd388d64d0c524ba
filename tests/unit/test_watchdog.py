"""The sink watchdog restarts a FAILED task, with a pause that doubles while it keeps failing,
and never touches a record (the gate decided every record before the sink read it); a source
whose binlog position is gone snapshots again."""

from connect.watchdog import FIRST_PAUSE_S, MAX_PAUSE_S, POSITION_GONE, Watchdog
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


PURGED = (f"org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.\n"
          f"Caused by: io.debezium.DebeziumException: {POSITION_GONE}. Probably the slave state is too old and "
          "required binlog files have been purged. Error code: 1236; SQLSTATE: HY000.")
SOURCE = "io.debezium.connector.mariadb.MariaDbConnector"


def test_a_source_whose_binlog_position_is_gone_has_its_offsets_deleted_not_its_task_restarted():
    worker = ConnectWorker("FAILED", name="products-source", connector_class=SOURCE, trace=PURGED)
    Watchdog(Settings(), call=worker, clock=Clock()).check_all()
    moves = [c for c in worker.calls if c[0] != "GET"]
    assert moves == [("PUT", "/connectors/products-source/stop"), ("DELETE", "/connectors/products-source/offsets"),
                     ("PUT", "/connectors/products-source/resume")]


def test_another_failure_of_the_source_is_a_restart_and_the_sink_s_1236_is_never_a_reset():
    source = ConnectWorker("FAILED", name="products-source", connector_class=SOURCE)
    Watchdog(Settings(), call=source, clock=Clock()).check_all()
    assert [c for c in source.calls if c[0] != "GET"] == [("POST", "/connectors/products-source/tasks/0/restart")]
    sink = ConnectWorker("FAILED", trace=PURGED)  # only a source has a binlog position
    Watchdog(Settings(), call=sink, clock=Clock()).check_all()
    assert sink.restarts == ["/connectors/orders-sink/tasks/0/restart"]
