"""kill -9 one part mid-load, restart it, and count: every acknowledged order is in the table and
lowered the stock exactly once, with no human action.

Each case: 4 clients place 1-unit orders on both Order instances; after a few seconds one part
is killed with SIGKILL, restarted by the supervisor a few seconds later, the load goes on, then
stops. The ledger is read once everything settled (generous deadline); recovery times are
printed, never asserted.
"""
import time

import pytest

from tests.helpers import OrderLoad, add_product, ledger_row, settled_ledger, stock_of

LOAD_BEFORE_KILL_S = 4
DOWN_S = 6
LOAD_AFTER_RESTART_S = 6
SETTLE_S = 240

ROWS = []


@pytest.fixture(scope="module")
def load_product(stack):
    """A product with stock enough for any load, so no order is refused for stock."""
    return add_product(stack, "LOAD")


@pytest.mark.parametrize("victim", ["mariadb", "kafka", "connect", "gate-1", "catalog-1", "order-1"])
def test_kill_9_mid_load(topology, load_product, victim, capsys):
    settings, supervisor = topology.settings, topology.supervisor
    part = topology.part(victim)
    before = stock_of(settings, load_product)
    with OrderLoad([o.address for o in topology.orders], load_product) as load:
        time.sleep(LOAD_BEFORE_KILL_S)
        assert supervisor.kill(part), f"{victim} was not running"
        killed_at = time.monotonic()
        time.sleep(DOWN_S)
        supervisor.ensure_up(part, timeout=180)
        restarted_at = time.monotonic()
        time.sleep(LOAD_AFTER_RESTART_S)
    acked = list(load.acked)
    assert acked, f"no order was acknowledged at all ({load.refused})"

    ledger = settled_ledger(settings, acked, load_product, before, SETTLE_S)
    settled_at = time.monotonic()
    for service in topology.services:  # every service alive and serving again
        assert supervisor.pid(service), f"{service.name} died"
        supervisor.wait_healthy(service, supervisor.pid(service), timeout=60)
    row = (ledger_row(f"kill -9 {victim}", ledger, load.refused) + " | "
           f"in sync {settled_at - restarted_at:5.1f}s after restart ({settled_at - killed_at:5.1f}s after kill)")
    ROWS.append(row)
    with capsys.disabled():  # the figures belong in every run's output
        print("\n" + row)
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger
