"""The products' change stream through a fault: the Connect worker or MariaDB killed with kill -9
while prices change, then restarted by the supervisor. Afterwards every committed price is on
catalog.products, each product's last record is its last price, and per product the prices come
in the order they were written. And the source's position lost (its binlog purged, or its offsets
reset): a new snapshot brings every product's newest state. Counts and orders are asserted once
settled; times are printed."""
import time

import pymysql
import pytest

from connect import register, rest
from tests.support.faults import PartFault
from tests.support.products import (
    PriceWriter,
    as_root,
    by_key,
    change_product,
    priced_at,
    product_records,
    regressions,
    settle_prices,
)
from tests.support.tables import add_product
from tests.support.waiting import wait_until

PRODUCTS = 5
BEFORE_S, DOWN_S, AFTER_S = 3, 6, 4
SETTLE_S = 240


@pytest.mark.parametrize("victim", ["connect", "mariadb"])
def test_kill_9_while_prices_change(topology, victim, capsys):
    stack = topology.settings
    products = [add_product(stack, f"CDC-{victim.upper()}") for _ in range(PRODUCTS)]
    fault = PartFault(topology, victim)
    with PriceWriter(stack, products) as writer:
        time.sleep(BEFORE_S)
        fault.inject()
        killed_at = time.monotonic()
        time.sleep(DOWN_S)
        fault.recover()
        restarted_at = time.monotonic()
        time.sleep(AFTER_S)
    assert all(writer.written[p] for p in products), writer.written

    ledger = settle_prices(stack, writer, SETTLE_S)
    with capsys.disabled():
        print(f"\nkill -9 {victim:8} | {ledger.line()} | in sync {ledger.settled_at - restarted_at:5.1f}s after "
              f"restart ({ledger.settled_at - killed_at:5.1f}s after kill)")
    ledger.assert_every_price_once_in_order()



def source_name(settings) -> str:
    return register.load(register.PRODUCTS_SOURCE, settings)[0]


class BinlogPurged:
    """The source's worker killed, then every binlog file it could resume from purged: what a
    connector stopped past binlog_expire_logs_seconds finds at its start."""

    def __init__(self, topology):
        self.topology = topology

    def lose(self) -> None:
        PartFault(self.topology, "connect").inject()

    def restart(self) -> None:
        as_root(self.topology.settings, "FLUSH BINARY LOGS")  # the changes made meanwhile go with the old files
        as_root(self.topology.settings, f"PURGE BINARY LOGS TO '{newest_binlog(self.topology.settings)}'")
        PartFault(self.topology, "connect").recover()


class OffsetsReset:
    """The connector stopped and its committed offsets deleted (KIP-875, what an operator does to
    make it snapshot again), then resumed."""

    def __init__(self, topology):
        self.url, self.name = topology.settings.connect_url, source_name(topology.settings)

    def lose(self) -> None:
        call_ok(self.url, "PUT", f"/connectors/{self.name}/stop")
        wait_until(lambda: (register.connector_status(self.url, self.name) or {}).get("connector", {})
                   .get("state") == "STOPPED", timeout=60, what=f"{self.name} STOPPED")
        call_ok(self.url, "DELETE", f"/connectors/{self.name}/offsets")

    def restart(self) -> None:
        call_ok(self.url, "PUT", f"/connectors/{self.name}/resume")


def call_ok(url: str, method: str, path: str) -> None:
    status, body = rest.call(url, method, path, timeout=60)
    assert status in (200, 202, 204), f"{method} {path}: HTTP {status}: {body}"


def newest_binlog(settings) -> str:
    conn = pymysql.connect(unix_socket=str(settings.stack_dir / "run" / "mariadb.sock"), user="root")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            assert row, "no binlog: log_bin is off"
            return row[0]
    finally:
        conn.close()


@pytest.mark.parametrize("how", [BinlogPurged, OffsetsReset], ids=["binlog-purged", "offsets-reset"])
def test_a_snapshot_when_the_position_is_gone(topology, order_stubs, how, capsys):
    """While the source cannot go on from where it was, prices rise and a product is added. Its
    next start snapshots the table again (snapshot.mode=when_needed): every product reaches the
    topic and both Order instances' views at its newest price, and per product the topic never
    goes back to an older one."""
    stack = topology.settings
    products = [add_product(stack, "CDC-GONE", unit_price=1000 + i) for i in range(PRODUCTS)]
    wait_until(lambda: all(p in by_key(product_records(stack)) for p in products), timeout=SETTLE_S,
               what="the products on catalog.products")
    fault = how(topology)
    fault.lose()
    for i, p in enumerate(products):  # only in the table: the source will not read them from the binlog
        change_product(stack, "UPDATE products SET unit_price = :u WHERE product_id = :p", p, u=5000 + i)
    added = add_product(stack, "CDC-NEW", unit_price=7000)
    fault.restart()
    restarted_at = time.monotonic()
    expected = {**{p: 5000 + i for i, p in enumerate(products)}, added: 7000}

    def on_topic():
        keyed = by_key(product_records(stack))
        return all(keyed.get(p) and keyed[p][-1].product and keyed[p][-1].product.unit_price == price
                   for p, price in expected.items()) and keyed
    keyed = wait_until(on_topic, timeout=SETTLE_S, interval=1, what="the newest prices on catalog.products")
    on_topic_at = time.monotonic()
    for i, stub in enumerate(order_stubs, start=1):
        for p, price in expected.items():
            wait_until(lambda stub=stub, p=p, price=price: priced_at(stub, p, price), timeout=SETTLE_S,
                       interval=0.5, what=f"{p} at {price} on Order instance {i}")
    in_views_at = time.monotonic()
    status = register.connector_status(stack.connect_url, source_name(stack))
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"], status
    backwards = {p: regressions([r.product.unit_price for r in keyed[p] if r.product]) for p in expected}
    with capsys.disabled():
        print(f"\nposition lost ({how.__name__:12}) | newest prices on the topic {on_topic_at - restarted_at:5.1f}s "
              f"after the restart, in both views {in_views_at - restarted_at:5.1f}s | backwards "
              f"{sum(map(len, backwards.values()))}")
    assert not any(backwards.values()), backwards
