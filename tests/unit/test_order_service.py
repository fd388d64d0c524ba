"""OrderService's answers when a collaborator fails, with in-process stand-ins (no servers)."""

import logging
import threading
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry

from order_svc.metrics import OrderMetrics
from order_svc.rules import order_id_for
from order_svc.server import OrderService
from ordersync.order.v1 import order_service_pb2
from tests.doubles import Aborted, EventProducer, OrderStore, ProductView, ServicerContext

SETTINGS = SimpleNamespace(publish_timeout_s=1.0, product_view_max_behind_s=30.0)


def row(user_id, request_id, qty=2):
    return {"order_id": order_id_for(user_id, request_id), "user_id": user_id, "product_id": "CATALOG-001",
            "qty": qty, "unit_price": 1500, "total_price": qty * 1500,
            "created_at": datetime(2026, 11, 25, tzinfo=timezone.utc)}


def create(service, remaining=None, **changes):
    request = order_service_pb2.CreateOrderRequest(**{
        "user_id": "u1", "product_id": "CATALOG-001", "qty": 2, "request_id": str(uuid.uuid4()), **changes})
    context = ServicerContext(remaining)
    try:
        return service.CreateOrder(request, context), context
    except Aborted:
        return None, context


def service(view=None, producer=None, store=None, settings=SETTINGS, order_metrics=None, clock=None):
    return OrderService(settings, view or ProductView(), producer or EventProducer(), store or OrderStore(),
                        order_metrics, clock)


def test_the_order_is_priced_from_the_view_only():
    view = ProductView(unit_price=1700)
    reply, _ = create(service(view=view))
    assert reply.order.unit_price == 1700 and reply.order.total_price == 3400
    assert view.asked == ["CATALOG-001"]  # the Catalog has no stand-in here: nothing could ask it


def test_orders_are_taken_while_the_view_is_behind_by_at_most_the_bound_then_refused():
    view, producer = ProductView(behind=SETTINGS.product_view_max_behind_s), EventProducer()
    svc = service(view=view, producer=producer)
    reply, context = create(svc)
    assert reply is not None, context.details
    view.behind = SETTINGS.product_view_max_behind_s + 1
    reply, context = create(svc)
    assert reply is None and context.code == grpc.StatusCode.UNAVAILABLE
    assert "31s behind catalog.products" in context.details and "PRODUCT_VIEW_MAX_BEHIND_S=30" in context.details
    assert len(producer.published) == 1


def test_a_view_not_read_to_its_end_yet_is_unavailable():
    producer = EventProducer()
    reply, context = create(service(view=ProductView(behind=None), producer=producer))
    assert reply is None and context.code == grpc.StatusCode.UNAVAILABLE
    assert "not read catalog.products to its end yet" in context.details and producer.published == []


def test_an_accepted_order_is_published_once_and_remembered():
    producer = EventProducer()
    svc = service(producer=producer)
    request_id = str(uuid.uuid4())
    first, _ = create(svc, request_id=request_id)
    again, _ = create(svc, request_id=request_id)
    assert first.order.total_price == 3000
    assert again == first
    assert [e.order_id for e in producer.published] == [first.order.order_id]
    assert producer.published[0].created_at == first.order.created_at


def test_a_product_the_view_does_not_have_is_not_found():
    producer = EventProducer()
    reply, context = create(service(view=ProductView(missing={"CATALOG-001"}), producer=producer))
    assert reply is None and context.code == grpc.StatusCode.NOT_FOUND
    assert "CATALOG-001" in context.details and "ListProducts" in context.details
    assert producer.published == []


@pytest.mark.parametrize("kafka_error", [None, "_MSG_TIMED_OUT"])
def test_unacknowledged_publish_is_unavailable_and_says_to_retry(kafka_error):
    reply, context = create(service(producer=EventProducer(fail=True, kafka_error=kafka_error)))
    assert reply is None and context.code == grpc.StatusCode.UNAVAILABLE
    assert "may still arrive" in context.details
    assert "retry with the same request_id" in context.details


def test_without_a_caller_deadline_the_configured_waits_apply():
    producer = EventProducer()
    create(service(producer=producer))
    assert producer.timeouts == [SETTINGS.publish_timeout_s]


def test_waits_are_cut_to_the_callers_deadline_minus_a_margin():
    producer = EventProducer()
    reply, _ = create(service(producer=producer), remaining=0.5)
    assert reply is not None
    assert 0 < producer.timeouts[0] < 0.5


@pytest.mark.parametrize("remaining", [0.0, 0.05])
def test_a_deadline_already_gone_is_exceeded_at_once(remaining):
    producer = EventProducer()
    reply, context = create(service(producer=producer), remaining=remaining)
    assert reply is None and context.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert producer.timeouts == [] and producer.published == [] and "nothing was placed" in context.details


def test_no_ack_within_the_callers_deadline_says_the_order_may_still_arrive():
    producer = EventProducer(fail=True)
    reply, context = create(service(producer=producer), remaining=0.5)
    assert reply is None and context.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert producer.timeouts[0] < 0.5
    assert "may still arrive" in context.details and "retry with the same request_id" in context.details


def call(method, request):
    context = ServicerContext()
    try:
        return method(request, context), context
    except Aborted:
        return None, context


def test_orders_are_taken_while_the_orders_table_is_unreadable():
    producer = EventProducer()
    reply, context = create(service(store=OrderStore(fail=True), producer=producer))
    assert reply is not None
    assert [e.order_id for e in producer.published] == [reply.order.order_id]


def test_reads_are_unavailable_while_the_orders_table_is_unreadable():
    svc = service(store=OrderStore(fail=True))
    reply, context = call(svc.GetOrder, order_service_pb2.GetOrderRequest(order_id="o-1"))
    assert reply is None and context.code == grpc.StatusCode.UNAVAILABLE
    reply, context = call(svc.ListOrders, order_service_pb2.ListOrdersRequest(user_id="u1"))
    assert reply is None and context.code == grpc.StatusCode.UNAVAILABLE


def test_a_readable_row_still_answers_retries_and_reused_request_ids():
    request_id = str(uuid.uuid4())
    producer = EventProducer()
    svc = service(store=OrderStore(rows=[row("u1", request_id, qty=2)]), producer=producer)
    again, _ = create(svc, request_id=request_id, qty=2)
    assert again.order.order_id == order_id_for("u1", request_id)
    reply, context = create(svc, request_id=request_id, qty=3)
    assert reply is None and context.code == grpc.StatusCode.ALREADY_EXISTS
    assert producer.published == []


def test_an_unreadable_table_is_logged_once_per_change_not_per_order(caplog):
    store = OrderStore(fail=True)
    svc = service(store=store)
    with caplog.at_level(logging.INFO, logger="order_svc"):
        for _ in range(3):
            create(svc)
        call(svc.GetOrder, order_service_pb2.GetOrderRequest(order_id="o-1"))
        store.fail = False
        create(svc)
        create(svc)
        store.fail = True
        create(svc)
    about_table = [(r.levelno, r.getMessage()) for r in caplog.records if "orders table" in r.getMessage()]
    assert [level for level, _ in about_table] == [logging.WARNING, logging.INFO, logging.WARNING]
    assert "connection refused" in about_table[0][1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_not_enough_stock_publishes_nothing():
    producer = EventProducer()
    reply, context = create(service(view=ProductView(stock=1), producer=producer), qty=2)
    assert reply is None and context.code == grpc.StatusCode.FAILED_PRECONDITION
    assert producer.published == []


@pytest.mark.parametrize("unit_price", [0, -5])
def test_a_product_priced_below_the_event_minimum_is_refused_before_publishing(unit_price):
    producer = EventProducer()
    reply, context = create(service(view=ProductView(unit_price=unit_price), producer=producer))
    assert reply is None and context.code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"unit price {unit_price}" in context.details and "minimum 1" in context.details
    assert producer.published == []


def test_a_total_above_int32_is_refused_before_publishing():
    producer = EventProducer()
    reply, context = create(service(view=ProductView(unit_price=2**30), producer=producer), qty=2)
    assert reply is None and context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "exceeds the largest order total" in context.details
    assert producer.published == []


def test_an_event_that_breaks_the_shared_event_rules_is_not_published():
    # A clock before 2000 gives a created_at that the Catalog and the table refuse.
    producer = EventProducer()
    reply, context = create(service(producer=producer, clock=lambda: Timestamp(seconds=10)))
    assert reply is None and context.code == grpc.StatusCode.INTERNAL
    assert "created_at" in context.details
    assert producer.published == []


# --- metrics -------------------------------------------------------------------------------

def test_create_order_answers_are_counted_by_status_code_with_their_latency():
    registry = CollectorRegistry()
    view = ProductView()
    svc = service(view=view, order_metrics=OrderMetrics(registry))
    request_id = str(uuid.uuid4())
    create(svc, request_id=request_id)
    create(svc, request_id=request_id)  # a retry of a placed order is OK too
    create(svc, qty=0)
    create(svc, request_id=request_id, qty=3)
    view.stock = 1
    create(svc)

    def count(code):
        return registry.get_sample_value("ordersync_create_order_total", {"code": code})
    assert (count("OK"), count("INVALID_ARGUMENT"), count("ALREADY_EXISTS"), count("FAILED_PRECONDITION")) == \
        (2, 1, 1, 1)
    assert count("UNAVAILABLE") is None
    assert registry.get_sample_value("ordersync_create_order_seconds_count") == 5


def test_an_unexpected_error_counts_as_unknown():
    class Broken(ProductView):
        def get(self, product_id):
            raise KeyError("bug")
    registry = CollectorRegistry()
    with pytest.raises(KeyError):
        create(service(view=Broken(), order_metrics=OrderMetrics(registry)))
    assert registry.get_sample_value("ordersync_create_order_total", {"code": "UNKNOWN"}) == 1


def test_publish_latency_is_observed_when_acked_and_when_not():
    registry = CollectorRegistry()
    producer = EventProducer()
    svc = service(producer=producer, order_metrics=OrderMetrics(registry))
    create(svc)
    producer.fail = True
    _, context = create(svc)
    assert context.code == grpc.StatusCode.UNAVAILABLE

    def published(result):
        return registry.get_sample_value("ordersync_publish_seconds_count", {"result": result})
    assert (published("acked"), published("failed")) == (1, 1)
    assert registry.get_sample_value("ordersync_create_order_total", {"code": "UNAVAILABLE"}) == 1


def test_different_orders_never_wait_for_each_other_and_one_order_is_serialised():

    from order_svc.server import KeyedLocks
    locks = KeyedLocks()
    entered = threading.Event()
    with locks.hold("order-a"):
        # Another order goes through at once, whatever the ids hash to ...
        def other_order():
            with locks.hold("order-b"):
                entered.set()
        other = threading.Thread(target=other_order)
        other.start()
        assert entered.wait(5)
        # ... while a retry of the same order waits until the first is done.
        same = threading.Event()

        def retry():
            with locks.hold("order-a"):
                same.set()
        t = threading.Thread(target=retry)
        t.start()
        assert not same.wait(0.3)
    assert same.wait(5)
    t.join(5)
    other.join(5)
    assert locks._locks == {}, "no lock is kept once nobody holds or waits for it"
