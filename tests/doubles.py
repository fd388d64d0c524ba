"""The test doubles the tests share, in one place (as FastStream's TestKafkaBroker is): the Kafka
clients the bus makes through bus.clients.KafkaClients; the Order service's collaborators (the
product view, the event producer, the order store), a producer that holds each publish, and a
servicer context; a Connect worker's REST API; a clock; the Order and Catalog APIs answering as
scripted (for a client: the command line); cluster metadata with replicas (the watchdog's exporter).

Give them to the code under test (`clients=KafkaDoubles().clients`, `OrderService(settings,
ProductView(), EventProducer(), OrderStore())`, `Watchdog(settings, call=ConnectWorker(...))`,
`clock=Clock()`); never patch a module's globals. The Kafka doubles hold one topic in memory and record what they were
asked, so that a test can say what was committed, paused, sought or written:

    kafka = KafkaDoubles()
    consumer = EventConsumer("orders", OrderPlaced, "group", handler, clients=kafka.clients, client={"bootstrap.servers": "x:1"})
    kafka.consumer.queue.append(Message(encode(event), offset=7))
    ...
    assert kafka.consumer.commits == [(0, 8)] and kafka.producer.written == []
"""

import threading
import time
from types import SimpleNamespace

import grpc
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from bus.clients import KafkaClients
from bus.producer import PublishError
from order_svc.store import StoreUnavailable
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.auth import USER, Identity

TOPIC = "orders"
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed, no position yet


# --- Kafka's clients ---------------------------------------------------------------------

class Message:
    """A confluent_kafka.Message: what a consumer polls and a producer delivers. Each field is
    read by a call, as confluent_kafka's are: m.value(), m.offset(), m.error()..."""

    def __init__(self, value, *, topic=TOPIC, partition=0, offset=0, key=None, headers=None,
                 timestamp=(1, 1_700_000_000_000), error=None):
        self._fields = {"value": value, "topic": topic, "partition": partition, "offset": offset, "key": key,
                        "headers": headers, "timestamp": timestamp, "error": error}

    def __getattr__(self, name):
        fields = self.__dict__.get("_fields", {})
        if name not in fields:
            raise AttributeError(name)
        return lambda: fields[name]


def topic_metadata(partitions: int, error: KafkaError | None = None):
    """What list_topics() tells of a topic: its partitions 0 to partitions - 1, or the error that
    says why it has none (e.g. KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))."""
    return SimpleNamespace(error=error, partitions={p: SimpleNamespace(id=p) for p in range(partitions)})


class Consumer:
    """A confluent_kafka.Consumer of one topic, in memory.

    Subscribed (EventConsumer): poll() hands out the `queue`'s messages of the partitions not
    paused, in order, and moves their position; `on_poll(consumer)`, when set, is called at every
    poll before that (to revoke a partition, stop, move a position).
    Assigned (assign(), as bus.lag's probe and bus.topic_reader read): poll() steps each assigned
    partition's position up to its high watermark and returns the offsets listed in `records`
    ({partition: offsets holding records}; the others are transaction markers, stepped over as
    a read_committed consumer does).

    The broker's side: `topics` (list_topics(): {name: topic_metadata()}), `watermarks`
    ({partition: (low, high)}; asking for another partition fails as an unreachable broker does),
    `committed_offsets` ({partition: the group's next offset}), `assigned` (the partitions of
    assignment()), `fetchable` ({partition: the offset an assigned read steps up to}, default the high
    watermark: what the broker has not handed out yet). What it was asked: `commits` [(partition,
    next offset)], `seeks`, `paused`,
    `polls_while_paused`, `broker_calls` (watermarks and commits asked), `closed`.
    """

    def __init__(self, conf=None, *, topic=TOPIC, topics=None, watermarks=None, committed_offsets=None,
                 records=None):
        self.conf = conf or {}
        self.topic = topic
        self.topics = topics if topics is not None else {}
        self.watermarks = watermarks if watermarks is not None else {}
        self.committed_offsets = committed_offsets if committed_offsets is not None else {}
        self.records = records if records is not None else {}
        self.fetchable: dict[int, int] = {}
        self.assigned = [0]
        self.queue: list[Message] = []
        self.positions: dict[int, int] = {}  # partition -> the next offset to return (a test may move it)
        self.on_poll = None
        self.on_revoke = None
        self.paused: set[int] = set()
        self.commits: list[tuple[int, int]] = []
        self.seeks: list[tuple[int, int]] = []
        self.polls_while_paused = 0
        self.broker_calls = 0
        self.closed = False
        self._reading: set[int] = set()  # the partitions assign() gave

    # --- subscribed ---------------------------------------------------------------------

    def subscribe(self, topics, on_assign=None, on_revoke=None, on_lost=None):
        self.topic = topics[0]
        self.on_revoke = on_revoke

    def poll(self, timeout=None):
        if self.paused:
            self.polls_while_paused += 1
        if self.on_poll:
            self.on_poll(self)
        for m in self.queue:
            if m.partition() not in self.paused:
                self.queue.remove(m)
                if not m.error():  # an error event moves no position
                    self.positions[m.partition()] = m.offset() + 1
                return m
        return self._step()

    def consume(self, num_messages=1, timeout=None):
        batch = []
        while len(batch) < num_messages:
            m = self.poll(0)
            if m is None:
                break
            batch.append(m)
        return batch

    def pause(self, partitions):
        self.paused |= {p.partition for p in partitions}

    def resume(self, partitions):
        self.paused -= {p.partition for p in partitions}

    def seek(self, tp):
        self.seeks.append((tp.partition, tp.offset))

    def commit(self, message=None, offsets=None, asynchronous=True):
        if message is not None:
            self.commits.append((message.partition(), message.offset() + 1))
        for tp in offsets or ():
            self.commits.append((tp.partition, tp.offset))

    # --- assigned -----------------------------------------------------------------------

    def assign(self, partitions):
        self.assigned = [tp.partition for tp in partitions]
        self._reading = set(self.assigned)
        self.positions.update({tp.partition: tp.offset for tp in partitions})
        if partitions:
            self.topic = partitions[0].topic

    def unassign(self):
        for p in self._reading:
            self.positions.pop(p, None)
        self.assigned, self._reading = [], set()

    def _step(self):
        for p in sorted(self._reading):
            end = self.fetchable[p] if p in self.fetchable else self.watermarks[p][1]
            while self.positions[p] < end:
                at = self.positions[p]
                self.positions[p] = at + 1
                if at in self.records.get(p, ()):
                    return Message(None, topic=self.topic, partition=p, offset=at)
        return None

    # --- either -------------------------------------------------------------------------

    def list_topics(self, topic=None, timeout=None):
        return SimpleNamespace(topics=self.topics)

    def assignment(self):
        return [TopicPartition(self.topic, p) for p in self.assigned]

    def position(self, partitions):
        return [TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, NO_OFFSET))
                for tp in partitions]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        self.broker_calls += 1
        if tp.partition not in self.watermarks:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return self.watermarks[tp.partition]

    def committed(self, partitions, timeout=None):
        self.broker_calls += 1
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, NO_OFFSET))
                for tp in partitions]

    def close(self):
        self.closed = True


class Producer:
    """A confluent_kafka.Producer, in memory: produce() queues a record, poll() and flush()
    deliver what is queued, to partition 0 at the topic's next offset.

    A record is delivered unless `fail(value, attempt)` returns a KafkaError for it (attempt:
    the count of produce() calls so far); with `raise_locally` produce() raises that error at
    once, as librdkafka's own checks do. `written`: (topic, key, value, {header: value}) of each
    record delivered; `attempts`: produce() calls."""

    def __init__(self, conf=None):
        self.conf = conf or {}
        self.written: list[tuple] = []
        self.attempts = 0
        self.fail = lambda value, attempt: None
        self.raise_locally = False
        self._pending: list[tuple] = []
        self._lock = threading.Lock()  # EventProducer polls from a thread of its own

    def produce(self, topic, value=None, key=None, partition=None, on_delivery=None, headers=None, **kwargs):
        with self._lock:
            self.attempts += 1
            error = self.fail(value, self.attempts)
            if error is not None and self.raise_locally:
                raise KafkaException(error)
            self._pending.append((error, topic, key, value, headers, on_delivery))

    def poll(self, timeout=None):
        served = self._deliver()
        if not served and timeout:
            time.sleep(min(timeout, 0.01))  # as librdkafka waits for an event, without spinning
        return served

    def flush(self, timeout=None):
        self._deliver()
        return 0  # nothing left in the queue

    def _deliver(self) -> int:
        delivered = []
        with self._lock:
            pending, self._pending = self._pending, []
            for error, topic, key, value, headers, on_delivery in pending:
                offset = sum(1 for written in self.written if written[0] == topic)
                if error is None:
                    self.written.append((topic, key, value, dict(headers or ())))
                delivered.append((on_delivery, error, Message(value, topic=topic, offset=offset, key=key,
                                                              headers=headers, error=error)))
        for on_delivery, error, message in delivered:  # callbacks outside the lock, as librdkafka serves them
            if on_delivery is not None:
                on_delivery(error, message)
        return len(delivered)


