"""SIGTERM the Catalog while it is stuck retrying an event and while it applies a stream of them:
after a restart every acknowledged order lowered the stock exactly once."""
import time

import sqlalchemy as sa

from tests.support.faults import PartFault, load_through_fault
from tests.support.kafka import consumer_lag
from tests.support.ledger import settled_ledger
from tests.support.load import OrderLoad
from tests.support.products import wait_in_views
from tests.support.tables import add_product
from tests.support.waiting import wait_until

SETTLE_S = 180


def test_sigterm_while_stuck_retrying_then_restart_applies_once(topology, capsys):
    settings = topology.settings
    catalog = PartFault(topology, topology.catalogs[0].name, how="term", timeout=60)
    product_id = add_product(settings, "TERM")
    wait_in_views(topology, product_id)
    before = 1_000_000_000
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    holder = engine.connect()
    tx = holder.begin()
    # The product row stays locked: every stock change waits, times out (lock wait) and is retried.
    holder.execute(sa.text("SELECT stock FROM products WHERE product_id = :p FOR UPDATE"), {"p": product_id})
    try:
        with OrderLoad(topology, product_id, clients=2) as load:
            wait_until(lambda: len(load.acked) >= 10, timeout=60, what="10 acknowledged orders")
        # The Catalog is stuck on the first of them (a lock wait lasts 10 s, then it retries).
        time.sleep(15)
        assert consumer_lag(settings.kafka_bootstrap, settings.catalog_group, settings.orders_topic) > 0
        catalog.inject()
    finally:
        tx.rollback()
        holder.close()
        engine.dispose()
    catalog.recover()
    ledger = settled_ledger(settings, load.acked, product_id, before, SETTLE_S)
    with capsys.disabled():  # the figures belong in every run's output
        print(f"\nSIGTERM mid-retry: {ledger}")
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger


def test_sigterm_mid_stream_then_restart_applies_once(topology, capsys):
    product_id = add_product(topology.settings, "TERM")
    wait_in_views(topology, product_id)
    catalog = PartFault(topology, topology.catalogs[0].name, how="term", timeout=60)  # SIGTERM while events arrive
    run = load_through_fault(topology, product_id, "SIGTERM mid-stream", catalog.inject, catalog.recover,
                             capsys=capsys, before_s=4, down_s=2, after_s=4, settle_s=SETTLE_S,
                             figures=lambda run: [f"extra rows {run.ledger['extra_rows']}"])
    ledger = run.ledger
    assert ledger["acked"] > 0
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger
