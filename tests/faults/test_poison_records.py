"""One poison record of each kind on the orders topic, between good orders: the gate refuses each
with its reason, once, into orders.rejected; neither the table nor the stock gets any of them, and
both get every good order around them. Nothing needs a human.
"""
import time
import uuid

from connect import register
from ordersync.gate import verdict
from ordersync.order.v1 import order_service_pb2
from tests.poisons import KINDS, poison, reused_id
from tests.support.kafka import read_topic
from tests.support.ledger import table_and_stock
from tests.support.products import wait_in_views
from tests.support.tables import add_product, stock_of
from tests.support.waiting import wait_until

SETTLE_S = 120
# Why each kind is refused (gate.verdict), by class of input.
REASON = {kind: verdict.NOT_AN_EVENT for kind in KINDS}
REASON.update({kind: verdict.BREAKS_RULES for kind in
               ("missing-field", "negative-qty", "wrong-total", "300-char-id", "bad-id-chars")})
REASON.update({"unknown-product": verdict.UNKNOWN_PRODUCT, "product-in-lower-case": verdict.UNKNOWN_PRODUCT,
               "reused-order-id": verdict.ORDER_ID_REUSED})


def place(stub, user_id: str, product_id: str) -> str:
    return stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id=product_id, qty=1, request_id=str(uuid.uuid4())), timeout=15).order.order_id


def test_each_poison_is_refused_once_with_its_reason_and_nothing_stops(stack, topology, producer, order_stubs,
                                                                       capsys):
    run = uuid.uuid4().hex[:8]
    user_id, product = f"poison-{run}", add_product(stack, "POISON")
    wait_in_views(topology, product)
    before = stock_of(stack, product)
    good, poisons = [], {}  # key -> kind
    began = time.monotonic()
    for i, kind in enumerate([*KINDS, "reused-order-id"]):
        good.append(place(order_stubs[i % 2], user_id, product))
        if kind == "reused-order-id":
            key, value = good[0], reused_id(good[0], user_id, product)
        else:
            key = f"poison-{kind}-{run}".replace("^", "").replace(".", "")
            value = poison(kind, key, user_id, product)
        poisons[key] = kind
        producer.send(stack.orders_topic, value, key=key)
    good += [place(order_stubs[i % 2], user_id, product) for i in range(5)]

    wait_until(lambda: stock_of(stack, product) == before - len(good) and
               table_and_stock(stack, product, before)["rows"] == len(good),
               timeout=SETTLE_S, what=f"{len(good)} good orders in the table and the stock")
    landed = time.monotonic() - began
    agreement = table_and_stock(stack, product, before)
    assert (agreement["only_table"], agreement["only_stock"], agreement["stock_drop_beyond"]) == (0, 0, 0), agreement

    def refused():
        found = {}
        for m in read_topic(stack.kafka_bootstrap, stack.rejected_topic, timeout=30):
            key = (m.key() or b"").decode(errors="replace")
            if key in poisons:
                found.setdefault(key, []).append({k: v.decode() for k, v in m.headers()})
        return found if set(found) == set(poisons) else None
    found = wait_until(refused, timeout=60, interval=2, what="every poison in the rejected topic")
    elsewhere = {t: [m for m in read_topic(stack.kafka_bootstrap, t, timeout=10)
                     if (m.key() or b"").decode(errors="replace") in poisons]
                 for t in (stack.sink_dlq_topic, stack.catalog_dlq_topic)}
    with capsys.disabled():  # the figures belong in every run's output
        print(f"\n{'poison record':22} | reason            | copies in {stack.rejected_topic}   "
              f"(good orders in the table and the stock after {landed:.1f}s)")
        for key, kind in poisons.items():
            reasons = [h["dlq.error.class"] for h in found[key]]
            print(f"{kind:22} | {reasons[0]:17} | {len(reasons)}")
    for key, kind in poisons.items():
        assert [h["dlq.error.class"] for h in found[key]] == [REASON[kind]], kind
        assert found[key][0]["dlq.error.message"], f"{kind} refused without a reason"
    assert elsewhere == {t: [] for t in elsewhere}, "a poison got past the gate"
    status = register.connector_status(stack.connect_url, stack.sink_name)
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"] * len(status["tasks"]), status
    for service in topology.services:
        assert topology.supervisor.pid(service), f"{service.name} died"
