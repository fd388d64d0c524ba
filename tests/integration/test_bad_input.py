"""Bad input gets the right status code and a message naming the problem; the servers keep serving."""

import base64
import uuid

import grpc
import pytest

from ordersync.catalog.v1 import catalog_service_pb2
from ordersync.order.v1 import order_service_pb2

OK = dict(user_id="bad-input-user", product_id="CATALOG-001", qty=1)


def request(**changes):
    fields = {**OK, "request_id": str(uuid.uuid4()), **changes}
    return order_service_pb2.CreateOrderRequest(**fields)


# An empty user_id is the token's subject's (tests/integration/test_auth.py).
@pytest.mark.parametrize("changes, code, words", [
    ({"user_id": "u" * 65}, grpc.StatusCode.INVALID_ARGUMENT, "user_id is 65 characters long"),
    ({"user_id": "bad user"}, grpc.StatusCode.INVALID_ARGUMENT, "user_id 'bad user' may only contain"),
    ({"product_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "product_id is required"),
    ({"product_id": "P" * 200}, grpc.StatusCode.INVALID_ARGUMENT, "product_id is 200 characters long"),
    ({"qty": 0}, grpc.StatusCode.INVALID_ARGUMENT, "qty must be at least 1, got 0"),
    ({"qty": -5}, grpc.StatusCode.INVALID_ARGUMENT, "qty must be at least 1, got -5"),
    ({"qty": 2_000_000_000}, grpc.StatusCode.INVALID_ARGUMENT, "qty must be at most 10000"),
    ({"request_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "request_id is required"),
    ({"request_id": "retry-1"}, grpc.StatusCode.INVALID_ARGUMENT, "request_id 'retry-1' is not a UUID"),
    ({"request_id": "{%s}" % uuid.uuid4()}, grpc.StatusCode.INVALID_ARGUMENT, "8-4-4-4-12 hex digits"),
    ({"request_id": "urn:uuid:%s" % uuid.uuid4()}, grpc.StatusCode.INVALID_ARGUMENT, "8-4-4-4-12 hex digits"),
    ({"request_id": uuid.uuid4().hex}, grpc.StatusCode.INVALID_ARGUMENT, "8-4-4-4-12 hex digits"),
    ({"product_id": "CATALOG-999"}, grpc.StatusCode.NOT_FOUND, "unknown product_id 'CATALOG-999'"),
    ({"qty": 10_000}, grpc.StatusCode.FAILED_PRECONDITION, "units left, 10000 were ordered"),
])
def test_create_order_rejects(order_stubs, changes, code, words):
    with pytest.raises(grpc.RpcError) as caught:
        order_stubs[0].CreateOrder(request(**changes), timeout=10)
    assert caught.value.code() == code
    assert words in caught.value.details()


@pytest.mark.parametrize("order_id, code, words", [
    ("", grpc.StatusCode.INVALID_ARGUMENT, "order_id is required"),
    ("x" * 65, grpc.StatusCode.INVALID_ARGUMENT, "at most 64"),
    (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND, "not found"),
])
def test_get_order_rejects(order_stubs, order_id, code, words):
    with pytest.raises(grpc.RpcError) as caught:
        order_stubs[1].GetOrder(order_service_pb2.GetOrderRequest(order_id=order_id), timeout=10)
    assert caught.value.code() == code
    assert words in caught.value.details()


@pytest.mark.parametrize("changes, words", [
    ({"user_id": ""}, "user_id is required"),  # the operator's token of tests.support.tokens names no user
    ({"page_size": -1}, "page_size must not be negative"),
    ({"page_token": "garbage!"}, "page_token is malformed"),
    ({"page_token": base64.urlsafe_b64encode(b"[" * 100_000).decode()}, "page_token is malformed"),
    ({"page_token": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", 5]').decode()}, "page_token is malformed"),
])
def test_list_orders_rejects(order_stubs, changes, words):
    req = order_service_pb2.ListOrdersRequest(**{"user_id": "someone", **changes})
    with pytest.raises(grpc.RpcError) as caught:
        order_stubs[0].ListOrders(req, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.details()


@pytest.mark.parametrize("product_id, code", [
    ("", grpc.StatusCode.INVALID_ARGUMENT), ("a b", grpc.StatusCode.INVALID_ARGUMENT),
    ("CATALOG-404", grpc.StatusCode.NOT_FOUND)])
def test_get_product_rejects(catalog_stub, product_id, code):
    with pytest.raises(grpc.RpcError) as caught:
        catalog_stub.GetProduct(catalog_service_pb2.GetProductRequest(product_id=product_id), timeout=5)
    assert caught.value.code() == code
    assert "product_id" in caught.value.details()


def test_unparseable_bytes_are_refused_by_the_server(services, tokens):
    # Not even a protobuf message: the server answers INTERNAL for the undecodable request and lives on.
    with tokens.channel(services.orders[0].address) as channel:
        call = channel.unary_unary("/ordersync.order.v1.OrderService/CreateOrder")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff\xff", timeout=5)
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)


def test_servers_still_serve_after_bad_input(order_stubs, catalog_stub):
    products = catalog_stub.ListProducts(catalog_service_pb2.ListProductsRequest(), timeout=5).products
    ids = [p.product_id for p in products]
    assert ids == sorted(ids) and {"CATALOG-001", "CATALOG-002", "CATALOG-003"} <= set(ids)  # other tests add more
    for stub in order_stubs:
        order = stub.CreateOrder(request(), timeout=15).order
        assert order.total_price == 1500
