"""SIGTERM the Catalog while it is stuck retrying an event and while it applies a stream of them:
after a restart every acknowledged order lowered the stock exactly once."""
import time

import sqlalchemy as sa

from tests.helpers import OrderLoad, add_product, consumer_lag, sync_ledger, wait_until


def settle(settings, acked, product_id, before, deadline_s=180) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        ledger = sync_ledger(settings, acked, product_id, before)
        if (ledger["lost"], ledger["missing"]) == (0, 0) or time.monotonic() > deadline:
            return ledger
        time.sleep(1)


def test_sigterm_while_stuck_retrying_then_restart_applies_once(topology, capsys):
    settings, supervisor = topology.settings, topology.supervisor
    catalog = topology.catalogs[0]
    product_id = add_product(settings, "TERM")
    before = 1_000_000_000
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    holder = engine.connect()
    tx = holder.begin()
    # The product row stays locked: every stock change waits, times out (lock wait) and is retried.
    holder.execute(sa.text("SELECT stock FROM products WHERE product_id = :p FOR UPDATE"), {"p": product_id})
    try:
        with OrderLoad([o.address for o in topology.orders], product_id, clients=2) as load:
            wait_until(lambda: len(load.acked) >= 10, timeout=60, what="10 acknowledged orders")
        # The Catalog is stuck on the first of them (a lock wait lasts 10 s, then it retries).
        time.sleep(15)
        assert consumer_lag(settings.kafka_bootstrap, settings.catalog_group, settings.orders_topic) > 0
        supervisor.stop(catalog, grace=30)
    finally:
        tx.rollback()
        holder.close()
        engine.dispose()
    supervisor.ensure_up(catalog, timeout=60)
    ledger = settle(settings, load.acked, product_id, before)
    with capsys.disabled():  # the figures belong in every run's output
        print(f"\nSIGTERM mid-retry: {ledger}")
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger


def test_sigterm_mid_stream_then_restart_applies_once(topology, capsys):
    settings, supervisor = topology.settings, topology.supervisor
    catalog = topology.catalogs[0]
    product_id = add_product(settings, "TERM")
    with OrderLoad([o.address for o in topology.orders], product_id, clients=4) as load:
        time.sleep(4)
        supervisor.stop(catalog, grace=30)  # SIGTERM while events keep arriving
        time.sleep(2)
        supervisor.ensure_up(catalog, timeout=60)
        time.sleep(4)
    ledger = settle(settings, load.acked, product_id, 1_000_000_000)
    with capsys.disabled():
        print(f"\nSIGTERM mid-stream: {ledger}")
    assert ledger["acked"] > 0
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger
