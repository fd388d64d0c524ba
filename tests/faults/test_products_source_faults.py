"""The products' change stream through a fault: the Connect worker or MariaDB killed with kill -9
while prices change, then restarted by the supervisor. Afterwards every committed price is on
catalog.products, each product's last record is its last price, and per product the prices come
in the order they were written. Counts and orders are asserted once settled; times are printed."""
import time

import pytest

from tests.support.faults import PartFault
from tests.support.products import PriceWriter, by_key, product_records, regressions
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

    def arrived():
        keyed = by_key(product_records(stack))
        return all(keyed.get(p) and keyed[p][-1].product and keyed[p][-1].product.unit_price == writer.written[p][-1]
                   for p in products) and keyed
    keyed = wait_until(arrived, timeout=SETTLE_S, interval=1, what="every product's last price on catalog.products")
    settled_at = time.monotonic()
    time.sleep(3)
    keyed = by_key(product_records(stack))

    seen = {p: [r.product.unit_price for r in keyed[p] if r.product and r.product.unit_price >= 1000]
            for p in products}
    missed = {p: sorted(set(writer.written[p]) - set(seen[p])) for p in products}
    unknown = {p: sorted(set(seen[p]) - set(writer.written[p])) for p in products}
    backwards = {p: regressions(seen[p]) for p in products}
    replayed = sum(len(seen[p]) - len(set(seen[p])) for p in products)
    with capsys.disabled():
        print(f"\nkill -9 {victim:8} | written {writer.count:5} | on the topic {sum(map(len, seen.values())):5} | "
              f"replayed {replayed} | missed {sum(map(len, missed.values()))} | "
              f"backwards {sum(map(len, backwards.values()))} | in sync {settled_at - restarted_at:5.1f}s after "
              f"restart ({settled_at - killed_at:5.1f}s after kill)")
    assert not any(missed.values()), missed
    assert not any(unknown.values()), unknown
    assert not any(backwards.values()), backwards
    for p in products:
        assert keyed[p][-1].product.unit_price == writer.written[p][-1]