class KafkaDoubles:
    """A bus.clients.KafkaClients, `clients`, that makes the doubles above and keeps each it made:
    `consumers` and `producers`, `consumer` and `producer` the last of each."""

    def __init__(self):
        self.consumers: list[Consumer] = []
        self.producers: list[Producer] = []
        self.clients = KafkaClients(consumer=self._consumer, producer=self._producer)

    @property
    def consumer(self) -> Consumer:
        return self.consumers[-1]

    @property
    def producer(self) -> Producer:
        return self.producers[-1]

    def _consumer(self, conf):
        self.consumers.append(Consumer(conf))
        return self.consumers[-1]

    def _producer(self, conf):
        self.producers.append(Producer(conf))
        return self.producers[-1]


# --- the Order service's collaborators, and a servicer context ------------------------------

class Aborted(Exception):
    """What ServicerContext.abort() raises, as grpc's does, to end the call."""


class ServicerContext:
    """A gRPC servicer context; `remaining` is what time_remaining() answers, one value per call
    (the last one repeats), or None for a caller without a deadline. abort() keeps the code and
    the details and raises Aborted. `caller`: who the token interceptor found (the user u1 unless
    given; None: a call it did not see), `metadata`: what invocation_metadata() answers."""

    def __init__(self, remaining=None, caller: Identity | None = Identity("u1", USER), metadata=()):
        self.remaining = list(remaining) if isinstance(remaining, (list, tuple)) else [remaining]
        if caller is not None:
            self.caller = caller
        self.metadata = tuple(metadata)
        self.code = self.details = None

    def invocation_metadata(self):
        return self.metadata

    def time_remaining(self):
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]

    def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted(details)


class ProductView:
    """The Order service's product view (bus.compacted_view.CompactedView of Product): get()
    answers every product id with `stock` and `unit_price` except those in `missing` (never
    written, or deleted); behind_s() answers `behind` (None: not read to its end yet). Each id
    asked for is kept in `asked`."""

    topic = "catalog.products"

    def __init__(self, stock=50, unit_price=1500, behind: float | None = 0.0, missing=()):
        self.stock, self.unit_price, self.behind, self.missing = stock, unit_price, behind, set(missing)
        self.asked: list[str] = []

    def get(self, product_id):
        self.asked.append(product_id)
        if product_id in self.missing:
            return None
        return catalog_service_pb2.Product(product_id=product_id, product_name="x", stock=self.stock,
                                           unit_price=self.unit_price)

    def behind_s(self):
        return self.behind


class EventProducer:
    """bus.producer.EventProducer: publish() keeps each event (`published`) and its timeout, or
    with `fail` raises PublishError carrying `kafka_error`."""

    def __init__(self, fail=False, kafka_error=None):
        self.fail, self.kafka_error, self.published, self.timeouts = fail, kafka_error, [], []

    def publish(self, event, timeout):
        self.timeouts.append(timeout)
        if self.fail:
            raise PublishError("no acknowledgement", self.kafka_error)
        self.published.append(event)


class HeldProducer:
    """bus.producer.EventProducer around a real one (order_svc.server.serve's `publish_through`):
    publish() waits until `release` is set, then publishes through `producer`, so a call stays in
    flight for as long as a test wants. Each call is held at most `hold_s` (a broken test must not
    hang); `on_held(event)` and `on_released(event, by_release)` say when each call arrives and
    why it goes on (True: `release` was set; False: the bound ran out). close() closes `producer`."""

    def __init__(self, producer, release: threading.Event, hold_s: float = 120,
                 on_held=lambda event: None, on_released=lambda event, by_release: None):
        self._producer, self.release, self._hold_s = producer, release, hold_s
        self._on_held, self._on_released = on_held, on_released

    def publish(self, event, timeout=None):
        self._on_held(event)
        self._on_released(event, self.release.wait(self._hold_s))
        return self._producer.publish(event, timeout=timeout)

    def close(self, timeout=10.0):
        self._producer.close(timeout)


class OrderStore:
    """order_svc.store.OrderStore over `rows` (dicts of the orders table), or with `fail` a
    database that cannot be reached (StoreUnavailable); `reads`: the get_many queries asked."""

    def __init__(self, fail=False, rows=()):
        self.fail, self.rows = fail, {row["order_id"]: row for row in rows}
        self.reads = 0

    def get(self, order_id):
        if self.fail:
            raise StoreUnavailable("connection refused")
        return self.rows.get(order_id)

    def get_many(self, order_ids):
        self.reads += 1
        if self.fail:
            raise StoreUnavailable("connection refused")
        return {i: self.rows[i] for i in order_ids if i in self.rows}

    def list_for_user(self, user_id, limit, after):
        if self.fail:
            raise StoreUnavailable("connection refused")
        return [row for row in self.rows.values() if row["user_id"] == user_id][:limit]


# --- a Connect worker's REST API -------------------------------------------------------------

