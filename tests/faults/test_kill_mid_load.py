"""kill -9 one part mid-load, restart it, and count: every acknowledged order is in the table and
lowered the stock exactly once, with no human action.

Each case: 4 clients place 1-unit orders on both Order instances; after a few seconds one part
is killed with SIGKILL, restarted by the supervisor a few seconds later, the load goes on, then
stops. The ledger is read once everything settled (generous deadline); recovery times are
printed, never asserted.
"""
import pytest

from tests.support.faults import PartFault, load_through_fault
from tests.support.products import wait_in_views
from tests.support.tables import add_product

LOAD_BEFORE_KILL_S = 4
DOWN_S = 6
LOAD_AFTER_RESTART_S = 6
SETTLE_S = 240


@pytest.fixture(scope="module")
def load_product(topology):
    """A product with stock enough for any load, so no order is refused for stock (or as unknown)."""
    product_id = add_product(topology.settings, "LOAD")
    wait_in_views(topology, product_id)
    return product_id


@pytest.mark.parametrize("victim", ["mariadb", "kafka", "connect", "gate-1", "catalog-1", "order-1"])
def test_kill_9_mid_load(topology, load_product, victim, capsys):
    fault = PartFault(topology, victim)
    run = load_through_fault(
        topology, load_product, f"kill -9 {victim}", fault.inject, fault.recover, capsys=capsys,
        before_s=LOAD_BEFORE_KILL_S, down_s=DOWN_S, after_s=LOAD_AFTER_RESTART_S, settle_s=SETTLE_S,
        healthy_within=60,
        figures=lambda run: [f"in sync {run.settled_at - run.recovered_at:5.1f}s after restart "
                             f"({run.settled_at - run.injected_at:5.1f}s after kill)"])
    ledger = run.ledger
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger
