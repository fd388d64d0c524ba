"""EventConsumer: at-least-once processing of Connect JSON envelopes that heals itself.

A message that can never succeed goes to a dead-letter topic; one that failed
for now is retried until it passes, and the consumer reports meanwhile that it
is stuck (see bus.failures for which is which). This module polls, hands over,
retries and commits; the dead letters (bus.dead_letters), the health it reports
(bus.health) and its lag (bus.lag) are ideas of their own.
"""

import dataclasses
import logging
import signal
import threading
import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bus import dead_letters, envelope
from bus.clients import CONSUMER_GROUP, LIBRDKAFKA, RECONNECT, KafkaClients
from bus.dead_letters import DeadLetterError, DeadLetterWriter, describe
from bus.failures import backoff_delay, is_permanent
from bus.health import Health
from bus.lag import LagMeter

log = logging.getLogger(__name__)

# The consumer's thread measures its lag at most this often (bus.lag.LagMeter).
LAG_MAX_AGE = 5.0
RETRY_BACKOFF = 0.1  # seconds before the first retry; doubled for each later one ...
MAX_BACKOFF = 5.0  # ... up to this
# Most messages a batch handler gets at once: what the fetcher already holds, up to this many.
MAX_BATCH = 500


@dataclasses.dataclass(frozen=True)
class EventMeta:
    """Where a consumed event came from."""
    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int | None
    headers: tuple = ()


@dataclasses.dataclass
class ConsumerStats:
    """What the consumer did, counted for a metrics exporter (which may read from another thread)."""
    dead_lettered: int = 0  # messages written to the dead-letter topic
    retried: int = 0  # handling attempts that failed transiently (the message is tried again)


__all__ = ["DeadLetterError", "EventConsumer", "EventMeta", "ConsumerStats", "install_signal_handlers"]


