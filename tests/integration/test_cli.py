"""The `ordersync` command line as a user runs it: the installed console script in a subprocess,
with the private stack's settings in its environment, its token minted with the stack's key
(--user). Each refusal beside its positive control."""

import json
import uuid

import pytest

from stack.topology import free_port
from tests.support import cli
from tests.support.cli import ordersync
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def cli_env(stack) -> dict[str, str]:
    return cli.cli_env(stack)


def new_user() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def printed_order(text: str) -> dict[str, str]:
    """The fields of an order as `ordersync order create/get` prints them, a field a line."""
    return dict(line.split(maxsplit=1) for line in text.splitlines())


def readable(env: dict[str, str], user_id: str, order_id: str) -> dict:
    """The order as its owner reads it with `order get --json`, once the sink has written it."""
    def got():
        result = ordersync(env, "--json", "--user", user_id, "order", "get", order_id)
        if result.returncode == 0:
            return json.loads(result.stdout)["order"]
        assert result.returncode == 1 and "ordersync: NOT_FOUND:" in result.stderr, result.stderr
        return None
    return wait_until(got, timeout=90, what=f"order {order_id} to be readable with `ordersync order get`")


def test_create_prints_the_order_and_get_and_list_find_it(cli_env):
    user_id = new_user()
    created = ordersync(cli_env, "--user", user_id, "order", "create", "--product", "CATALOG-001", "--qty", "2")
    assert created.returncode == 0, created.stderr
    first = printed_order(created.stdout)
    assert (first["user_id"], first["product_id"], first["qty"], first["unit_price"], first["total_price"]) == (
        user_id, "CATALOG-001", "2", "1500", "3000")
    assert str(uuid.UUID(first["order_id"])) == first["order_id"] and first["created_at"].endswith("Z")

    as_json = ordersync(cli_env, "--json", "order", "create", "--product", "CATALOG-002", "--qty", "1", "--user", user_id)
    assert as_json.returncode == 0, as_json.stderr
    second = json.loads(as_json.stdout)["order"]
    assert (second["user_id"], second["product_id"], second["qty"], second["total_price"]) == (user_id, "CATALOG-002", 1, 1000)

    assert readable(cli_env, user_id, second["order_id"]) == second
    readable(cli_env, user_id, first["order_id"])
    assert printed_order(ordersync(cli_env, "--user", user_id, "order", "get", first["order_id"]).stdout) == first

    def listed():
        result = ordersync(cli_env, "--json", "--user", user_id, "order", "list", "--all")
        assert result.returncode == 0, result.stderr
        orders = json.loads(result.stdout)["orders"]
        return orders if len(orders) == 2 else None
    orders = wait_until(listed, timeout=90, what="both orders in `ordersync order list --all`")
    assert {o["order_id"] for o in orders} == {first["order_id"], second["order_id"]}
    page = ordersync(cli_env, "--user", user_id, "order", "list", "--page-size", "1")
    assert page.returncode == 0 and page.stdout.splitlines()[-1].startswith("next_page_token: "), page.stdout


def test_the_same_request_id_is_the_same_order(cli_env):
    user_id, request_id = new_user(), str(uuid.uuid4())
    command = ["--json", "--user", user_id, "order", "create", "--product", "CATALOG-003", "--qty", "1",
               "--request-id", request_id]
    first, again = (ordersync(cli_env, *command) for _ in range(2))
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    assert json.loads(first.stdout) == json.loads(again.stdout)
    other = ordersync(cli_env, *command[:-1], str(uuid.uuid4()))
    assert json.loads(other.stdout)["order"]["order_id"] != json.loads(first.stdout)["order"]["order_id"]


def test_products_lists_the_catalog(cli_env):
    user_id = new_user()
    text = ordersync(cli_env, "--user", user_id, "products")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split() == ["PRODUCT_ID", "PRODUCT_NAME", "STOCK", "UNIT_PRICE"]
    assert any(line.startswith("CATALOG-001 ") for line in text.stdout.splitlines())
    as_json = ordersync(cli_env, "--json", "--user", user_id, "products")
    products = {p["product_id"]: p for p in json.loads(as_json.stdout)["products"]}
    assert products["CATALOG-001"]["product_name"] == "Berlin" and products["CATALOG-001"]["unit_price"] == 1500


def test_a_refusal_exits_1_with_its_code_on_stderr(cli_env):
    user_id = new_user()
    create = ["--user", user_id, "order", "create", "--product"]
    placed = ordersync(cli_env, *create, "CATALOG-001", "--qty", "1")
    assert placed.returncode == 0, placed.stderr  # positive control: the same command, an order it can take
    too_many = ordersync(cli_env, *create, "CATALOG-001", "--qty", "10000")
    assert (too_many.returncode, too_many.stdout) == (1, "")
    assert too_many.stderr.startswith("ordersync: FAILED_PRECONDITION: product CATALOG-001 has ")
    assert too_many.stderr.count("\n") == 1
    unknown = ordersync(cli_env, *create, "CATALOG-999", "--qty", "1")
    assert unknown.returncode == 1 and unknown.stderr.startswith("ordersync: NOT_FOUND: "), unknown.stderr


def test_nothing_listening_exits_3(cli_env, stack):
    user_id = new_user()
    command = ["--deadline", "2", "--user", user_id, "order", "create", "--product", "CATALOG-002", "--qty", "1"]
    nobody = ordersync(cli_env, "--target", f"127.0.0.1:{free_port()}", *command)
    assert (nobody.returncode, nobody.stdout) == (3, ""), nobody.stderr
    assert nobody.stderr.startswith("ordersync: UNAVAILABLE: ") and "retry with --request-id " in nobody.stderr
    served = ordersync(cli_env, "--target", stack.order_addresses[1], *command)
    assert served.returncode == 0, served.stderr  # positive control: the same command on an Order instance


def test_one_user_cannot_get_another_s_order(cli_env):
    alice, bob = new_user(), new_user()
    created = ordersync(cli_env, "--json", "--user", alice, "order", "create", "--product", "CATALOG-003", "--qty", "1")
    assert created.returncode == 0, created.stderr
    order = json.loads(created.stdout)["order"]
    assert readable(cli_env, alice, order["order_id"]) == order  # positive control: its owner reads it
    theirs = ordersync(cli_env, "--user", bob, "order", "get", order["order_id"])
    assert (theirs.returncode, theirs.stdout) == (1, "")
    assert theirs.stderr.startswith(f"ordersync: NOT_FOUND: order {order['order_id']} not found")
