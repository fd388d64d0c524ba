"""The dead-letter contract: what a dead letter carries and where it goes, in one place.

A dead letter is the failed record as it came (key, value, its own headers) with headers that say
why and where it came from. Two writers follow this contract (DeadLetterWriter, for the bus
consumer's dead-letter topics; the gate, inside its transactions, for its rejected topic) and
one reader (ops.dead_letters), which also reads what Kafka Connect writes under its own header
names (CONNECT_HEADERS).
"""

import logging

from confluent_kafka import KafkaError, KafkaException

from bus import tracing
from bus.clients import LIBRDKAFKA, RECONNECT, KafkaClients
from bus.failures import TransientError

log = logging.getLogger(__name__)

# Added to a dead-lettered record (its key, value and own headers are kept).
H_ERROR_CLASS = "dlq.error.class"
H_ERROR_MESSAGE = "dlq.error.message"
H_ORIGIN_TOPIC = "dlq.origin.topic"
H_ORIGIN_PARTITION = "dlq.origin.partition"
H_ORIGIN_OFFSET = "dlq.origin.offset"
H_ATTEMPTS = "dlq.attempts"
# Only on a copy cut short because the whole record was too large for the dead-letter topic.
H_TRUNCATED = "dlq.truncated"
H_ORIGINAL_SIZE = "dlq.original.size"
H_TRUNCATED_REASON = "dlq.truncated.reason"
PREFIX = "dlq."

# Kafka Connect's context headers (errors.deadletterqueue.context.headers.enable) for the same facts.
CONNECT_PREFIX = "__connect.errors."
CONNECT_HEADERS = {
    H_ORIGIN_TOPIC: "__connect.errors.topic",
    H_ORIGIN_PARTITION: "__connect.errors.partition",
    H_ORIGIN_OFFSET: "__connect.errors.offset",
    H_ERROR_CLASS: "__connect.errors.exception.class.name",
    H_ERROR_MESSAGE: "__connect.errors.exception.message",
}

MAX_ERROR_MESSAGE = 4096
# A record too large for its dead-letter topic goes there as its first 64 KiB: enough to see what
# it was. MAX_BYTES is below the broker's default message.max.bytes, with room for headers.
TRUNCATED_SIZE = 64 * 1024
MAX_BYTES = 512 * 1024
# Milliseconds a dead-letter write may take (librdkafka gives up on it then); the consumer does
# not poll meanwhile, so max.poll.interval.ms must be well above it.
TIMEOUT_MS = 10_000


def topic_for(topic: str, group: str) -> str:
    """The dead-letter topic of a consumer group on a topic."""
    return f"{topic}.{group}.dlq"


def headers(error_class: str, message: str, origin: tuple[str, int, int], attempts: int) -> list[tuple[str, str]]:
    """What a dead letter says of itself: why, and where it came from (topic, partition, offset)."""
    topic, partition, offset = origin
    return [(H_ERROR_CLASS, error_class), (H_ERROR_MESSAGE, message[:MAX_ERROR_MESSAGE]),
            (H_ORIGIN_TOPIC, topic), (H_ORIGIN_PARTITION, str(partition)), (H_ORIGIN_OFFSET, str(offset)),
            (H_ATTEMPTS, str(attempts))]


def truncated(key: bytes | None, value: bytes | None, reason_headers: list, why: str) -> tuple:
    """(key, value, headers) of the shortened copy of a record too large to dead-letter whole. Its
    own headers are dropped (they could be what is large); the reason is kept."""
    size = len(value or b"")
    return (key[:TRUNCATED_SIZE] if key is not None else None, (value or b"")[:TRUNCATED_SIZE],
            [*reason_headers, (H_TRUNCATED, "true"), (H_ORIGINAL_SIZE, str(size)), (H_TRUNCATED_REASON, why)])


def too_large(key: bytes | None, value: bytes | None) -> bool:
    return len(key or b"") + len(value or b"") > MAX_BYTES


class DeadLetterError(TransientError):
    """A record could not be written to its dead-letter topic: it must not be committed."""


class DeadLetterWriter:
    """Writes dead letters to one topic and waits for each (at-least-once: a crash before the
    consumer's commit writes it again; the tools list and replay each origin once)."""

    def __init__(self, topic: str, config: dict, clients: KafkaClients = LIBRDKAFKA):
        self.topic = topic
        self.written = 0
        # Not idempotent: a fatal idempotence error would block the dead-letter path for good.
        conf = {"acks": "all", "message.timeout.ms": TIMEOUT_MS, **RECONNECT, **config}
        self._producer = clients.producer(conf)
        self._wait = conf["message.timeout.ms"] / 1000 + 5

    def write(self, m, error: BaseException, attempts: int) -> None:
        """Dead-letter the consumed record `m` for `error`; raise DeadLetterError if that failed.
        A record too large for the topic goes there shortened (truncated())."""
        reason = headers(type(error).__name__, str(error), (m.topic(), m.partition(), m.offset()), attempts)
        failed = self._send(m.key(), m.value(), list(m.headers() or ()) + reason)
        if failed is not None and failed.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            # Keep what fits: a dead letter nobody can write would stop the consumer for good.
            failed = self._send(*truncated(m.key(), m.value(), reason, str(failed)))
        if failed is not None:
            raise DeadLetterError(f"could not write {describe(m)} to {self.topic}: {failed}")
        self.written += 1
        tracing.dead_letter_span(tracing.extract(m.headers()), self.topic,
                                 m.key().decode("utf-8", "replace") if m.key() is not None else None,
                                 type(error).__name__, str(error))
        log.error("dead-lettered %s to %s: %s: %s", describe(m), self.topic, type(error).__name__,
                  str(error)[:MAX_ERROR_MESSAGE])

    def _send(self, key, value, record_headers) -> KafkaError | None:
        """Produce one record and wait: its KafkaError, or None."""
        outcome: list = []
        try:
            self._producer.produce(self.topic, key=key, value=value, headers=record_headers,
                                   on_delivery=lambda err, msg: outcome.append(err))
        except KafkaException as e:  # e.g. larger than the producer's message.max.bytes
            return e.args[0]
        except BufferError:  # earlier attempts still queued
            return KafkaError(KafkaError._QUEUE_FULL)
        self._producer.flush(self._wait)
        return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)

    def close(self) -> None:
        self._producer.flush(10)


def describe(m) -> str:
    """topic[partition]@offset key=... of a consumed record, for log lines."""
    key = m.key().decode("utf-8", "replace")[:100] if m.key() is not None else None
    return f"{m.topic()}[{m.partition()}]@{m.offset()} key={key}"