class ConnectWorker:
    """A Connect worker's REST API as connect.rest.call reaches it (a Watchdog's `call`): one
    connector, `name` of `connector_class`, whose tasks are in `states` with `trace` when FAILED;
    every call is kept; a POST, PUT or DELETE answers 204 (a PUT .../stop makes it STOPPED)."""

    def __init__(self, *states, name="orders-sink", connector_class="io.debezium.connector.jdbc.JdbcSinkConnector",
                 trace="org.apache.kafka.connect.errors.ConnectException: down\n\tat x"):
        self.states, self.calls = list(states), []
        self.name, self.connector_class, self.trace, self.state = name, connector_class, trace, "RUNNING"

    def __call__(self, url, method, path, body=None, timeout=None):
        self.calls.append((method, path))
        if method != "GET":
            self.state = {"stop": "STOPPED", "resume": "RUNNING"}.get(path.rsplit("/", 1)[-1], self.state)
            return 204, None
        if path.endswith("/status"):
            return 200, {"connector": {"state": self.state}}
        tasks = [{"id": i, "state": s, "trace": self.trace} for i, s in enumerate(self.states)]
        return 200, {self.name: {"info": {"config": {"connector.class": self.connector_class}},
                                 "status": {"tasks": tasks}}}

    @property
    def restarts(self):
        return [path for method, path in self.calls if method == "POST"]


# --- time -------------------------------------------------------------------------------------

class Clock:
    """A clock that stands still until a test moves it: called, it answers `now`."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the services' APIs, for a client (the command line) ------------------------------------

CREATED_AT = Timestamp(seconds=1_780_000_000)


class Scripted(order_service_pb2_grpc.OrderServiceServicer, catalog_service_pb2_grpc.CatalogServiceServicer):
    """The Order and Catalog APIs: each call aborts with the next code of `failures` while there is
    one, else answers; every call is kept in `calls` as (method, request, the caller's identity)."""

    def __init__(self):
        self.failures: list[grpc.StatusCode] = []
        self.calls: list[tuple[str, object, auth.Identity]] = []

    def _called(self, method, request, context) -> auth.Identity:
        caller = auth.caller(context)
        self.calls.append((method, request, caller))
        if self.failures:
            context.abort(self.failures.pop(0), f"scripted {method}\nrefusal")
        return caller

    def requests(self, method: str) -> list:
        return [request for name, request, _ in self.calls if name == method]

    def CreateOrder(self, request, context):
        caller = self._called("CreateOrder", request, context)
        return order_service_pb2.CreateOrderResponse(order=order_service_pb2.Order(
            order_id=f"order-{request.request_id}", user_id=request.user_id or caller.subject,
            product_id=request.product_id, qty=request.qty, unit_price=1500, total_price=request.qty * 1500,
            created_at=CREATED_AT))

    def GetOrder(self, request, context):
        self._called("GetOrder", request, context)
        return order_service_pb2.GetOrderResponse(order=scripted_order(request.order_id))

    def ListOrders(self, request, context):
        self._called("ListOrders", request, context)
        if request.page_token == "":
            return order_service_pb2.ListOrdersResponse(orders=[scripted_order("o1"), scripted_order("o2")],
                                                        next_page_token="page-2")
        return order_service_pb2.ListOrdersResponse(orders=[scripted_order("o3")])

    def ListProducts(self, request, context):
        self._called("ListProducts", request, context)
        return catalog_service_pb2.ListProductsResponse(products=[
            catalog_service_pb2.Product(product_id="CATALOG-001", product_name="Berlin", stock=100, unit_price=1500),
            catalog_service_pb2.Product(product_id="CATALOG-002", product_name="Tokyo", stock=0, unit_price=1000)])


def scripted_order(order_id: str) -> order_service_pb2.Order:
    return order_service_pb2.Order(order_id=order_id, user_id="alice", product_id="CATALOG-001", qty=2,
                                   unit_price=1500, total_price=3000, created_at=CREATED_AT)


# --- cluster metadata with replicas (the watchdog's exporter) -------------------------------

def replicated_partition(replicas: list[int], isrs: list[int]):
    return SimpleNamespace(replicas=replicas, isrs=isrs)


def replicated_topic(*partitions, error=None):
    return SimpleNamespace(error=error, partitions=dict(enumerate(partitions)))


class Admin:
    """An AdminClient whose list_topics() answers `topics` ({name: replicated_topic(...)}), or raises `error`."""

    def __init__(self, topics=None, error: KafkaException | None = None):
        self.topics, self.error, self.asked = topics or {}, error, 0

    def list_topics(self, topic=None, timeout=None):
        self.asked += 1
        if self.error is not None:
            raise self.error
        return SimpleNamespace(topics=self.topics)
