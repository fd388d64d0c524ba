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

from ordersync.config import Settings, private_key
from ordersync.order.v1 import order_service_pb2
from ordersync.serving import auth
from tests.support.tokens import Tokens

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
