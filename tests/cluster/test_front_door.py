"""The secured cluster's front door: every gRPC port (Orders, Catalogs, gates) speaks TLS only,
with the certificate of the stack's CA; callers are checked by their tokens as in single-node
mode, and act on their own orders only.

Every refusal has its positive control in the same test: the same call, from a client that
trusts the stack's CA and with the right token, succeeds. So no refusal can pass with a server
down. grpcurl is driven as the README's lines drive it (-cacert, -H "authorization: Bearer ...").
"""

import json
import subprocess
import uuid

import grpc
import pytest

from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.config import ROOT, Settings
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving.channels import open_channel
from stack import tls
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
from tests.support.products import wait_in_views
from tests.support.tables import add_product
from tests.support.tokens import Tokens
from tests.support.waiting import wait_until

GRPCURL = ROOT / ".stack" / "bin" / "grpcurl"
HEALTH = "grpc.health.v1.Health/Check"


def grpcurl(address: str, *command: str, body: dict | None = None, ca: str | None = None, plaintext: bool = False,
            token: str | None = None) -> subprocess.CompletedProcess:
    """grpcurl as the README has it: trusting `ca`, or plaintext, or neither (the system's CAs)."""
    assert GRPCURL.exists(), "grpcurl is missing: `make setup` builds it"
    flags = ["-plaintext"] if plaintext else ["-cacert", ca] if ca else []
    header = ["-H", f"authorization: Bearer {token}"] if token else []
    data = ["-d", json.dumps(body)] if body is not None else []
    return subprocess.run([str(GRPCURL), "-connect-timeout", "10", "-max-time", "30", *flags, *header, *data,
                           address, *command], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def tokens(cluster) -> Tokens:
    return Tokens(cluster.settings)


@pytest.fixture(scope="module")
def product(cluster) -> str:
    product_id = add_product(cluster.settings, "FRONT-DOOR")
    wait_in_views(cluster, product_id)
    return product_id


def test_every_grpc_port_speaks_tls_only(cluster):
    ca = cluster.settings.grpc_tls_ca
    for part in cluster.services:
        trusted = grpcurl(part.address, HEALTH, ca=ca)
        assert trusted.returncode == 0 and '"status": "SERVING"' in trusted.stdout, (part.name, trusted.stderr)
        plain = grpcurl(part.address, HEALTH, plaintext=True)
        assert plain.returncode != 0 and "SERVING" not in plain.stdout, (part.name, plain.stdout)


def test_a_client_that_does_not_trust_the_stack_ca_is_refused(cluster, tmp_path):
    settings = cluster.settings
    order = cluster.orders[0].address
    untrusted = grpcurl(order, HEALTH)  # the system's CAs only
    assert untrusted.returncode != 0 and "certificate signed by unknown authority" in untrusted.stderr, untrusted.stderr
    assert grpcurl(order, HEALTH, ca=settings.grpc_tls_ca).returncode == 0
    # The Python client likewise, trusting a CA of another stack's.
    other = Settings(stack_dir=tmp_path, grpc_tls_ca=str(tls.tls_dir(tmp_path) / "ca.pem"))
    tls.ensure_grpc_certificate(other)  # a CA of its own, that never signed the cluster's certificate
    request = catalog_service_pb2.ListProductsRequest()
    token = Tokens(settings).user(new_user())
    with open_channel(cluster.catalogs[0].address, tls=other.grpc_tls) as channel:
        refusal = refused(catalog_service_pb2_grpc.CatalogServiceStub(channel).ListProducts, request, bearer(token))
    assert refusal.code() == grpc.StatusCode.UNAVAILABLE, refusal
    with open_channel(cluster.catalogs[0].address, tls=settings.grpc_tls) as channel:
        assert catalog_service_pb2_grpc.CatalogServiceStub(channel).ListProducts(request, timeout=10,
                                                                                 metadata=bearer(token)).products


def test_the_readme_s_grpcurl_lines_work_on_the_cluster(cluster, tokens, product):
    """CreateOrder on one Order instance, ListOrders on the other, over TLS with the user's token:
    the order is priced from the instance's own view of catalog.products (no call to a Catalog)."""
    ca, user = cluster.settings.grpc_tls_ca, new_user()
    listed = grpcurl(cluster.orders[0].address, "list", ca=ca)
    assert listed.returncode == 0 and "ordersync.order.v1.OrderService" in listed.stdout, listed.stderr
    body = {"user_id": user, "product_id": product, "qty": 1, "request_id": str(uuid.uuid4())}
    anonymous = grpcurl(cluster.orders[0].address, "ordersync.order.v1.OrderService/CreateOrder", body=body, ca=ca)
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr, anonymous.stderr
    created = grpcurl(cluster.orders[0].address, "ordersync.order.v1.OrderService/CreateOrder", body=body, ca=ca,
                      token=tokens.user(user))
    assert created.returncode == 0, created.stderr
    order_id = json.loads(created.stdout)["order"]["order_id"]  # grpcurl keeps the proto names

    def listed_orders():
        reply = grpcurl(cluster.orders[1].address, "ordersync.order.v1.OrderService/ListOrders",
                        body={"user_id": user}, ca=ca, token=tokens.user(user))
        assert reply.returncode == 0, reply.stderr
        return [o["order_id"] for o in json.loads(reply.stdout).get("orders", [])]
    assert wait_until(listed_orders, timeout=120, what="the order in ListOrders") == [order_id]


@pytest.fixture(scope="module")
def stubs(cluster):
    """Stubs over TLS that send no token of their own: each call says its metadata."""
    channels = [open_channel(part.address, tls=cluster.settings.grpc_tls) for part in [*cluster.orders, cluster.catalogs[0]]]
    yield ([order_service_pb2_grpc.OrderServiceStub(c) for c in channels[:-1]],
           catalog_service_pb2_grpc.CatalogServiceStub(channels[-1]))
    for channel in channels:
        channel.close()


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_call_without_a_valid_token_is_unauthenticated(cluster, stubs, tokens, product, case):
    orders, catalog = stubs
    user = new_user()
    metadata, words = bad_metadata(case, user, cluster.settings, tokens)
    refused_everywhere_but_with_the_right_token(orders, catalog, metadata, words, user, tokens, product)


def test_another_user_s_orders_are_refused(stubs, tokens, product):
    orders, _ = stubs
    alice, bob = new_user(), new_user()
    refusal = refused(orders[0].CreateOrder, create_request(alice, product), bearer(tokens.user(bob)))
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED, refusal
    order = placed_and_readable(orders, tokens, alice, product, timeout=120)
    theirs = refused(orders[1].GetOrder, order_service_pb2.GetOrderRequest(order_id=order.order_id),
                     bearer(tokens.user(bob)))
    assert theirs.code() == grpc.StatusCode.NOT_FOUND, theirs
    listing = refused(orders[0].ListOrders, order_service_pb2.ListOrdersRequest(user_id=alice), bearer(tokens.user(bob)))
    assert listing.code() == grpc.StatusCode.PERMISSION_DENIED, listing
    mine = orders[0].ListOrders(order_service_pb2.ListOrdersRequest(user_id=alice), timeout=10,
                                metadata=bearer(tokens.user(alice))).orders
    assert [o.order_id for o in mine] == [order.order_id]
    support = orders[1].ListOrders(order_service_pb2.ListOrdersRequest(user_id=alice), timeout=10,
                                   metadata=bearer(tokens.operator())).orders
    assert [o.order_id for o in support] == [order.order_id]