class EventConsumer:
    """Decode each message of `topic` into `message_class` and hand it to a handler.

    Give one of two handlers:
    - handler(event, meta): called once per message;
    - batch_handler(items): called with a list of (event, meta) pairs, the messages
      polled together (up to max_batch, what has arrived: it never waits to fill a
      batch), so that their effect can be done in one go. It returns
      {index: PermanentError} for the items that can never succeed (None or {} if
      every item was done). Raising a PermanentError refuses the whole batch: the
      consumer then hands the items over one at a time, to find the one at fault.

    The handler's contract:
    - Return once the effect is done. It must be idempotent: a message can come
      again after a crash or a rebalance (at-least-once), and a batch that failed
      is handed over again whole, including the items it had done.
    - Raise (or, for a batch item, return) bus.failures.PermanentError for an
      event that can never succeed: it goes to the dead-letter topic at once, with
      the reason in its headers. A message that cannot be decoded (EnvelopeError)
      is treated the same.
    - Raise bus.failures.TransientError, or any other exception, for a failure
      that passes with time. Other exceptions are transient by decision: a
      message dead-lettered although it could succeed later silently breaks the
      sync, whereas a stuck consumer is visible (health, lag) and heals.

    A transient failure never reaches the dead-letter topic: the consumer
    retries the same message (or batch), waiting retry_backoff seconds doubling
    up to max_backoff (with full jitter), for as long as it takes. Meanwhile its
    partitions are paused and it keeps polling, so it stays in its group however
    long the outage lasts (beyond max.poll.interval.ms). A failed dead-letter
    write is transient too. The retry ends without committing when `stop` is
    set (the messages come again on restart); the messages of a partition
    revoked meanwhile are dropped from it (their new owner gets them again).

    on_health(serving, reason) is called, and one line logged, when the
    consumer gets stuck on a message (serving=False) and when it is not any
    more (serving=True); not once per attempt.

    `client`: the librdkafka settings of every client of the process (bootstrap servers and
    credentials: ordersync.config.Settings.kafka_client()); extra_config and dlq_config override
    them for the consumer and its dead-letter producer.

    The offsets are committed only after the handler succeeded and the refused
    messages went to the dead-letter topic: asynchronously, once per message
    or batch, while running (a round trip each would cap throughput);
    synchronously when partitions are revoked and on close().

    For a metrics exporter: `stats` (ConsumerStats) counts dead letters and
    retries, and lag() tells what is left to consume, as the polling thread
    measured it at most LAG_MAX_AGE seconds ago.
    """

    def __init__(self, topic, message_class, group_id, handler=None, *, client: dict, batch_handler=None,
                 max_batch=MAX_BATCH, dlq_topic=None, retry_backoff=RETRY_BACKOFF, max_backoff=MAX_BACKOFF,
                 on_health=None, extra_config=None, dlq_config=None, clients: KafkaClients = LIBRDKAFKA,
                 backoff=backoff_delay):
        if (handler is None) == (batch_handler is None):
            raise ValueError("give either handler or batch_handler")
        self.topic = topic
        self.message_class = message_class
        self._handle_items = batch_handler or _one_at_a_time(handler)
        self._max_batch = max_batch if batch_handler is not None else 1
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self._backoff = backoff  # backoff(attempt, first, cap) -> seconds (bus.failures.backoff_delay)
        self._health = Health(on_health, logger=log)
        self.stats = ConsumerStats()
        conf = {
            **client,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **CONSUMER_GROUP,
            **RECONNECT,
        }
        conf.update(extra_config or {})
        self._consumer = clients.consumer(conf)
        self._dlq = DeadLetterWriter(dlq_topic or dead_letters.topic_for(topic, group_id),
                                     {**client, **(dlq_config or {})}, clients)
        self.dlq_topic = self._dlq.topic
        self._consumer.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_lost)
        # Next offset to commit per (topic, partition): only messages fully dealt with.
        self._done: dict[tuple[str, int], int] = {}
        self._lag = LagMeter(self._consumer, lambda: dict(self._done), LAG_MAX_AGE)
        # Partitions taken from us since the current message's retries began.
        self._revoked: set[tuple[str, int]] = set()
        self._poll_timeout = 0.5

    def run(self, stop: threading.Event, poll_timeout=0.5):
        """Consume until `stop` is set (see install_signal_handlers).

        Raises KafkaException only on a fatal consumer error; no message can make it raise.
        """
        self._poll_timeout = poll_timeout
        while not stop.is_set():
            messages = self._poll_batch(poll_timeout)
            if messages:
                # Polled now, so assigned now: a revocation from before does not concern them.
                self._revoked.difference_update((m.topic(), m.partition()) for m in messages)
                self.handle_batch(messages, stop)
            else:
                self._commit_past_markers()

    def _poll_batch(self, timeout):
        """The messages that have arrived, at most max_batch (one for a per-message handler),
        waiting up to `timeout` for the first one only.

        (consume() with a timeout waits for a full batch in some client versions: a slow
        trickle of orders would then wait `timeout` each.)"""
        first = self._poll(timeout)
        if first is None:
            return []
        more = self._consumer.consume(self._max_batch - 1, 0) if self._max_batch > 1 else []
        return [first, *(m for m in more if self._usable(m))]

    def _poll(self, timeout):
        """The next message, or None when nothing or only a non-fatal error came."""
        self.measure_lag()
        m = self._consumer.poll(timeout)
        return m if m is not None and self._usable(m) else None

    def _usable(self, m) -> bool:
        """Whether `m` is a message (not an error event); raises on a fatal error."""
        if not m.error():
            return True
        if _fatal(m.error()):
            raise KafkaException(m.error())
        log.warning("consumer error on %s: %s", self.topic, m.error())
        return False

    def handle(self, m, stop=None):
        """Deal with one polled message: handled or dead-lettered, then committed (see handle_batch)."""
        self._revoked.discard((m.topic(), m.partition()))
        return self.handle_batch([m], stop)

    def handle_batch(self, messages, stop=None):
        """Deal with polled messages: each handled or dead-lettered, then their offsets committed.

        Returns False, committing nothing, when it gave up retrying because `stop`
        was set, or because every message's partition was revoked meanwhile.
        """
        stop = stop or threading.Event()
        pending = list(messages)
        dead_lettered = set()  # (partition, offset) already written: a retry must not write them twice
        attempts, stuck_since, paused = 0, None, []
        try:
            while True:
                pending = [m for m in pending if (m.topic(), m.partition()) not in self._revoked]
                if not pending:
                    if stuck_since is not None:
                        self._health.recovered(f"gave up retrying after {attempts} attempts: partition revoked")
                    return False
                attempts += 1
                try:
                    self._settle(pending, attempts, dead_lettered)
                    break
                except Exception as e:  # transient: _settle dead-letters the permanent ones
                    log.debug("attempt %d on %s failed: %r", attempts, _describe_all(pending), e)
                    self.stats.retried += 1
                    if stuck_since is None:
                        stuck_since = time.monotonic()
                        self._health.stuck(f"stuck on {_describe_all(pending)}, retrying until it passes: "
                                           f"{type(e).__name__}: {str(e)[:dead_letters.MAX_ERROR_MESSAGE]}")
                        # Paused, the consumer can poll (and so stay in its group) without
                        # receiving anything; the messages in hand are retried as they are.
                        paused = self._consumer.assignment()
                        self._consumer.pause(paused)
                    delay = self._backoff(attempts, self.retry_backoff, self.max_backoff)
                    if not self._wait(delay, stop, pending, paused) and stop.is_set():
                        return False
        finally:
            if paused:
                self._resume(paused)
        if stuck_since is not None:
            self._health.recovered(f"recovered on {_describe_all(pending)} after {attempts} attempts "
                                   f"in {time.monotonic() - stuck_since:.1f}s")
        self._commit(pending)
        return True

    def _settle(self, messages, attempts, dead_lettered):
        """Handle the messages, dead-lettering those that can never succeed; raise if they should
        be retried (before any dead letter is written: a retry hands the whole batch over again)."""
        refused, decoded = [], []
        for m in messages:
            try:
                event = envelope.decode(m.value(), self.message_class)
            except Exception as e:  # decoding is pure: the same bytes would fail every time
                refused.append((m, e))
                continue
            key = m.key().decode("utf-8", "replace") if m.key() is not None else None
            meta = EventMeta(m.topic(), m.partition(), m.offset(), key,
                             m.timestamp()[1] if m.timestamp()[0] else None, tuple(m.headers() or ()))
            decoded.append((m, event, meta))
        refused += self._refused_by_handler(decoded)
        for m, error in refused:
            if (m.partition(), m.offset()) not in dead_lettered:
                self._dlq.write(m, error, attempts)
                self.stats.dead_lettered += 1
                dead_lettered.add((m.partition(), m.offset()))
        log.debug("handled %s", _describe_all(messages))

    def _refused_by_handler(self, decoded):
        """Hand the decoded messages to the handler; the (message, PermanentError) it refused."""
        if not decoded:
            return []
        try:
            refused = self._handle_items([(event, meta) for _, event, meta in decoded]) or {}
        except Exception as e:
            if not is_permanent(e):
                raise
            if len(decoded) == 1:
                return [(decoded[0][0], e)]
            # The batch as a whole was refused: one at a time tells which message is at fault.
            return [failure for item in decoded for failure in self._refused_by_handler([item])]
        return [(decoded[i][0], error) for i, error in sorted(refused.items())]

    def _wait(self, seconds, stop, pending, paused):
        """Keep polling the paused consumer for `seconds`; False if stopped or a partition of
        `pending` was revoked."""
        where = {(m.topic(), m.partition()) for m in pending}
        deadline = time.monotonic() + seconds
        while not stop.is_set() and not (where & self._revoked):
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            m = self._poll(min(left, self._poll_timeout))
            if m is not None:
                # From a partition assigned since the pause (a paused one delivers nothing):
                # rewind to the message and pause that partition too; it comes after resume().
                tp = TopicPartition(m.topic(), m.partition(), m.offset())
                self._consumer.seek(tp)
                self._consumer.pause([tp])
                paused.append(tp)
        return False

    def _resume(self, partitions):
        try:
            self._consumer.resume(partitions)
        except KafkaException as e:  # some were revoked meanwhile; a new assignment is not paused
            log.warning("resume on %s failed: %s", self.topic, e)

    def _commit(self, messages):
        ends = {}
        for m in messages:
            where = (m.topic(), m.partition())
            ends[where] = max(ends.get(where, 0), m.offset() + 1)
        self._done.update(ends)
        try:
            self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()],
                                  asynchronous=True)
        except KafkaException as e:
            # E.g. the partition was revoked meanwhile: the messages come again (at-least-once).
            log.warning("commit failed for %s: %s", _describe_all(messages), e)

    def _commit_past_markers(self):
        """When idle, commit the position where it is ahead of what was committed.

        A transactional writer (the gate) ends each transaction with a commit marker in every
        partition it wrote: the consumer's position steps over it, the offsets committed after a
        batch (its last message + 1) do not, so the group would show one message of lag per
        partition for ever. Nothing polled is unhandled when idle, so the position is done."""
        try:
            positions = self._consumer.position(self._consumer.assignment())
        except KafkaException as e:
            log.debug("no position to commit: %s", e)
            return
        ahead = [tp for tp in positions if tp.offset >= 0 and tp.offset > self._done.get((tp.topic, tp.partition), -1)]
        if not ahead:
            return
        self._done.update({(tp.topic, tp.partition): tp.offset for tp in ahead})
        try:
            self._consumer.commit(offsets=ahead, asynchronous=True)
        except KafkaException as e:
            log.debug("commit past markers failed: %s", e)

    def _on_revoke(self, consumer, partitions):
        # Commit what was handled so that the next owner starts after it, and forget those
        # partitions: a later commit of them could move back another member's position.
        self._commit_done([(p.topic, p.partition) for p in partitions])
        self._forget(partitions)

    def _on_lost(self, consumer, partitions):
        self._forget(partitions)  # no longer ours: committing them would be refused

    def _forget(self, partitions):
        for p in partitions:
            self._done.pop((p.topic, p.partition), None)
            self._revoked.add((p.topic, p.partition))

    def _commit_done(self, which):
        offsets = [TopicPartition(t, p, self._done[(t, p)]) for t, p in which if (t, p) in self._done]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:  # e.g. no longer assigned: the new owner redelivers
            log.warning("commit on %s failed: %s", self.topic, e)

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet dealt with per assigned (topic, partition), as last measured (at most
        LAG_MAX_AGE seconds ago while the consumer polls). Safe to call from another thread."""
        return self._lag.last()

    def measure_lag(self, max_age=LAG_MAX_AGE) -> dict[tuple[str, int], int]:
        """Measure lag() unless done less than max_age seconds ago (the consumer's thread only):
        the high watermark minus the next offset to handle, the message being retried included."""
        return self._lag.measure(max_age)

    def close(self):
        """Commit what was handled, leave the group and flush the dead-letter producer."""
        self._commit_done(list(self._done))
        self._consumer.close()
        self._dlq.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fatal(error: KafkaError) -> bool:
    # librdkafka reports a fatal error as an event with code _FATAL whose fatal() is False
    # (the real error is only named in its text): both mean the consumer can do no more.
    return error.fatal() or error.code() == KafkaError._FATAL


def _describe_all(messages):
    if len(messages) == 1:
        return describe(messages[0])
    return f"a batch of {len(messages)} messages from {describe(messages[0])}"


def _one_at_a_time(handler):
    """A per-message handler as a batch handler (its batches hold one message)."""
    def handle_items(items):
        for event, meta in items:
            handler(event, meta)
        return {}
    return handle_items


def install_signal_handlers(stop: threading.Event):
    """Set `stop` on SIGTERM and SIGINT (call from the main thread of a process)."""
    def handler(signum, frame):
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
