"""`make run`: start the gate, one Catalog and two Order instances, place orders alternately on
both with the `ordersync` command line (a token of the demo's user), then show the single shared orders table in MariaDB and the
catalog stock before and after; show that the user's token lists the user's own orders and not
another user's (PERMISSION_DENIED); change a price in catalog_db.products with the Catalog process
stopped and place the next order on both instances at the new price (their product views follow
catalog.products, the source connector's stream); last, publish the course's hand-written
envelope as it is and show the gate refusing it. Last, the journey (`ordersync trace`) of an order
in sync and of the refused envelope, and where Zipkin's traces and Prometheus's alerts are."""

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import grpc
import sqlalchemy as sa
from confluent_kafka import Producer

from ops.dead_letters import read_dead_letters
from ops.metrics import view_read_past
from order_svc.products import product_view
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.config import ROOT, Settings, exits_on_bad_setting, private_key
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.channels import Bearer, open_channel
from stack.topology import Topology

ORDERS = [("CATALOG-001", 5), ("CATALOG-002", 3), ("CATALOG-001", 2), ("CATALOG-003", 4), ("CATALOG-002", 1)]
COURSE_ENVELOPE = Path(__file__).resolve().parent / "course-envelope.json"
ORDERSYNC = Path(sys.executable).parent / "ordersync"  # the command-line client, beside this Python


def ordersync(*args: str) -> subprocess.CompletedProcess:
    """The command line as a user runs it (the settings are this process's environment)."""
    return subprocess.run([str(ORDERSYNC), *args], capture_output=True, text=True, timeout=120)


def stock_table(catalog) -> dict[str, int]:
    reply = catalog.ListProducts(catalog_service_pb2.ListProductsRequest(), timeout=5)
    return {p.product_id: p.stock for p in reply.products}


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
    return result


