"""EventConsumer: at-least-once processing of Connect JSON envelopes, with a dead-letter topic."""

import dataclasses
import logging
import signal
import threading

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bus import config, envelope

log = logging.getLogger(__name__)

# Headers added to a dead-lettered message (its key, value and own headers are kept).
H_ERROR_CLASS = "dlq.error.class"
H_ERROR_MESSAGE = "dlq.error.message"
H_ORIGIN_TOPIC = "dlq.origin.topic"
H_ORIGIN_PARTITION = "dlq.origin.partition"
H_ORIGIN_OFFSET = "dlq.origin.offset"
H_ATTEMPTS = "dlq.attempts"


@dataclasses.dataclass(frozen=True)
class EventMeta:
    """Where a consumed event came from."""
    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int | None
    headers: tuple = ()


class DeadLetterError(Exception):
    """A message could not be written to the dead-letter topic; its offset is not committed."""


class EventConsumer:
    """Decode each message of `topic` into `message_class` and call handler(msg, meta).

    The offset is committed only after the handler succeeded or the message
    went to the dead-letter topic: asynchronously while running (a round trip
    per message would cap throughput), synchronously on close(). A crash
    redelivers at most the messages whose commit was in flight
    (at-least-once), so handlers must be idempotent.
    A message that cannot be decoded goes to the dead-letter topic at once;
    one whose handler raises is retried max_attempts times in all, with
    doubling backoff, then dead-lettered.
    """

    def __init__(self, topic, message_class, group_id, handler, *, dlq_topic=None,
                 max_attempts=None, bootstrap=None, retry_backoff=None, extra_config=None):
        bootstrap = bootstrap or config.BOOTSTRAP_SERVERS
        self.topic = topic
        self.dlq_topic = dlq_topic or f"{topic}.{group_id}.dlq"
        self.message_class = message_class
        self.handler = handler
        self.max_attempts = max_attempts or config.MAX_ATTEMPTS
        self.retry_backoff = config.RETRY_BACKOFF if retry_backoff is None else retry_backoff
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        conf.update(extra_config or {})
        self._consumer = Consumer(conf)
        self._dlq = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                              "acks": "all"})
        self._consumer.subscribe([topic])
        # Next offset to commit per (topic, partition): only messages fully dealt with.
        self._done = {}

    def run(self, stop: threading.Event, poll_timeout=0.5):
        """Consume until `stop` is set (see install_signal_handlers)."""
        while not stop.is_set():
            m = self._consumer.poll(poll_timeout)
            if m is None:
                continue
            if m.error():
                if m.error().fatal():
                    raise KafkaException(m.error())
                log.warning("consumer error on %s: %s", self.topic, m.error())
                continue
            self.handle(m, stop)

    def handle(self, m, stop=None):
        """Process one polled message and commit its offset (unless stopped mid-retry)."""
        key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        meta = EventMeta(m.topic(), m.partition(), m.offset(), key,
                         m.timestamp()[1] if m.timestamp()[0] else None,
                         tuple(m.headers() or ()))
        try:
            event = envelope.decode(m.value(), self.message_class)
        except envelope.EnvelopeError as e:
            self._dead_letter(m, e, 0)
        else:
            attempt = 1
            while True:
                try:
                    self.handler(event, meta)
                    log.debug("handled %s[%d]@%d key=%s", meta.topic, meta.partition,
                             meta.offset, key)
                    break
                except Exception as e:
                    if attempt >= self.max_attempts:
                        self._dead_letter(m, e, attempt)
                        break
                    log.warning("handler failed on %s[%d]@%d key=%s (attempt %d of %d): %r",
                                meta.topic, meta.partition, meta.offset, key, attempt,
                                self.max_attempts, e)
                    if (stop or threading.Event()).wait(self.retry_backoff * 2 ** (attempt - 1)):
                        return  # shutting down: not committed, redelivered on restart
                    attempt += 1
        self._done[(m.topic(), m.partition())] = m.offset() + 1
        try:
            self._consumer.commit(message=m, asynchronous=True)
        except KafkaException as e:
            # E.g. the partition was revoked meanwhile: the message comes again (at-least-once).
            log.warning("commit failed for %s[%d]@%d key=%s: %s", meta.topic, meta.partition,
                        meta.offset, key, e)

    def _dead_letter(self, m, error, attempts):
        headers = list(m.headers() or ()) + [
            (H_ERROR_CLASS, type(error).__name__),
            (H_ERROR_MESSAGE, str(error)),
            (H_ORIGIN_TOPIC, m.topic()),
            (H_ORIGIN_PARTITION, str(m.partition())),
            (H_ORIGIN_OFFSET, str(m.offset())),
            (H_ATTEMPTS, str(attempts)),
        ]
        outcome = []
        self._dlq.produce(self.dlq_topic, key=m.key(), value=m.value(), headers=headers,
                          on_delivery=lambda err, msg: outcome.append(err))
        self._dlq.flush(30)
        if not outcome or outcome[0] is not None:
            # Not committing is the only safe choice: the message is neither handled nor kept.
            raise DeadLetterError(f"could not write {m.topic()}[{m.partition()}]@{m.offset()} "
                                  f"to {self.dlq_topic}: {outcome[0] if outcome else 'timeout'}")
        key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        log.error("dead-lettered %s[%d]@%d key=%s to %s after %d attempts: %s: %s", m.topic(),
                  m.partition(), m.offset(), key, self.dlq_topic, attempts,
                  type(error).__name__, error)

    def close(self):
        """Commit what was handled, leave the group and flush the dead-letter producer."""
        if self._done:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._done.items()]
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:  # e.g. no longer assigned: the new owner redelivers
                log.warning("final commit on %s failed: %s", self.topic, e)
        self._consumer.close()
        self._dlq.flush(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def install_signal_handlers(stop: threading.Event):
    """Set `stop` on SIGTERM and SIGINT (call from the main thread of a process)."""
    def handler(signum, frame):
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
