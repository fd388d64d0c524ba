"""A burst of poison records of every kind, interleaved with acknowledged orders, is a non-event.

100 poison records (every kind of tests/poisons.py, and order ids reused with other content)
are interleaved with 400 orders acknowledged by CreateOrder on both instances. Once the burst
has ended: every acknowledged order is in the table and in the stock, once; the table and the
stock agree on every order id of the run; the sink never stayed FAILED; and each poison is in
the dead-letter topic that refused it exactly once, in no other twice. The time to heal and the
copies per dead-letter topic are printed.

The same burst again with a part killed (kill -9) in the middle of it and restarted: the gate
(its open transaction is aborted, the batch decided again), the Connect worker (its task
re-reads what it had not committed). Nothing changes in the counts.
"""
import threading
import time
import uuid
from collections import Counter

import pytest

from connect import register
from ordersync.order.v1 import order_service_pb2
from tests.poisons import KINDS, poison, reused_id
from tests.support.faults import PartFault
from tests.support.kafka import read_topic
from tests.support.ledger import settled_ledger, table_and_stock
from tests.support.products import wait_in_views
from tests.support.tables import add_product, stock_of

VALID, POISONS = 400, 100
HEAL_S = 60  # the bound, on this 2-core machine
SETTLE_S = 400  # how long the figures are waited for (old designs took minutes)


class ConnectorWatch:
    """Polls the sink's status while the burst runs: the states its tasks were seen in."""

    def __init__(self, url: str, name: str):
        self.url, self.name, self.seen = url, name, Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        while not self._stop.wait(0.5):
            try:
                status = register.connector_status(self.url, self.name) or {"tasks": []}
            except (OSError, register.ConnectorError):
                self.seen["unreachable"] += 1
                continue
            for task in status["tasks"]:
                self.seen[task["state"]] += 1


def _copies(bootstrap: str, topic: str | None, keys: set[str]) -> Counter:
    if not topic:
        return Counter()
    return Counter(m.key().decode() for m in read_topic(bootstrap, topic, timeout=30)
                   if m.key() is not None and m.key().decode() in keys)


KILL_AT, RESTART_AT = 200, 350  # record numbers of the burst


@pytest.mark.parametrize("victim", [None, "gate-1", "connect"])
def test_a_poison_burst_heals_in_seconds_with_each_dead_letter_once(topology, stack, producer, order_stubs,
                                                                    kafka_bootstrap, capsys, victim):
    run = uuid.uuid4().hex[:8]
    product = add_product(stack, "BURST", unit_price=100)
    wait_in_views(topology, product)
    user = f"burst-{run}"
    before = stock_of(stack, product)
    kinds = [*KINDS, "reused-order-id"]
    acked: list[str] = []
    poisons: dict[str, str] = {}  # key -> kind
    slots = set(range(4, VALID + POISONS, (VALID + POISONS) // POISONS))  # every 5th record is poison
    fault = PartFault(topology, victim) if victim else None
    with ConnectorWatch(stack.connect_url, stack.sink_name) as watch:
        began = time.monotonic()
        for i in range(VALID + POISONS):
            if fault and i == KILL_AT:
                fault.inject()
            if fault and i == RESTART_AT:
                fault.recover()
            if i not in slots:
                reply = order_stubs[i % 2].CreateOrder(order_service_pb2.CreateOrderRequest(
                    user_id=user, product_id=product, qty=1, request_id=str(uuid.uuid4())), timeout=15)
                acked.append(reply.order.order_id)
                continue
            kind = kinds[len(poisons) % len(kinds)]
            if kind == "reused-order-id":
                key, value = acked[-1], reused_id(acked[-1], user, product)
            else:
                key = f"burst-{run}-{len(poisons)}"
                value = poison(kind, key, user, product)
            poisons[key] = kind
            producer.send(stack.orders_topic, value, key=key)
        ended = time.monotonic()
        ledger = settled_ledger(stack, acked, product, before, SETTLE_S)
        healed = time.monotonic() - ended
        agreement = table_and_stock(stack, product, before)

    rejected_topic = getattr(stack, "rejected_topic", None)
    topics = [t for t in (rejected_topic, stack.sink_dlq_topic, stack.catalog_dlq_topic) if t]
    keys = set(poisons)
    # Dead letters are written as the records are refused: wait until each poison is in one.
    deadline = time.monotonic() + 120
    while True:
        copies = {t: _copies(kafka_bootstrap, t, keys) for t in topics}
        if keys <= set().union(*copies.values()) or time.monotonic() > deadline:
            break
        time.sleep(3)

    with capsys.disabled():  # the figures belong in every run's output
        killed = f" ({victim} killed and restarted in it)" if victim else ""
        print(f"\npoison burst{killed}: {len(acked)} acknowledged orders and {len(poisons)} poison records in "
              f"{ended - began:.1f}s; every acknowledged order in the table and the stock "
              f"{healed:.1f}s after the burst (lost {ledger['lost']}, missing from the stock "
              f"{ledger['missing']}, double {ledger['double']}); sink task states seen: {dict(watch.seen)}")
        print(f"table vs stock for {agreement['rows']} order ids: {agreement['only_table']} only in the table, "
              f"{agreement['only_stock']} only in the stock, stock lowered {agreement['stock_drop_beyond']} beyond "
              f"the applied orders")
        for topic, counted in copies.items():
            print(f"  {topic}: {sum(counted.values())} records for {len(counted)} poisons, "
                  f"most copies of one: {max(counted.values(), default=0)}")
        by_kind = Counter()
        for key, kind in poisons.items():
            by_kind[kind, tuple(copies[t][key] for t in topics)] += 1
        print("  copies per kind (" + " / ".join(topics) + "): "
              + ", ".join(f"{kind} {'/'.join(map(str, n))}" for (kind, n), _ in sorted(by_kind.items())))

    assert (ledger["lost"], ledger["missing"], ledger["double"], ledger["duplicated"]) == (0, 0, 0, 0), ledger
    assert (agreement["only_table"], agreement["only_stock"], agreement["stock_drop_beyond"]) == (0, 0, 0), agreement
    assert agreement["rows"] == len(acked), "a poison reached the table"
    assert stock_of(stack, product) == before - len(acked), "a poison changed the stock"
    if victim is None:  # with a part restarted, recovery times are printed, not asserted
        assert healed <= HEAL_S, f"healed {healed:.0f}s after the burst, more than {HEAL_S}s"
        assert watch.seen["FAILED"] == 0, f"the sink's tasks were seen FAILED: {dict(watch.seen)}"
    assert rejected_topic, "no gate: the sides decide separately"
    missing = keys - set(copies[rejected_topic])
    assert not missing, f"not dead-lettered: {sorted(poisons[k] for k in missing)}"
    for topic, counted in copies.items():
        twice = {poisons[k]: n for k, n in counted.items() if n > 1}
        assert not twice, f"dead-lettered more than once in {topic}: {twice}"
