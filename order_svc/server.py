"""OrderService: validate, check the product in this instance's product view, publish the event, answer after the ack."""

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from bus import tracing
from bus.producer import EventProducer, PublishError
from order_svc import access, config, metrics, products, rules
from order_svc.read_together import ReadTogether
from order_svc.store import OrderStore, StoreUnavailable
from ordersync.config import GrpcTls, exits_on_bad_setting, public_key
from ordersync.contract.event_rules import check_order_placed
from ordersync.order.v1 import order_event_pb2, order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving import tracing as process_tracing
from ordersync.serving.grpc_server import (
    MAX_WORKERS,
    build_server,
    health_reporter,
    run_in_background,
    serve_until_stopped,
    start_process,
)

log = logging.getLogger("order_svc")
tracer = trace.get_tracer("order_svc")

_RECENT_ORDERS = 10_000  # acknowledged orders remembered per instance, for retries
# Time kept back from the caller's deadline so that our answer still reaches the caller.
_DEADLINE_MARGIN_S = 0.2
class OrderService(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(self, settings: config.OrderSettings, product_view, producer: EventProducer, store: OrderStore,
                 order_metrics: metrics.OrderMetrics | None = None, clock=None, read_together: bool = True):
        """`product_view`: the products as this instance follows them (order_svc/products.py);
        `clock()`: the Timestamp of an order placed now (a test gives another); `read_together`:
        the idempotency reads of concurrent calls coalesced (order_svc/read_together.py), or one
        query each (bench/paired_orders.py idempotency compares them)."""
        self._settings = settings
        self._clock = clock or _now
        # Without metrics of its own (tests), it counts into a registry nobody reads.
        self._metrics = order_metrics or metrics.OrderMetrics(metrics.CollectorRegistry())
        self._products = product_view
        self._producer = producer
        self._store = store
        self._known = ReadTogether(store.get_many).get if read_together else store.get
        self._recent: OrderedDict[str, order_service_pb2.Order] = OrderedDict()
        self._recent_lock = threading.Lock()
        # One lock per order id: concurrent retries of one order publish once,
        # different orders publish in parallel.
        self._order_locks = KeyedLocks()
        self._table = _TableState()

    def CreateOrder(self, request, context):
        context = _StatusRecorder(context)
        with self._metrics.create_order_seconds.time():
            try:
                reply = self._create_order(request, context)
            except BaseException:
                # Not through context.abort(): gRPC answers UNKNOWN.
                self._metrics.create_order.labels((context.code or grpc.StatusCode.UNKNOWN).name).inc()
                raise
        self._metrics.create_order.labels(grpc.StatusCode.OK.name).inc()
        return reply

    def _create_order(self, request, context):
        user_id = _allowed(context, access.placing_for, request.user_id)
        try:
            user_id = rules.check_id("user_id", user_id)
            product_id = rules.check_id("product_id", request.product_id)
            qty = rules.check_qty(request.qty)
            request_id = rules.check_request_id(request.request_id)
        except rules.InvalidInput as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        order_id = rules.order_id_for(user_id, request_id)
        # The call's span (the gRPC instrumentation's) is found by the order it placed.
        trace.get_current_span().set_attributes({tracing.ORDER_ID: order_id, "ordersync.user_id": user_id,
                                                 "ordersync.request_id": request_id})
        with self._order_locks.hold(order_id):
            existing = self._known_order(order_id)
            if existing is not None:
                if (existing.product_id, existing.qty) != (product_id, qty):
                    context.abort(grpc.StatusCode.ALREADY_EXISTS,
                                  f"request_id {request_id} was already used for order {order_id} "
                                  f"({existing.qty} x {existing.product_id}); use a new request_id")
                log.debug("order %s: retry of request %s, returning the existing order", order_id, request_id)
                return order_service_pb2.CreateOrderResponse(order=existing)
            product = self._product(product_id, context)
            try:
                rules.check_stock(product_id, qty, product.stock)
                rules.check_unit_price(product_id, product.unit_price)
                total = rules.total_price(qty, product.unit_price)
            except (rules.NotEnoughStock, rules.NotOrderable) as e:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
            except rules.InvalidInput as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            order = order_service_pb2.Order(
                order_id=order_id, user_id=user_id, product_id=product_id, qty=qty,
                unit_price=product.unit_price, total_price=total, created_at=self._clock())
            self._publish(order, context)
            self._remember(order)
        # DEBUG: a line per order costs the front door more than it tells (the metrics count them).
        log.debug("order %s: placed by %s, %d x %s = %d", order_id, user_id, qty, product_id, total)
        return order_service_pb2.CreateOrderResponse(order=order)

    def GetOrder(self, request, context):
        caller = _allowed(context, access.reader)
        try:
            order_id = rules.check_id("order_id", request.order_id)
        except rules.InvalidInput as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        row = self._read(context, self._store.get, order_id)
        # Another user's order is answered as no order at all (order_svc/access.py says why).
        if row is None or not access.may_read(caller, row["user_id"]):
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"order {order_id} not found (a just-created order appears within seconds)")
        return order_service_pb2.GetOrderResponse(order=_order_from_row(row))

    def ListOrders(self, request, context):
        user_id = _allowed(context, access.listing_for, request.user_id)
        try:
            user_id = rules.check_id("user_id", user_id)
            size = rules.page_size(request.page_size)
            after = rules.decode_page_token(request.page_token) if request.page_token else None
        except rules.InvalidInput as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        # One row more than the page tells whether a next page exists.
        rows = self._read(context, self._store.list_for_user, user_id, size + 1, after)
        page = rows[:size]
        token = ""
        if len(rows) > size:
            token = rules.encode_page_token(page[-1]["created_at"], page[-1]["order_id"])
        return order_service_pb2.ListOrdersResponse(
            orders=[_order_from_row(r) for r in page], next_page_token=token)

    def _known_order(self, order_id: str):
        with self._recent_lock:
            if order_id in self._recent:
                return self._recent[order_id]
        try:
            row = self._try_read(self._known, order_id)
        except StoreUnavailable:
            # Place the order anyway: a retry that cannot be checked republishes the same event
            # under the same order id, which the sink's upsert and the Catalog's applied_orders
            # make harmless. Taking orders matters more than this check.
            return None
        return _order_from_row(row) if row else None

    def _read(self, context, query, *args):
        try:
            return self._try_read(query, *args)
        except StoreUnavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the shared orders table cannot be read right now; retry")

    def _try_read(self, query, *args):
        try:
            result = query(*args)
        except StoreUnavailable as e:
            self._table.readable(False, e)
            raise
        self._table.readable(True)
        return result

    def _remember(self, order) -> None:
        with self._recent_lock:
            self._recent[order.order_id] = order
            while len(self._recent) > _RECENT_ORDERS:
                self._recent.popitem(last=False)

    def _product(self, product_id: str, context):
        try:
            with tracer.start_as_current_span("product view lookup", attributes={"ordersync.product_id": product_id}):
                return products.lookup(self._products, product_id, self._settings.product_view_max_behind_s)
        except products.UnknownProduct as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except products.ViewBehind as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(e))

    def _publish(self, order, context) -> None:
        event = order_event_pb2.OrderPlaced(
            order_id=order.order_id, user_id=order.user_id, product_id=order.product_id, qty=order.qty,
            unit_price=order.unit_price, total_price=order.total_price, created_at=order.created_at)
        try:
            # The checks above should make this pass; a failure here (a wrong clock, say) would
            # otherwise only show as a dead-lettered event downstream.
            check_order_placed(event)
        except rules.InvalidInput as e:
            log.error("order %s: not published, it breaks the event rules: %s", order.order_id, e)
            context.abort(grpc.StatusCode.INTERNAL, f"order {order.order_id} was not placed: {e}")
        timeout, cut = self._wait(context, self._settings.publish_timeout_s,
                                  f"publishing order {order.order_id}")
        started = time.monotonic()
        try:
            self._producer.publish(event, timeout=timeout)
        except PublishError as e:
            self._metrics.publish_seconds.labels("failed").observe(time.monotonic() - started)
            log.warning("order %s: no acknowledgement (waited up to %.1fs): %s", order.order_id, timeout, e)
            # No acknowledgement is not a refusal: the event may still be delivered.
            timed_out = e.kafka_error is None
            code = grpc.StatusCode.DEADLINE_EXCEEDED if cut and timed_out else grpc.StatusCode.UNAVAILABLE
            context.abort(code, f"order {order.order_id} was not acknowledged by Kafka ({e}); it may still "
                                "arrive: retry with the same request_id, which cannot place it twice")
        self._metrics.publish_seconds.labels("acked").observe(time.monotonic() - started)

    @staticmethod
    def _wait(context, configured: float, what: str) -> tuple[float, bool]:
        """Seconds to wait for `what`, and whether the caller's deadline cut them short."""
        remaining = context.time_remaining()
        if remaining is None:
            return configured, False
        left = remaining - _DEADLINE_MARGIN_S
        if left <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"your deadline left no time for {what}; nothing was placed, "
                          "retry with a longer deadline and the same request_id")
        return min(configured, left), left < configured


def _allowed(context, rule, *args):
    """rule(the caller, *args) (order_svc/access.py), or PERMISSION_DENIED with the rule's reason."""
    try:
        return rule(auth.caller(context), *args)
    except access.Denied as e:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(e))


class _StatusRecorder:
    """A servicer context that remembers the code it aborted with (for the metrics)."""

    def __init__(self, context) -> None:
        self._context = context
        self.code: grpc.StatusCode | None = None

    def abort(self, code, details):
        self.code = code
        self._context.abort(code, details)

    def __getattr__(self, name):
        return getattr(self._context, name)


class _TableState:
    """Logs when the orders table stops or starts being readable: one line per change, not per call."""

    def __init__(self):
        self._readable = True
        self._lock = threading.Lock()

    def readable(self, ok: bool, error=None) -> None:
        with self._lock:
            changed, self._readable = ok != self._readable, ok
        if changed and not ok:
            log.warning("orders table not readable (%s): GetOrder/ListOrders answer UNAVAILABLE, CreateOrder "
                        "places orders without the cross-instance retry check", error)
        elif changed:
            log.info("orders table readable again")


def _now() -> Timestamp:
    ts = Timestamp()
    # Millisecond precision: what the Connect Timestamp type and the orders table keep.
    ts.FromMilliseconds(int(datetime.now(timezone.utc).timestamp() * 1000))
    return ts


def _order_from_row(row: dict):
    created_at = Timestamp()
    if row.get("created_at") is not None:
        created_at.FromDatetime(row["created_at"])
    return order_service_pb2.Order(
        order_id=row["order_id"], user_id=row["user_id"], product_id=row["product_id"],
        qty=row["qty"], unit_price=row["unit_price"], total_price=row["total_price"],
        created_at=created_at)


class KeyedLocks:
    """One lock per key, alive while someone holds or waits for it.

    Concurrent retries of one order publish once; other orders never wait for it. (Striped
    locks made two different orders that shared a stripe wait for each other's product
    lookup and publish.)"""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # key -> [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, key: str):
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


@exits_on_bad_setting
def serve(verifier: auth.Verifier | None = None, server_tls: GrpcTls | None = None,
          publish_through: Callable[[EventProducer], EventProducer] | None = None, read_together: bool = True,
          producer_config: dict | None = None) -> None:
    """The Order service until SIGTERM. `verifier`: what checks callers' tokens (default: a Verifier
    of AUTH_PUBLIC_KEY); `server_tls`: its own port's TLS (default: GRPC_TLS_*, as its channels).
    bench/front_door_cost.py gives a verifier that checks nothing and a plaintext port, to measure both.
    `publish_through(producer)`: what the orders are published through, around the producer the
    settings make (default: that producer); tests/support/held_order.py holds every publish there
    until its test lets them go. `read_together`: as OrderService's (bench/paired_orders.py);
    `producer_config`: librdkafka settings over the producer's own (bench/paired_orders.py linger)."""
    settings = config.load()
    verifier = verifier or auth.Verifier(public_key(settings.auth_public_key))
    stop = start_process(f"order[{settings.instance}]", settings.metrics_port, settings.listen_host)
    traces = process_tracing.start("order-svc", settings.instance, settings.traces)
    producer = EventProducer(settings.orders_topic, "order_id", client=settings.kafka_client,
                             extra_config=producer_config)
    if publish_through is not None:
        producer = publish_through(producer)
    store = OrderStore(settings.orders_db_url, settings.orders_table, connections=MAX_WORKERS)
    view = products.product_view(settings.kafka_client)
    order_metrics = metrics.OrderMetrics()
    order_metrics.watch(view)
    service = OrderService(settings, view, producer, store, order_metrics, read_together=read_together)
    service_names = [order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name]
    # NOT_SERVING until the view has read the products topic to its end: no order before it
    # knows every product (the stack's start waits for SERVING).
    server, health = build_server(
        lambda s: order_service_pb2_grpc.add_OrderServiceServicer_to_server(service, s),
        service_names, settings.listen, serving=False,
        verifier=verifier, tls=settings.grpc_tls if server_tls is None else server_tls, traces=traces)
    report = health_reporter(health, service_names)
    view.on_ready = lambda: report(True, f"{view.topic} read to its end")
    viewing = run_in_background(view.run, stop, "the product view")
    log.info("listening on %s, following %s", settings.listen, view.topic)
    serve_until_stopped(server, health, stop, background=viewing,
                        close=(producer.close, store.close, view.close, lambda: process_tracing.stop(traces)))