@exits_on_bad_setting
def main() -> int:
    settings = Settings.from_env()
    print("Starting the services:")
    topology = Topology(settings)
    topology.services_up()
    user_id = f"demo-{uuid.uuid4().hex[:8]}"
    # What `ordersync-token --user <user_id>` prints: a token of the demo's user, signed with the stack's key.
    bearer = Bearer.fixed(auth.mint(private_key(settings.auth_private_key), user_id, auth.USER, 600))
    catalog_address = topology.catalogs[0].address
    catalog = catalog_service_pb2_grpc.CatalogServiceStub(open_channel(catalog_address, bearer, tls=settings.grpc_tls))
    order_stubs = [(svc, svc.address,
                    order_service_pb2_grpc.OrderServiceStub(open_channel(svc.address, bearer, tls=settings.grpc_tls)))
                   for svc in topology.orders]

    before = stock_table(catalog)
    print(f"\nPlacing {len(ORDERS)} orders for {user_id} with a token of {user_id}, alternating between the "
          "Order instances:")
    print(f"  (each one: .venv/bin/ordersync --user {user_id} --target ADDRESS order create --product P --qty N)")
    placed = []
    for i, (product_id, qty) in enumerate(ORDERS):
        svc, address, _stub = order_stubs[i % len(order_stubs)]
        result = ordersync("--json", "--user", user_id, "--target", address, "order", "create",
                           "--product", product_id, "--qty", str(qty))
        if result.returncode == 1 and "FAILED_PRECONDITION" in result.stderr:
            # After many demo runs the stock runs out: that is the rule working, not a failure.
            print(f"  via {svc.name} ({address}): refused, {result.stderr.strip()}")
            continue
        if result.returncode != 0:
            raise RuntimeError(f"ordersync order create failed (exit {result.returncode}): {result.stderr.strip()}")
        order = order_service_pb2.Order(**{k: v for k, v in json.loads(result.stdout)["order"].items()
                                           if k != "created_at"})
        placed.append(order)
        print(f"  via {svc.name} ({address}): order {order.order_id}  {qty} x {product_id} = {order.total_price}")

    engine = sa.create_engine(settings.mariadb_url(settings.orders_db))
    query = sa.text("SELECT order_id, user_id, product_id, qty, unit_price, total_price, created_at "
                    f"FROM {settings.orders_table} WHERE user_id = :u ORDER BY created_at")
    rows = wait_for(lambda: _rows_if_complete(engine, query, user_id, len(placed)), 60,
                    "the sink connector to write the orders to MariaDB")
    print(f"\nThe one shared MariaDB table {engine.url.database}.{settings.orders_table}, written by the JDBC sink connector:")
    print(f"  {'order_id':36}  {'user_id':13}  {'product_id':11}  qty  unit_price  total_price  created_at")
    for r in rows:
        print(f"  {r.order_id:36}  {r.user_id:13}  {r.product_id:11}  {r.qty:3}  {r.unit_price:10}  "
              f"{r.total_price:11}  {r.created_at}")

    ordered: dict[str, int] = {}
    for order in placed:
        ordered[order.product_id] = ordered.get(order.product_id, 0) + order.qty
    expected = {p: s - ordered.get(p, 0) for p, s in before.items()}
    after = wait_for(lambda: (s := stock_table(catalog)) == expected and s, 60,
                     "the Catalog service to apply the order events to the stock")
    print(f"\nCatalog stock ({settings.catalog_db}), lowered once per order event:")
    print(f"  {'product_id':11}  before  ordered  after")
    for product_id in sorted(before):
        print(f"  {product_id:11}  {before[product_id]:6}  {ordered.get(product_id, 0):7}  {after[product_id]:5}")

    show_who_may_read(order_stubs[0][2], user_id, len(placed))
    show_a_price_change(settings, topology, order_stubs, user_id)
    refused_key = show_a_refusal(settings)
    if placed:
        show_journey(f"The journey of order {placed[0].order_id}", placed[0].order_id)
    show_journey(f"The journey of the refused envelope (key {refused_key})", refused_key)

    o = order_stubs[0][1]
    token = ".venv/bin/ordersync-token --user"
    print(f"""
Traces, one per order: Zipkin's UI at {settings.zipkin_url}/zipkin/ (search by the tag ordersync.order_id=ORDER_ID)
Metrics and alerts: Prometheus at {settings.prometheus_url}/alerts (its targets: {settings.prometheus_url}/targets)

The services keep running. Try them with the command line (`.venv/bin/ordersync --help`):
  .venv/bin/ordersync --user alice order create --product CATALOG-003 --qty 1
  .venv/bin/ordersync --user {user_id} order list
  .venv/bin/ordersync --user alice products
  .venv/bin/ordersync trace ORDER_ID          (make trace ORDER=ORDER_ID)
or with grpcurl (built by `make setup` into .stack/bin); every call but
health and reflection (`list`, `describe`) needs a token, which `{token} NAME` (or `make token USER=NAME`) prints:
  .stack/bin/grpcurl -plaintext {o} list
  .stack/bin/grpcurl -plaintext -H "authorization: Bearer $({token} {user_id})" \\
      -d '{{"user_id": "{user_id}"}}' {o} ordersync.order.v1.OrderService/ListOrders
  .stack/bin/grpcurl -plaintext -H "authorization: Bearer $({token} alice)" \\
      -d '{{"user_id": "alice", "product_id": "CATALOG-003", "qty": 1, "request_id": "{uuid.uuid4()}"}}' \\
      {o} ordersync.order.v1.OrderService/CreateOrder
  .stack/bin/grpcurl -plaintext -H "authorization: Bearer $({token} alice)" \\
      {catalog_address} ordersync.catalog.v1.CatalogService/ListProducts
Stop the services with `make services-down`, the stack with `make stack-down`.""")
    return 0


def show_who_may_read(orders, user_id: str, placed: int) -> None:
    """The user's token lists the user's own orders, and is refused another user's."""
    mine = orders.ListOrders(order_service_pb2.ListOrdersRequest(user_id=user_id), timeout=10).orders
    print(f"\nWho may read what: ListOrders of {user_id} with {user_id}'s token: {len(mine)} orders "
          f"(placed {placed})")
    other = "alice"
    try:
        orders.ListOrders(order_service_pb2.ListOrdersRequest(user_id=other), timeout=10)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.PERMISSION_DENIED:
            raise
        print(f"  ListOrders of {other} with {user_id}'s token: refused, {e.code().name}: {e.details()}")
        return
    raise RuntimeError(f"a token of {user_id} listed the orders of {other}: authorization is broken")


def show_a_price_change(settings: Settings, topology: Topology, order_stubs, user_id: str,
                        product_id: str = "CATALOG-003") -> None:
    """With the Catalog process stopped, raise a product's price in its table; once the change is
    on catalog.products and each Order instance's view has read past it, one order on each
    instance carries the new price. Then the old price is put back and the Catalog started."""
    catalog_part = topology.catalogs[0]
    topology.supervisor.stop(catalog_part, grace=20)
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    price_of = sa.text("SELECT unit_price FROM products WHERE product_id = :p")
    set_price = sa.text("UPDATE products SET unit_price = :u WHERE product_id = :p")
    with engine.begin() as conn:
        old: int = conn.execute(price_of, {"p": product_id}).scalar_one()
        conn.execute(set_price, {"p": product_id, "u": old + 100})
    changed_at = time.monotonic()
    print(f"\nThe Catalog process stopped; in {settings.catalog_db}.products the price of {product_id} "
          f"raised from {old} to {old + 100}:")
    # A view of catalog.products like each Order instance's: once it has the new price, so does the topic.
    view, stop = product_view(settings.kafka_client()), threading.Event()
    following = threading.Thread(target=view.run, args=(stop,), daemon=True)
    following.start()
    try:
        wait_for(lambda: (p := view.get(product_id)) is not None and p.unit_price == old + 100, 60,
                 f"the new price of {product_id} on catalog.products")
    finally:
        stop.set()
        following.join(10)
        view.close()
    on_topic = time.monotonic()
    print(f"  on catalog.products (the source connector) {on_topic - changed_at:.1f}s after the UPDATE")
    for svc, address, stub in order_stubs:
        # The instance's view held everything of the topic at a moment after the change was on it.
        wait_for(lambda svc=svc: view_read_past(svc, on_topic), 60, f"the product view of {svc.name}")
        order = stub.CreateOrder(order_service_pb2.CreateOrderRequest(
            user_id=user_id, product_id=product_id, qty=1, request_id=str(uuid.uuid4())), timeout=15).order
        print(f"  next order via {svc.name} ({address}): {order.qty} x {product_id} at {order.unit_price} "
              f"(placed {time.monotonic() - changed_at:.1f}s after the UPDATE, once the view said it had read past it)")
        if order.unit_price != old + 100:
            raise RuntimeError(f"{svc.name} priced {product_id} at {order.unit_price} after its view read the "
                               f"new price {old + 100}: the product view is broken")
    with engine.begin() as conn:
        conn.execute(set_price, {"p": product_id, "u": old})
    engine.dispose()
    topology.supervisor.ensure_up(catalog_part, timeout=60)
    print(f"  price put back to {old}, the Catalog started again (it lowers the stock for these orders)")


def show_journey(title: str, order_id: str) -> None:
    """What `ordersync trace` says of it, once it is in sync or refused."""
    result = ordersync("trace", order_id, "--wait", "60")
    print(f"\n{title}, as `.venv/bin/ordersync trace {order_id}` tells it (exit {result.returncode}):")
    print("\n".join(f"  {line}" for line in (result.stdout + result.stderr).strip().splitlines()))


def show_a_refusal(settings: Settings) -> str:
    """The course's envelope (its "type": "String", no created_at), published to the orders topic
    as a hand-written producer would: the gate refuses it, with the reason, once."""
    key = f"course-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings.kafka_client(acks="all"))
    producer.produce(settings.orders_topic, key=key, value=COURSE_ENVELOPE.read_bytes())
    if producer.flush(15):
        raise TimeoutError(f"the course's envelope was not acknowledged by {settings.orders_topic}")
    print(f"\nThe course's hand-written envelope, published to {settings.orders_topic} as it is (key {key}):")
    letter = wait_for(lambda: next((d for d in read_dead_letters(settings.kafka_client(), settings.rejected_topic)
                                    if d.key == key.encode()), None), 60, "the gate to decide on it")
    print(f"  refused by the gate into {settings.rejected_topic} ({letter.position}): {letter.error_class}: "
          f"{letter.error_message}")
    print(f"  neither the table nor the stock got it; `make doctor FILE={COURSE_ENVELOPE.relative_to(ROOT)}` "
          "says what to fix")
    return key


def _rows_if_complete(engine, query, user_id: str, count: int):
    try:
        with engine.connect() as conn:
            rows = conn.execute(query, {"u": user_id}).all()
    except sa.exc.ProgrammingError:  # the connector has not created the table yet
        return None
    return rows if len(rows) >= count else None


if __name__ == "__main__":
    sys.exit(main())
