"""Who may call what, through the real Order and Catalog servers of the private stack: every
refusal, each with a positive control in the same test (the right token on the same call
succeeds, so no refusal can pass with a server down), the operator reading another user's orders,
and health and reflection without a token."""

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.channels import open_channel
from tests.support.calls import (
    BAD_TOKENS,
    bad_metadata,
    bearer,
    create_request,
    new_user,
    placed_and_readable,
    refused,
    refused_everywhere_but_with_the_right_token,
)
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def plain(services):
    """Stubs on channels that send no token of their own: each call says its metadata."""
    channels = [open_channel(svc.address) for svc in [*services.orders, services.catalog]]
    yield ([order_service_pb2_grpc.OrderServiceStub(c) for c in channels[:-1]],
           catalog_service_pb2_grpc.CatalogServiceStub(channels[-1]))
    for channel in channels:
        channel.close()


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_call_without_a_valid_token_is_unauthenticated_on_every_server(plain, stack, tokens, case):
    orders, catalog = plain
    user_id = new_user()
    metadata, words = bad_metadata(case, user_id, stack, tokens)
    refused_everywhere_but_with_the_right_token(orders, catalog, metadata, words, user_id, tokens)


def test_the_catalog_answers_no_one_without_a_token_and_every_role_with_one(plain, stack, tokens):
    _, catalog = plain
    request = catalog_service_pb2.GetProductRequest(product_id="CATALOG-001")
    refusal = refused(catalog.GetProduct, request, [])
    assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED and "no token" in refusal.details()
    for token in (tokens.user(new_user()), tokens.operator(), tokens.mint("some-service", auth.SERVICE)):
        assert catalog.GetProduct(request, timeout=5, metadata=bearer(token)).product.product_id == "CATALOG-001"


def test_create_order_for_another_user_is_permission_denied(plain, tokens):
    orders, _ = plain
    alice, bob = new_user(), new_user()
    refusal = refused(orders[0].CreateOrder, create_request(alice), bearer(tokens.user(bob)))
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refusal.details().startswith(f"a token of {bob} cannot act for {alice}")
    mine = orders[0].CreateOrder(create_request(bob), timeout=15, metadata=bearer(tokens.user(bob)))
    assert mine.order.user_id == bob


def test_an_empty_user_id_is_the_token_s_subject(plain, tokens):
    orders, _ = plain
    user_id = new_user()
    reply = orders[1].CreateOrder(create_request(""), timeout=15, metadata=bearer(tokens.user(user_id)))
    assert reply.order.user_id == user_id
    listed = wait_until(lambda: orders[1].ListOrders(order_service_pb2.ListOrdersRequest(), timeout=5,
                                                     metadata=bearer(tokens.user(user_id))).orders,
                        timeout=60, what="the order to be listed")
    assert [o.order_id for o in listed] == [reply.order.order_id]


def test_get_order_of_another_user_is_not_found_as_an_order_that_does_not_exist(plain, tokens):
    orders, _ = plain
    alice, bob = new_user(), new_user()
    order = placed_and_readable(orders, tokens, alice)
    theirs = refused(orders[1].GetOrder, order_service_pb2.GetOrderRequest(order_id=order.order_id),
                     bearer(tokens.user(bob)))
    missing_id = str(uuid.uuid4())
    missing = refused(orders[1].GetOrder, order_service_pb2.GetOrderRequest(order_id=missing_id),
                      bearer(tokens.user(bob)))
    assert theirs.code() == missing.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.details().replace(order.order_id, "ID") == missing.details().replace(missing_id, "ID")


def test_list_orders_of_another_user_is_permission_denied(plain, tokens):
    orders, _ = plain
    alice, bob = new_user(), new_user()
    order = placed_and_readable(orders, tokens, alice)
    refusal = refused(orders[0].ListOrders, order_service_pb2.ListOrdersRequest(user_id=alice), bearer(tokens.user(bob)))
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refusal.details().startswith(f"a token of {bob} cannot act for {alice}")
    mine = orders[0].ListOrders(order_service_pb2.ListOrdersRequest(user_id=alice), timeout=5,
                                metadata=bearer(tokens.user(alice))).orders
    assert [o.order_id for o in mine] == [order.order_id]


def test_an_operator_reads_any_user_s_orders_and_places_none(plain, tokens):
    orders, _ = plain
    alice = new_user()
    order = placed_and_readable(orders, tokens, alice)
    operator = bearer(tokens.operator())
    got = orders[0].GetOrder(order_service_pb2.GetOrderRequest(order_id=order.order_id), timeout=5, metadata=operator)
    assert got.order == order
    listed = orders[1].ListOrders(order_service_pb2.ListOrdersRequest(user_id=alice), timeout=5, metadata=operator)
    assert [o.order_id for o in listed.orders] == [order.order_id]
    refusal = refused(orders[0].CreateOrder, create_request(alice), operator)
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED and "cannot place orders" in refusal.details()


def test_health_and_reflection_answer_without_a_token(services, stack, tokens):
    for svc in [*services.orders, services.catalog]:
        with open_channel(svc.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
            names = {s.name for reply in replies for s in reply.list_services_response.service}
            assert "grpc.health.v1.Health" in names and len(names) >= 3, names
