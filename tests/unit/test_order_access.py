"""Who may do what with orders (order_svc/access.py), alone and through OrderService with
in-process stand-ins: every refusal with its code and message, each beside what the same caller
may do."""

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import grpc
import pytest

from order_svc import access
from order_svc.rules import order_id_for
from order_svc.server import OrderService
from ordersync.order.v1 import order_service_pb2
from ordersync.serving.auth import OPERATOR, SERVICE, USER, Identity
from tests.doubles import Aborted, EventProducer, OrderStore, ProductView, ServicerContext

ALICE, BOB = Identity("alice", USER), Identity("bob", USER)
OPS, ORDER_SVC = Identity("oscar", OPERATOR), Identity("order", SERVICE)
SETTINGS = SimpleNamespace(publish_timeout_s=1.0, product_view_max_behind_s=30.0)


def denied(rule, *args) -> str:
    with pytest.raises(access.Denied) as caught:
        rule(*args)
    return str(caught.value)


def test_a_user_places_orders_for_themself_only():
    assert access.placing_for(ALICE, "alice") == "alice"
    assert access.placing_for(ALICE, "") == "alice"  # empty: the subject's
    assert denied(access.placing_for, ALICE, "bob") == (
        "a token of alice cannot act for bob: a user's token acts only for its subject")
    assert "cannot act for Alice" in denied(access.placing_for, ALICE, "Alice")  # ids are case-sensitive


def test_an_operator_places_no_order_and_a_service_calls_no_order_method():
    assert denied(access.placing_for, OPS, "bob").startswith("an operator token (oscar) cannot place orders")
    for rule, args in ((access.placing_for, ("order",)), (access.listing_for, ("bob",)), (access.reader, ())):
        assert denied(rule, ORDER_SVC, *args) == (
            "a service token (order) cannot call the Order API: it is for users and operators")


def test_who_lists_and_reads_whose_orders():
    assert access.listing_for(ALICE, "") == access.listing_for(ALICE, "alice") == "alice"
    assert denied(access.listing_for, ALICE, "bob").startswith("a token of alice cannot act for bob")
    assert access.listing_for(OPS, "bob") == "bob" and access.listing_for(OPS, "") == ""
    assert access.may_read(ALICE, "alice") and not access.may_read(ALICE, "bob")
    assert access.may_read(OPS, "bob") and access.reader(ALICE) == ALICE


# ---------------------------------------------------------------- through the servicer

def row(user_id: str) -> dict:
    request_id = str(uuid.uuid4())
    return {"order_id": order_id_for(user_id, request_id), "user_id": user_id, "product_id": "CATALOG-001",
            "qty": 1, "unit_price": 1500, "total_price": 1500, "created_at": datetime(2026, 11, 25, tzinfo=timezone.utc)}


def answer(method, request, caller: Identity):
    context = ServicerContext(caller=caller)
    try:
        return method(request, context), context
    except Aborted:
        return None, context


def service(rows=(), producer=None) -> OrderService:
    return OrderService(SETTINGS, ProductView(), producer or EventProducer(), OrderStore(rows=rows))


def create_request(user_id: str) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(user_id=user_id, product_id="CATALOG-001", qty=1,
                                                request_id=str(uuid.uuid4()))


def test_create_order_for_another_user_is_permission_denied_and_publishes_nothing():
    producer = EventProducer()
    svc = service(producer=producer)
    reply, context = answer(svc.CreateOrder, create_request("bob"), ALICE)
    assert reply is None and context.code == grpc.StatusCode.PERMISSION_DENIED
    assert context.details.startswith("a token of alice cannot act for bob")
    assert producer.published == []
    reply, _ = answer(svc.CreateOrder, create_request("alice"), ALICE)  # the same caller, for themself
    assert reply.order.user_id == "alice" and len(producer.published) == 1


def test_an_empty_user_id_places_the_order_for_the_token_s_subject():
    request = create_request("")
    reply, _ = answer(service().CreateOrder, request, ALICE)
    assert reply.order.user_id == "alice" and reply.order.order_id == order_id_for("alice", request.request_id)


@pytest.mark.parametrize("caller, words", [(OPS, "an operator token (oscar) cannot place orders"),
                                           (ORDER_SVC, "a service token (order) cannot call the Order API")])
def test_operators_and_services_place_no_orders(caller, words):
    reply, context = answer(service().CreateOrder, create_request("bob"), caller)
    assert reply is None and context.code == grpc.StatusCode.PERMISSION_DENIED and words in context.details


def test_get_order_of_another_user_is_not_found_word_for_word_as_no_order():
    bobs = row("bob")
    svc = service(rows=[bobs])
    theirs, refused = answer(svc.GetOrder, order_service_pb2.GetOrderRequest(order_id=bobs["order_id"]), ALICE)
    missing_id = order_id_for("bob", str(uuid.uuid4()))
    none, missing = answer(svc.GetOrder, order_service_pb2.GetOrderRequest(order_id=missing_id), ALICE)
    assert theirs is None and none is None
    assert refused.code == missing.code == grpc.StatusCode.NOT_FOUND
    assert refused.details.replace(bobs["order_id"], "ID") == missing.details.replace(missing_id, "ID")
    # The owner and an operator read it.
    for caller in (BOB, OPS):
        mine, _ = answer(svc.GetOrder, order_service_pb2.GetOrderRequest(order_id=bobs["order_id"]), caller)
        assert mine.order.user_id == "bob"


def test_get_order_with_a_service_token_is_permission_denied():
    bobs = row("bob")
    reply, context = answer(service(rows=[bobs]).GetOrder, order_service_pb2.GetOrderRequest(order_id=bobs["order_id"]),
                            ORDER_SVC)
    assert reply is None and context.code == grpc.StatusCode.PERMISSION_DENIED


def test_list_orders_of_another_user_is_permission_denied_but_not_for_an_operator():
    svc = service(rows=[row("bob"), row("bob"), row("alice")])
    reply, context = answer(svc.ListOrders, order_service_pb2.ListOrdersRequest(user_id="bob"), ALICE)
    assert reply is None and context.code == grpc.StatusCode.PERMISSION_DENIED
    assert context.details.startswith("a token of alice cannot act for bob")
    mine, _ = answer(svc.ListOrders, order_service_pb2.ListOrdersRequest(user_id=""), ALICE)  # empty: mine
    assert [o.user_id for o in mine.orders] == ["alice"]
    theirs, _ = answer(svc.ListOrders, order_service_pb2.ListOrdersRequest(user_id="bob"), OPS)
    assert [o.user_id for o in theirs.orders] == ["bob", "bob"]
    reply, context = answer(svc.ListOrders, order_service_pb2.ListOrdersRequest(user_id=""), OPS)
    assert reply is None and context.code == grpc.StatusCode.INVALID_ARGUMENT and "user_id is required" in context.details


def test_a_call_the_interceptor_did_not_see_is_unauthenticated():
    context = ServicerContext(caller=None)
    with pytest.raises(Aborted):
        service().ListOrders(order_service_pb2.ListOrdersRequest(user_id="alice"), context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED
