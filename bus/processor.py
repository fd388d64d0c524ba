"""ExactlyOnceProcessor: read a topic and write what each batch of its records becomes, exactly once.

Consume, transform, produce with Kafka transactions (KIP-447): the records a batch turns into
and the batch's consumed offsets are committed in one transaction. After a crash, a kill -9,
a rebalance or a fenced zombie, a batch's output is either visible to read_committed readers
together with its offsets, or neither is, and the batch is read again: nothing is lost and
nothing is written twice. The transform decides what the records become; this module knows
nothing of what they mean.

The loop never polls inside a transaction (poll, transform, commit, poll again), so a
rebalance callback never finds a transaction open. A failure that passes (a database, a
broker, an abortable transaction) aborts the transaction, rewinds the consumer to the batch's
first offsets and tries again with capped, jittered backoff, for as long as it takes; the
consumer keeps polling meanwhile, so it stays in its group. A transactional call that timed
out is repeated, never abandoned: a commit under way is never aborted (librdkafka calls that a
fatal error). After a fatal producer error (a transaction that outlived its timeout is
"fenced") or a call that never returns, a new producer takes over the transactional.id. Only a
fatal consumer error ends run(), with KafkaException.
"""

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bus.clients import CONSUMER_GROUP, LIBRDKAFKA, RECONNECT, KafkaClients
from bus.failures import backoff_delay
from bus.health import Health
from bus.lag import LagMeter

log = logging.getLogger(__name__)

MAX_BATCH = 500
RETRY_BACKOFF = 0.1  # seconds before the first retry, doubled for each later one ...
MAX_BACKOFF = 5.0  # ... up to this: well below max.poll.interval.ms, so the group keeps us
# A transaction left open by a killed instance blocks read_committed readers of its output until
# it is aborted: at once when an instance with the same transactional.id starts, else after
# this timeout (the brokers look for expired ones every
# transaction.abort.timed.out.transaction.cleanup.interval.ms). Ours last milliseconds.
TRANSACTION_TIMEOUT_MS = 5_000
KAFKA_TIMEOUT_S = 10  # one attempt at a transactional call (init, offsets, commit, abort)


@dataclasses.dataclass(frozen=True)
class Output:
    """One record to produce in the batch's transaction."""
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | str]] = ()
    timestamp_ms: int | None = None  # None: the time of producing


@dataclasses.dataclass
class ProcessorStats:
    """What the processor did, for a metrics exporter (read from another thread)."""
    batches: int = 0  # transactions committed
    consumed: int = 0  # records whose output was committed
    produced: int = 0
    retried: int = 0  # batch attempts that failed and were tried again


class ExactlyOnceProcessor:
    """transform(messages) -> outputs, for each polled batch of `topic`, exactly once.

    transform gets confluent-kafka Messages (at most max_batch, what has arrived) and returns
    the Outputs to produce; it must be a function of the messages and of state it keeps
    consistent itself, since a batch whose transaction was aborted is handed over again.
    It raises for a failure that passes (the batch is retried); it must not raise for a
    record that can never succeed: it decides what that record becomes (a dead letter, say).

    on_health(serving, reason) is called once the transactional producer is registered
    (serving), when the processor gets stuck retrying and when it recovers; not once per
    attempt. on_committed(messages, outputs) is called after each committed batch (to count).
    """

    def __init__(self, topic: str, group_id: str, transactional_id: str,
                 transform: Callable[[list], list[Output]], *, client: dict, extra_config: dict | None = None,
                 on_health: Callable[[bool, str], None] | None = None,
                 on_committed: Callable[[list, list[Output]], None] | None = None, max_batch: int = MAX_BATCH,
                 retry_backoff: float = RETRY_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 clients: KafkaClients = LIBRDKAFKA):
        self.topic = topic
        self._transform = transform
        self._on_committed = on_committed
        self._max_batch = max_batch
        self.retry_backoff, self.max_backoff = retry_backoff, max_backoff
        self.stats = ProcessorStats()
        self._health = Health(on_health, serving=None, logger=log)  # not yet: until the producer is registered
        self._failures = 0  # consecutive failed attempts
        # client: bootstrap servers and credentials (ordersync.config.Settings.kafka_client()).
        common = {**client, **RECONNECT, **(extra_config or {})}
        self._clients = clients
        self._consumer = clients.consumer({
            **common,
            "group.id": group_id,
            "enable.auto.commit": False,  # offsets go into the transaction
            "auto.offset.reset": "earliest",
            # Our own input may come from a transactional writer too: never read an aborted record.
            "isolation.level": "read_committed",
            **CONSUMER_GROUP,
        })
        self._lag = LagMeter(self._consumer, self._positions)
        self._producer_config = {
            **common,
            "transactional.id": transactional_id,  # implies enable.idempotence and acks=all
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "linger.ms": 5,  # a transaction's records go out together anyway, at its commit
        }
        self._producer = clients.producer(self._producer_config)
        # Transactional calls run here, so that one that never returns can be given up on.
        self._caller = _Caller()

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, poll_timeout: float = 0.5) -> None:
        """Process until `stop` is set. Raises KafkaException on a fatal consumer error, or when
        another process registered our transactional.id (fenced: two instances share an id)."""
        try:
            self._register(stop)
            self._consumer.subscribe([self.topic])
            while not stop.is_set():
                batch = self._poll_batch(poll_timeout)
                if batch:
                    self._process(batch, stop)
        except _Stopped:
            pass

    def _init_transactions(self, stop: threading.Event) -> None:
        """Register the transactional.id (fencing any zombie of ours and aborting its open
        transaction), retrying while the brokers cannot be reached."""
        producer = self._producer
        self._until_done(lambda: producer.init_transactions(KAFKA_TIMEOUT_S), stop,
                         "registering the transactional producer")
        self._failures = 0
        self._health.ready("transactional producer registered")

    def _poll_batch(self, timeout: float) -> list:
        """What has arrived, at most max_batch, waiting up to `timeout` for the first only."""
        self._lag.measure()
        first = self._consumer.poll(timeout)
        if first is None or not self._usable(first):
            return []
        more = self._consumer.consume(self._max_batch - 1, 0) if self._max_batch > 1 else []
        return [first, *(m for m in more if self._usable(m))]

    @staticmethod
    def _usable(m) -> bool:
        if not m.error():
            return True
        error = m.error()
        if error.fatal() or error.code() == KafkaError._FATAL:
            raise KafkaException(error)
        log.warning("consumer error: %s", error)
        return False

    def _process(self, batch: list, stop: threading.Event) -> None:
        """One attempt at the batch: transform, then one transaction. A failure rewinds to the
        batch, so that the next poll hands it over again (after a backoff)."""
        try:
            outputs = self._transform(batch)
        except Exception as e:  # transient by decision: the transform said so, or did not know
            self._failed(batch, f"{type(e).__name__}: {e}", stop)
            return
        try:
            self._commit(batch, outputs, stop)
        except KafkaException as e:
            error = e.args[0]
            if error.fatal():
                self._renew_producer(str(error), stop)
            else:  # begin, produce or the offsets failed, or the commit must be aborted
                self._abort(stop)
            self._failed(batch, f"Kafka: {error}", stop)
            return
        except _Wedged as e:
            self._renew_producer(str(e), stop)
            self._failed(batch, str(e), stop)
            return
        self.stats.batches += 1
        self.stats.consumed += len(batch)
        self.stats.produced += len(outputs)
        if self._failures:
            self._health.recovered(f"recovered after {self._failures} failed attempts")
            self._failures = 0
        if self._on_committed is not None:
            self._on_committed(batch, outputs)

    def _commit(self, batch: list, outputs: list[Output], stop: threading.Event) -> None:
        self._producer.begin_transaction()
        for out in outputs:
            self._produce(out)
        ends: dict[tuple[str, int], int] = {}
        for m in batch:
            ends[(m.topic(), m.partition())] = max(ends.get((m.topic(), m.partition()), 0), m.offset() + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
        group, producer = self._consumer.consumer_group_metadata(), self._producer
        self._until_done(lambda: producer.send_offsets_to_transaction(offsets, group, KAFKA_TIMEOUT_S),
                         stop, "sending the offsets")
        # A commit that timed out (a broker down) may be under way: it is only ever repeated,
        # never aborted, until the coordinator answers.
        self._until_done(lambda: producer.commit_transaction(KAFKA_TIMEOUT_S), stop, "committing")

    def _produce(self, out: Output) -> None:
        while True:
            try:
                # timestamp 0: librdkafka stamps the time of producing.
                self._producer.produce(out.topic, key=out.key, value=out.value, headers=list(out.headers),
                                       timestamp=out.timestamp_ms or 0)
                return
            except BufferError:  # the local queue is full: let it drain
                self._producer.poll(0.1)

    def _until_done(self, call: Callable[[], object], stop: threading.Event, what: str) -> None:
        """call(), again after a backoff while it fails with an error librdkafka says may be
        retried (a transactional call may be repeated); raises any other error, _Wedged when a
        call does not return long after its timeout, or _Stopped."""
        attempt = 0
        while True:
            try:
                self._within_deadline(call, what)
                return
            except KafkaException as e:
                error = e.args[0]
                if error.fatal() or error.txn_requires_abort() or not error.retriable():
                    raise
                attempt += 1
                self._health.stuck(f"{what}: {error}; trying again")
            if stop.wait(backoff_delay(attempt, self.retry_backoff, self.max_backoff)):
                raise _Stopped()

    def _within_deadline(self, call: Callable[[], object], what: str) -> None:
        """call() in the caller thread, waiting at most twice its timeout. librdkafka (2.16) can
        block in send_offsets_to_transaction for good once the group coordinator it had cached
        went away (librdkafka issues 5456, 5511): past the deadline the call is given up on, with
        the thread it blocks, and the producer is replaced (_Wedged)."""
        if not self._caller.call(call, timeout=2 * KAFKA_TIMEOUT_S):
            self._caller = _Caller()  # the old one's thread stays blocked in librdkafka
            raise _Wedged(f"{what}: no answer from librdkafka within {2 * KAFKA_TIMEOUT_S} s")

    def _abort(self, stop: threading.Event) -> None:
        producer = self._producer
        try:
            self._until_done(lambda: producer.abort_transaction(KAFKA_TIMEOUT_S), stop, "aborting")
        except KafkaException as e:
            if e.args[0].fatal():
                self._renew_producer(str(e.args[0]), stop)
            else:  # no transaction was open (begin_transaction failed): nothing to abort
                log.debug("abort: %s", e)
        except _Wedged as e:
            self._renew_producer(str(e), stop)

    def _renew_producer(self, why: str, stop: threading.Event) -> None:
        """A fatal error (or a wedged call) leaves the producer unusable: a new one with the same
        transactional.id fences it and aborts what it left open.

        "Fenced" is one of those errors: the coordinator fences a producer whose transaction
        outlived transaction.timeout.ms (a broker down for longer), by bumping its epoch. Were
        two processes to share a transactional id, they would fence each other in turn: each
        batch still commits once, and this line in both logs says so."""
        log.error("transactional producer unusable (%s): starting a new one (were this to repeat, "
                  "two processes would share the transactional id)", why)
        self._producer = self._clients.producer(self._producer_config)
        self._register(stop)

    def _register(self, stop: threading.Event) -> None:
        """_init_transactions, with a new producer each time the call wedges."""
        while True:
            try:
                self._init_transactions(stop)
                return
            except _Wedged as e:
                log.error("%s; trying again with a new producer", e)
                self._producer = self._clients.producer(self._producer_config)

    def _failed(self, batch: list, why: str, stop: threading.Event) -> None:
        self.stats.retried += 1
        self._health.stuck(f"stuck on {_describe(batch)}, retrying until it passes: {why}")
        self._rewind(batch)
        stop.wait(self._backoff())

    def _rewind(self, batch: list) -> None:
        """Seek each partition of the batch back to its first record in the batch."""
        starts: dict[tuple[str, int], int] = {}
        for m in batch:
            where = (m.topic(), m.partition())
            starts[where] = min(starts.get(where, m.offset()), m.offset())
        for (topic, partition), offset in starts.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as e:  # revoked meanwhile: its new owner reads it from the commit
                log.debug("no rewind of %s[%d]: %s", topic, partition, e)

    def _backoff(self) -> float:
        self._failures += 1
        return backoff_delay(self._failures, self.retry_backoff, self.max_backoff)

    # ------------------------------------------------------------ health and lag

    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet processed per assigned partition, as the loop last measured them (at most
        5 s ago). Safe to call from another thread."""
        return self._lag.last()

    def _positions(self) -> dict[tuple[str, int], int]:
        """The next offset to process of each assigned partition that has one yet (a position
        steps over commit markers and the batch in hand is not done: both as wanted for lag)."""
        return {(p.topic, p.partition): p.offset for p in self._consumer.position(self._consumer.assignment())
                if p.offset >= 0}

    def close(self) -> None:
        """Leave the group (no offsets to commit: they are in the transactions) and close."""
        self._consumer.close()
        try:
            self._producer.flush(10)
        except KafkaException as e:  # a fatal error ended the run: nothing of ours is queued
            log.debug("flush on close: %s", e)


class _Stopped(Exception):
    """`stop` was set while a transactional call was being retried."""


class _Caller:
    """One daemon thread that runs calls handed to it: a call it never comes back from holds
    this thread only (a daemon does not keep the process from exiting), not the caller."""

    def __init__(self):
        self._calls: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, name="transactional-call", daemon=True).start()

    def _serve(self) -> None:
        while True:
            call, outcome, done = self._calls.get()
            try:
                call()
            except BaseException as e:  # handed back to the caller
                outcome.append(e)
            done.set()

    def call(self, call: Callable[[], object], timeout: float) -> bool:
        """Run call() on the thread; False if it did not return within `timeout` seconds.
        Raises what the call raised."""
        outcome: list[BaseException] = []
        done = threading.Event()
        self._calls.put((call, outcome, done))
        if not done.wait(timeout):
            return False
        if outcome:
            raise outcome[0]
        return True


class _Wedged(Exception):
    """A transactional call did not return long after its timeout: the producer is unusable."""



def _describe(batch: list) -> str:
    m = batch[0]
    return f"a batch of {len(batch)} from {m.topic()}[{m.partition()}]@{m.offset()}"
