"""EventProducer: publish protobuf messages as Connect JSON envelopes to one topic."""

import logging
import threading
import time

from confluent_kafka import KafkaException
from confluent_kafka.serialization import MessageField, SerializationContext
from opentelemetry.trace import SpanKind

from bus import tracing
from bus.clients import LIBRDKAFKA, PRODUCE_TIMEOUTS, RECONNECT, KafkaClients
from bus.envelope.serde import EnvelopeSerializer

log = logging.getLogger(__name__)


LINGER_MS = 1  # every EventProducer's linger.ms (why: in __init__)
PUBLISH_TIMEOUT = 10.0  # seconds publish() waits for the acknowledgement unless told otherwise


class PublishError(Exception):
    """The broker did not acknowledge a message; `kafka_error` is librdkafka's error, if any."""

    def __init__(self, message, kafka_error=None):
        super().__init__(message)
        self.kafka_error = kafka_error


class _Delivery:
    """Outcome of one produced message, set by the delivery callback."""

    __slots__ = ("error", "partition", "offset", "done")

    def __init__(self, done):
        self.error = self.partition = self.offset = None
        self.done = done

    def __call__(self, err, msg):
        if err is None:
            self.partition, self.offset = msg.partition(), msg.offset()
        self.error = err
        self.done()


class EventProducer:
    """One idempotent producer; the key is the value of `key_field` so that one
    order's events stay in one partition, in order.

    publish() may be called from many threads at once (a gRPC server's pool):
    each call waits on its own event, set by the delivery callback, which a
    background thread serves by polling the producer.
    """

    def __init__(self, topic, key_field, *, client: dict, extra_config=None, clients: KafkaClients = LIBRDKAFKA):
        self.topic = topic
        self.key_field = key_field
        conf = {
            **client,  # bootstrap servers and credentials: ordersync.config.Settings.kafka_client()
            "enable.idempotence": True,  # no duplicates or reordering from internal retries
            "acks": "all",
            # Each publish waits for its ack, so a linger is latency: 1 ms more per call at c=1.
            # Under load it is fewer, fuller produce requests. Measured paired, the JVMs warmed
            # (bench/paired_orders.py linger, 2 Orders), 1 ms against 0: 1.13x the orders/s at
            # c=32 (p99 0.86x, the broker's CPU per order 0.81x), 1.03x at c=8, 0.69x at c=1
            # (p50 2.0 -> 3.2 ms). 3 ms: 1.19x at c=32 but 0.92x at c=8. Flushing a publish that is
            # alone (to have both) made every lone call wait about 10 ms in flush().
            "linger.ms": LINGER_MS,
            **RECONNECT,
            **PRODUCE_TIMEOUTS,
        }
        conf.update(extra_config or {})
        self._producer = clients.producer(conf)
        # The serializer a SerializingProducer of one's own would use (bus.serde).
        self._serialize = EnvelopeSerializer()
        self._context = SerializationContext(topic, MessageField.VALUE)
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"producer-poll-{topic}",
                                        daemon=True)
        self._poller.start()

    def _poll(self):
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def _key(self, msg):
        key = getattr(msg, self.key_field)
        return key.encode() if isinstance(key, str) else str(key).encode()

    def _produce(self, msg, delivery, deadline_wait):
        """Produce one message, with the current trace context in its headers; waits for room when
        the local queue is full."""
        value = self._serialize(msg, self._context)
        headers = tracing.headers_now()
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=self._key(msg),
                                       on_delivery=delivery, headers=headers or None)
                return
            except BufferError:  # queue full: let deliveries drain, then retry
                if not deadline_wait(0.05):
                    raise PublishError(f"local producer queue full for {self.topic}") from None
            except KafkaException as e:
                raise PublishError(f"cannot produce to {self.topic}: {e}", e.args[0]) from None

    def publish(self, msg, timeout=None):
        """Publish one message; return (partition, offset) once the broker acknowledged it.

        Raises PublishError on failure or when no acknowledgement came within
        `timeout` seconds; in the latter case the message may still arrive
        later, so a retry must be idempotent (the key is the order id).
        """
        timeout = PUBLISH_TIMEOUT if timeout is None else timeout
        key = self._key(msg).decode()
        # The span lasts until the acknowledgement: its context goes into the record's headers.
        with tracing.TRACER.start_as_current_span(f"publish {self.topic}", kind=SpanKind.PRODUCER, attributes={
                "messaging.system": "kafka", "messaging.destination.name": self.topic,
                "messaging.kafka.message.key": key, tracing.ORDER_ID: key}) as span:
            done = threading.Event()
            delivery = _Delivery(done.set)
            waited = _Budget(timeout)
            self._produce(msg, delivery, waited.sleep)
            if not done.wait(waited.left()):
                raise PublishError(f"no acknowledgement from {self.topic} within {timeout}s for key {key}")
            if delivery.error is not None:
                raise PublishError(f"delivery to {self.topic} failed for key {key}: {delivery.error}", delivery.error)
            span.set_attributes({"messaging.destination.partition.id": str(delivery.partition),
                                 "messaging.kafka.offset": delivery.offset})
        log.debug("published %s key=%s partition=%d offset=%d", self.topic, key, delivery.partition, delivery.offset)
        return delivery.partition, delivery.offset

    def publish_many(self, msgs, timeout=30.0):
        """Publish messages in one batch; return [(partition, offset)] in their order.

        Produces all, then waits once for every acknowledgement; raises
        PublishError if any failed (the others may have been delivered).
        """
        msgs = list(msgs)
        all_done = threading.Event()
        pending = [len(msgs)]
        lock = threading.Lock()

        def one_done():
            with lock:
                pending[0] -= 1
                if pending[0] == 0:
                    all_done.set()

        if not msgs:
            return []
        waited = _Budget(timeout)
        deliveries = [_Delivery(one_done) for _ in msgs]
        for msg, delivery in zip(msgs, deliveries):
            self._produce(msg, delivery, waited.sleep)
        self._producer.flush(waited.left())
        if not all_done.wait(waited.left()):
            raise PublishError(f"{pending[0]} of {len(msgs)} messages to {self.topic} "
                               f"not acknowledged within {timeout}s")
        failed = [d for d in deliveries if d.error is not None]
        if failed:
            raise PublishError(f"{len(failed)} of {len(msgs)} messages to {self.topic} failed: "
                               f"{failed[0].error}", failed[0].error)
        log.info("published %d messages to %s", len(msgs), self.topic)
        return [(d.partition, d.offset) for d in deliveries]

    def close(self, timeout=10.0):
        """Deliver what is queued (up to `timeout` seconds) and stop the poll thread."""
        if self._closed.is_set():
            return
        left = self._producer.flush(timeout)
        self._closed.set()
        self._poller.join()
        if left:
            log.warning("closing producer for %s with %d messages undelivered", self.topic, left)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Budget:
    """A time budget shared by the steps of one publish call."""

    def __init__(self, seconds):
        self._deadline = time.monotonic() + seconds

    def left(self):
        return max(0.0, self._deadline - time.monotonic())

    def sleep(self, seconds):
        """Sleep up to `seconds`; False when the budget is used up."""
        if self.left() <= 0:
            return False
        time.sleep(min(seconds, self.left()))
        return True
