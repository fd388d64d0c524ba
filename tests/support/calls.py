"""The calls the tests of the front door make (tests/integration/test_auth.py single-node, and
tests/cluster/test_front_door.py over TLS): who calls, with what token, and what a refusal says.

    metadata, words = bad_metadata("expired", user_id, settings, tokens)
    refusal = refused(stub.CreateOrder, create_request(user_id), metadata)
"""

import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ordersync.catalog.v1 import catalog_service_pb2
from ordersync.config import Settings, private_key
from ordersync.order.v1 import order_service_pb2
from ordersync.serving import auth
from tests.support.tokens import Tokens
from tests.support.waiting import wait_until

# Every kind of token the interceptor refuses (ordersync.serving.auth).
BAD_TOKENS = ["no token", "not Bearer", "forged", "expired", "wrong audience", "no subject", "unknown role"]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def new_user() -> str:
    return f"auth-{uuid.uuid4().hex[:8]}"


def create_request(user_id: str, product_id: str = "CATALOG-003") -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(user_id=user_id, product_id=product_id, qty=1,
                                                request_id=str(uuid.uuid4()))


def refused(call, request, metadata) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=15, metadata=metadata)
    return caught.value


def bad_metadata(case: str, user_id: str, stack: Settings, tokens: Tokens) -> tuple[list, str]:
    """The metadata of one kind of bad call (one of BAD_TOKENS), and the words its refusal says."""
    stack_key, now = private_key(stack.auth_private_key), int(time.time())
    claims = {"sub": user_id, "aud": auth.AUDIENCE, "iat": now, "exp": now + 600, "role": auth.USER}
    return {
        "no token": ([], "no token: send the metadata 'authorization: Bearer <token>'"),
        "not Bearer": ([("authorization", f"Basic {tokens.user(user_id)}")], "is not a Bearer token"),
        "forged": (bearer(auth.mint(Ed25519PrivateKey.generate(), user_id, auth.USER, 600)),
                   "signature does not verify: it was not signed by this stack's key"),
        "expired": (bearer(tokens.mint(user_id, ttl_s=600, now=now - 3600)), "the token expired at"),
        "wrong audience": (bearer(jwt.encode({**claims, "aud": "another-shop"}, stack_key, algorithm="EdDSA")),
                           "the token is not for ordersync"),
        "no subject": (bearer(jwt.encode({**claims, "sub": ""}, stack_key, algorithm="EdDSA")), "no subject"),
        "unknown role": (bearer(jwt.encode({**claims, "role": "admin"}, stack_key, algorithm="EdDSA")),
                         "role 'admin' is not one of user, operator, service"),
    }[case]


def refused_everywhere_but_with_the_right_token(orders, catalog, metadata: list, words: str, user_id: str,
                                               tokens: Tokens, product_id: str = "CATALOG-003") -> None:
    """Each Order stub's CreateOrder and the Catalog's ListProducts with `metadata` are
    UNAUTHENTICATED saying `words`; the same calls with user_id's own token succeed (the positive
    control: no refusal passes with a server down)."""
    for stub in orders:
        refusal = refused(stub.CreateOrder, create_request(user_id, product_id), metadata)
        assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED and words in refusal.details(), refusal
        reply = stub.CreateOrder(create_request(user_id, product_id), timeout=15, metadata=bearer(tokens.user(user_id)))
        assert reply.order.user_id == user_id
    refusal = refused(catalog.ListProducts, catalog_service_pb2.ListProductsRequest(), metadata)
    assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED and words in refusal.details(), refusal
    assert catalog.ListProducts(catalog_service_pb2.ListProductsRequest(), timeout=10,
                                metadata=bearer(tokens.user(user_id))).products


def placed_and_readable(orders, tokens: Tokens, user_id: str, product_id: str = "CATALOG-003",
                        timeout: float = 60) -> order_service_pb2.Order:
    """An order of user_id placed on the first Order stub, once its owner reads it on the second
    (the positive control of the reads)."""
    order = orders[0].CreateOrder(create_request(user_id, product_id), timeout=15,
                                  metadata=bearer(tokens.user(user_id))).order

    def readable():
        try:
            return orders[1].GetOrder(order_service_pb2.GetOrderRequest(order_id=order.order_id), timeout=5,
                                      metadata=bearer(tokens.user(user_id))).order
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
            return None
    assert wait_until(readable, timeout=timeout, what="the order to be readable by its owner") == order
    return order
