"""The `ordersync` command line (ops.cli) against an in-process server of scripted answers
(no stack): its usage errors, its exit codes, its tokens, and its retries, which keep one
request_id and stay within --deadline."""

import json
import time
import uuid

import grpc
import pytest

from ops.cli import main
from ops.cli.calls import ATTEMPTS, Caller, CallFailed, exit_code
from ordersync.catalog.v1 import catalog_service_pb2_grpc
from ordersync.config import PLAINTEXT, Settings, private_key, public_key
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.grpc_server import build_server
from stack import keys
from stack.topology import free_port
from tests.doubles import Scripted

RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One Scripted servicer behind two servers that check tokens of a key pair of their own (an
    Order port and a Catalog port, as the settings have them); (servicer, Settings)."""
    settings = Settings(stack_dir=tmp_path_factory.mktemp("stack"), order_ports=(free_port(),), catalog_port=free_port())
    keys.ensure_key_pair(settings)
    servicer = Scripted()
    verifier = auth.Verifier(public_key(settings.auth_public_key))

    def register(server):
        order_service_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
        catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)
    names = ["ordersync.order.v1.OrderService", "ordersync.catalog.v1.CatalogService"]
    servers = [build_server(register, names, address, verifier=verifier)[0]
               for address in (settings.order_addresses[0], settings.catalog_addresses[0])]
    yield servicer, settings
    for server in servers:
        server.stop(0)


@pytest.fixture
def fake(served):
    servicer, _ = served
    servicer.failures.clear()
    servicer.calls.clear()
    return servicer


@pytest.fixture
def env(served) -> dict[str, str]:
    """The environment of `ordersync` run on the scripted servers (and no ORDERSYNC_TOKEN)."""
    return served[1].to_env()


@pytest.fixture
def ordersync(capsys):
    """run(env, *argv) -> (exit code, stdout, stderr) of ops.cli.main."""
    def run(env, *argv):
        try:
            code = main(list(argv), env)
        except SystemExit as exit:
            code = exit.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


CREATE = ["order", "create", "--product", "CATALOG-001", "--qty", "2", "--user", "alice"]


# --- usage: exit code 2 ----------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["order", "create", "--product", "CATALOG-001", "--qty", "0"], "--qty: '0': a whole number, at least 1"),
    (["order", "create", "--product", "CATALOG-001", "--qty", "-3"], "--qty: '-3'"),
    (["order", "create", "--product", "CATALOG-001", "--qty", "two"], "--qty: 'two'"),
    (["order", "create", "--qty", "1"], "the following arguments are required: --product"),
    (["order", "create", "--product", "CATALOG-001", "--qty", "1", "--request-id", "42"], "--request-id: '42': a UUID"),
    (["--deadline", "0", "products"], "--deadline: '0': a number of seconds greater than 0"),
    (["--deadline", "-1", "products"], "--deadline: '-1'"),
    (["--deadline", "nan", "products"], "--deadline: 'nan'"),
    (["--deadline", "soon", "products"], "--deadline: 'soon'"),
    (["--target", "localhost", "products"], "--target: 'localhost': host:port"),
    (["order", "list", "--all", "--page-token", "x"], "not allowed with argument --all"),
    (["order", "list", "--page-size", "0"], "--page-size: '0'"),
    (["order", "delete", "x"], "invalid choice: 'delete'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_obvious_mistakes_are_usage_errors(ordersync, env, fake, argv, words):
    code, out, err = ordersync(env, "--user", "alice", *argv)
    assert (code, out) == (2, "")
    assert words in err and "Traceback" not in err
    assert fake.calls == []


def test_a_command_without_a_token_or_a_user_is_a_usage_error(ordersync, env, fake):
    code, _, err = ordersync(env, "products")
    assert code == 2 and "no token: give --token TOKEN (or ORDERSYNC_TOKEN), or --user USER" in err
    assert ordersync(env, "--user", "alice", "products")[0] == 0  # positive control
    code, _, err = ordersync(env, "--user", "not an id", "products")
    assert code == 2 and "may only contain letters, digits" in err


def test_a_bad_setting_exits_2_naming_it(ordersync, env, fake, tmp_path):
    code, _, err = ordersync({**env, "ORDER_PORTS": "abc"}, *CREATE)
    assert code == 2 and err.startswith("bad setting: ORDER_PORTS='abc'")
    code, _, err = ordersync({**env, "AUTH_PRIVATE_KEY": str(tmp_path / "none.pem")}, *CREATE)
    assert code == 2 and err.startswith("bad setting: AUTH_PRIVATE_KEY=") and "Traceback" not in err
    assert fake.calls == []
    assert ordersync(env, *CREATE)[0] == 0  # positive control


# --- exit codes ------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
def test_the_exit_code_of_each_status(code):
    assert exit_code(code) == (3 if code in RETRIED else 1)


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION,
                                  grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.INTERNAL])
def test_a_refusal_exits_1_with_one_line_and_is_not_retried(ordersync, env, fake, code):
    fake.failures.append(code)
    status, out, err = ordersync(env, *CREATE)
    assert (status, out) == (1, "")
    assert err == f"ordersync: {code.name}: scripted CreateOrder refusal\n"
    assert len(fake.requests("CreateOrder")) == 1


def test_unavailable_after_every_attempt_exits_3_naming_the_request_id(ordersync, env, fake):
    fake.failures.extend([grpc.StatusCode.UNAVAILABLE] * ATTEMPTS)
    code, out, err = ordersync(env, *CREATE)
    requests = fake.requests("CreateOrder")
    assert (code, out, len(requests)) == (3, "", ATTEMPTS)
    assert err.startswith("ordersync: UNAVAILABLE: scripted CreateOrder refusal") and err.count("\n") == 1
    assert f"retry with --request-id {requests[0].request_id}" in err


def test_nothing_listening_exits_3_within_the_deadline(ordersync, env):
    started = time.monotonic()
    code, _, err = ordersync(env, "--target", f"127.0.0.1:{free_port()}", "--deadline", "1", *CREATE)
    assert code == 3 and err.startswith("ordersync: UNAVAILABLE: ")
    assert time.monotonic() - started < 1.5


# --- the request_id and the retries ----------------------------------------------------------

def test_the_retries_of_an_order_keep_its_request_id(ordersync, env, fake):
    fake.failures.extend([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
    code, out, _ = ordersync(env, *CREATE)
    request_ids = {r.request_id for r in fake.requests("CreateOrder")}
    assert code == 0 and len(fake.requests("CreateOrder")) == 3 and len(request_ids) == 1
    (request_id,) = request_ids
    assert str(uuid.UUID(request_id)) == request_id  # a UUID, 8-4-4-4-12
    assert f"order_id     order-{request_id}\n" in out


def test_each_command_has_a_request_id_of_its_own_unless_given(ordersync, env, fake):
    for _ in range(2):
        assert ordersync(env, *CREATE)[0] == 0
    given = str(uuid.uuid4())
    for _ in range(2):
        assert ordersync(env, *CREATE, "--request-id", given)[0] == 0
    request_ids = [r.request_id for r in fake.requests("CreateOrder")]
    assert request_ids[0] != request_ids[1] and request_ids[2:] == [given, given]


def test_unavailable_moves_on_to_the_next_order_instance(ordersync, served, fake):
    _, settings = served
    env = {**settings.to_env(), "ORDER_PORTS": f"{free_port()},{settings.order_ports[0]}"}
    code, out, _ = ordersync(env, *CREATE)
    assert code == 0 and "product_id   CATALOG-001" in out
    assert len(fake.requests("CreateOrder")) == 1


class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "down"


class Clock:
    """time.monotonic and time.sleep of a Caller: sleeping moves the clock, as does each call."""

    def __init__(self, call_s: float):
        self.now, self.call_s, self.timeouts = 0.0, call_s, []

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def stub(self, channel):
        def call(request, timeout):
            self.timeouts.append(timeout)
            self.now += self.call_s
            raise Unavailable()
        return type("Stub", (), {"GetOrder": staticmethod(call)})()


def test_the_attempts_share_the_deadline_and_none_starts_past_it():
    clock = Clock(call_s=0.0)
    caller = Caller(clock.stub, ["127.0.0.1:1"], "token", PLAINTEXT, 10.0, clock=lambda: clock.now, sleep=clock.sleep)
    with pytest.raises(CallFailed):
        caller.call("GetOrder", order_service_pb2.GetOrderRequest(order_id="x"))
    # 10 s over 4 attempts, each getting its share of what is left after the pauses (0.2, 0.4, 0.8).
    assert clock.timeouts == pytest.approx([2.5, 9.8 / 3, 9.4 / 2, 8.6])
    slow = Clock(call_s=1.4)  # a call that took 1.4 s: a pause of 0.2 s would end past the 1.5 s
    caller = Caller(slow.stub, ["127.0.0.1:1"], "token", PLAINTEXT, 1.5, clock=lambda: slow.now, sleep=slow.sleep)
    with pytest.raises(CallFailed):
        caller.call("GetOrder", order_service_pb2.GetOrderRequest(order_id="x"))
    assert len(slow.timeouts) == 1
    caller.close()


# --- tokens ----------------------------------------------------------------------------------

def test_the_token_minted_acts_as_the_user_or_the_role_given(ordersync, env, fake):
    assert ordersync(env, *CREATE)[0] == 0
    assert ordersync(env, "--user", "ops", "--role", "operator", "order", "list", "--user", "alice")[0] == 0
    (_, created, creator), (_, listed, lister) = fake.calls
    assert creator == auth.Identity("alice", auth.USER) and created.user_id == "alice"
    assert lister == auth.Identity("ops", auth.OPERATOR) and listed.user_id == "alice"


def test_a_token_given_is_sent_as_it_is_the_option_before_the_environment(ordersync, env, served, fake):
    key = private_key(served[1].auth_private_key)
    carol, dave = (auth.mint(key, name, auth.USER, 60) for name in ("carol", "dave"))
    assert ordersync({**env, "ORDERSYNC_TOKEN": dave}, "order", "get", "o1")[0] == 0
    assert ordersync({**env, "ORDERSYNC_TOKEN": dave}, "--token", carol, "--user", "erin", "order", "get", "o1")[0] == 0
    assert [caller.subject for _, _, caller in fake.calls] == ["dave", "carol"]
    code, _, err = ordersync(env, "--token", "not-a-token", "order", "get", "o1")
    assert code == 1 and err.startswith("ordersync: UNAUTHENTICATED: the token is not a JWT")


# --- output ----------------------------------------------------------------------------------

def test_an_order_is_printed_a_field_a_line(ordersync, env, fake):
    code, out, _ = ordersync(env, "--user", "alice", "order", "get", "o1")
    assert code == 0
    assert out.splitlines() == ["order_id     o1", "user_id      alice", "product_id   CATALOG-001", "qty          2",
                                "unit_price   1500", "total_price  3000", "created_at   2026-05-28T20:26:40Z"]


def test_json_is_one_document_with_the_proto_s_field_names(ordersync, env, fake):
    code, out, _ = ordersync(env, "--json", *CREATE)
    created = json.loads(out)["order"]
    assert code == 0 and created["product_id"] == "CATALOG-001" and created["total_price"] == 3000
    assert created["created_at"] == "2026-05-28T20:26:40Z"
    code, out, _ = ordersync(env, "--json", "--user", "alice", "products")
    products = json.loads(out)["products"]
    assert code == 0 and [p["stock"] for p in products] == [100, 0]  # a stock of 0 is printed


def test_list_prints_a_page_or_with_all_every_page(ordersync, env, fake):
    code, out, _ = ordersync(env, "--user", "alice", "order", "list", "--page-size", "2")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ORDER_ID", "PRODUCT_ID", "QTY", "UNIT_PRICE", "TOTAL_PRICE", "CREATED_AT"]
    assert [line.split()[0] for line in lines[1:3]] == ["o1", "o2"] and lines[3] == "next_page_token: page-2"
    code, out, _ = ordersync(env, "--user", "alice", "order", "list", "--page-token", "page-2")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["o3"]
    code, out, _ = ordersync(env, "--json", "--user", "alice", "order", "list", "--all")
    listed = json.loads(out)
    assert code == 0 and [o["order_id"] for o in listed["orders"]] == ["o1", "o2", "o3"]
    assert listed["next_page_token"] == ""
    assert [(r.page_size, r.page_token) for r in fake.requests("ListOrders")] == [
        (2, ""), (0, "page-2"), (0, ""), (0, "page-2")]


def test_products_are_a_table(ordersync, env, fake):
    code, out, _ = ordersync(env, "--user", "alice", "products")
    assert code == 0 and out.splitlines() == ["PRODUCT_ID   PRODUCT_NAME  STOCK  UNIT_PRICE",
                                              "CATALOG-001  Berlin          100        1500",
                                              "CATALOG-002  Tokyo             0        1000"]
