"""Drive the running services with the real grpcurl binary, through server reflection only (public:
no token), the calls with a token as the README's lines send it (-H "authorization: Bearer ...")."""

import json
import subprocess
import uuid
from pathlib import Path

from tests.support.waiting import wait_until

GRPCURL = Path(__file__).resolve().parents[2] / ".stack" / "bin" / "grpcurl"


def grpcurl(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    assert GRPCURL.exists(), "grpcurl is missing: `make setup` builds it"
    header = ["-H", f"authorization: Bearer {token}"] if token else []
    return subprocess.run([str(GRPCURL), "-plaintext", *header, *args], capture_output=True, text=True, timeout=30)


def test_reflection_lists_the_services(services):
    for svc, expected in [(services.orders[0], "ordersync.order.v1.OrderService"),
                          (services.catalog, "ordersync.catalog.v1.CatalogService")]:
        result = grpcurl(svc.address, "list")
        assert result.returncode == 0, result.stderr
        listed = set(result.stdout.split())
        assert {expected, "grpc.health.v1.Health"} <= listed


def test_describe_shows_the_documented_contract(services):
    result = grpcurl(services.orders[0].address, "describe", "ordersync.order.v1.CreateOrderRequest")
    assert result.returncode == 0, result.stderr
    assert "string request_id = 4;" in result.stdout


def test_create_an_order_and_read_it_back(services, tokens):
    address = services.orders[1].address
    user_id = f"grpcurl-{uuid.uuid4().hex[:8]}"
    token = tokens.user(user_id)
    body = json.dumps({"user_id": user_id, "product_id": "CATALOG-002", "qty": 2, "request_id": str(uuid.uuid4())})
    created = grpcurl("-d", body, address, "ordersync.order.v1.OrderService/CreateOrder", token=token)
    assert created.returncode == 0, created.stderr
    order = json.loads(created.stdout)["order"]
    assert (order["user_id"], order["product_id"], order["qty"], order["total_price"]) == (user_id, "CATALOG-002", 2, 2000)

    def read_back():
        got = grpcurl("-d", json.dumps({"order_id": order["order_id"]}), address,
                      "ordersync.order.v1.OrderService/GetOrder", token=token)
        return json.loads(got.stdout)["order"] if got.returncode == 0 else None
    assert wait_until(read_back, timeout=60, what="the order to be readable") == order


def test_bad_input_through_grpcurl_names_the_problem(services, tokens):
    body = json.dumps({"user_id": "someone", "product_id": "CATALOG-001", "qty": 0, "request_id": str(uuid.uuid4())})
    result = grpcurl("-d", body, services.orders[0].address, "ordersync.order.v1.OrderService/CreateOrder",
                     token=tokens.user("someone"))
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr and "qty must be at least 1" in result.stderr


def test_reflection_answers_as_v1_and_v1alpha_without_a_token(services):
    from grpc_reflection.v1alpha import reflection_pb2

    from ordersync.serving.channels import open_channel

    with open_channel(services.orders[0].address) as channel:
        for version in ("v1", "v1alpha"):
            call = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
            (reply,) = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
            names = {s.name for s in reply.list_services_response.service}
            assert "ordersync.order.v1.OrderService" in names, (version, names)


def test_the_readme_s_call_with_a_token_of_ordersync_token_and_without_one(services, stack):
    import os
    import sys

    made = subprocess.run([sys.executable, "-m", "ops.token", "--user", "alice"], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "STACK_DIR": str(stack.stack_dir)})
    assert made.returncode == 0, made.stderr
    body = json.dumps({"user_id": "alice"})
    without = grpcurl("-d", body, services.orders[0].address, "ordersync.order.v1.OrderService/ListOrders")
    assert without.returncode != 0
    assert "Unauthenticated" in without.stderr and "ordersync-token --user NAME" in without.stderr
    listed = grpcurl("-d", body, services.orders[0].address, "ordersync.order.v1.OrderService/ListOrders",
                     token=made.stdout.strip())
    assert listed.returncode == 0, listed.stderr
