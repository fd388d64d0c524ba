"""CompactedView: a compacted topic kept as {key: its latest message}, followed from its beginning.

Every instance reads everything: the partitions are assign()ed, no group is joined and nothing is
committed, so a restart reads the topic again from its first offset (compaction keeps that short:
one record per key, plus what came since the last clean). Each value is decoded with the bus's own
envelope decoder into `message_class`; a null value (a tombstone) removes its key. A record that
cannot be decoded is logged and counted, and its key keeps the message it had: the view never
stops for one record. Records of one partition are applied in offset order; a key is in one
partition, so each key's changes are applied in the order they were written.

How current the view is: about once per `measure_every` seconds its thread asks the broker for
every partition's high watermark. Once the view's position reaches those ends, it holds
everything written before that moment (`current_as_of`). The first such moment is its readiness
(`ready`, told once to `on_ready`): what the topic held when the view started, read to its end.
`behind_s()` is how long ago that moment is, so a view that falls behind, or cannot reach the
broker, shows it as growing seconds; `lag()` the records behind per partition, as last measured.
Only the view's own thread calls the Kafka consumer (poll(), run()); the readers (get(), lag(),
behind_s(), stats) may be any thread's.
"""

import dataclasses
import logging
import threading
import time

from confluent_kafka import KafkaException, TopicPartition

from bus import envelope
from bus.clients import LIBRDKAFKA, RECONNECT, KafkaClients

log = logging.getLogger(__name__)

MEASURE_EVERY = 1.0  # seconds between two asks for the high watermarks
_WATERMARK_TIMEOUT = 1.0
_POLL_BATCH, _POLL_WAIT = 500, 0.2


@dataclasses.dataclass
class ViewStats:
    """What the view did, for a metrics exporter (read from another thread)."""
    applied: int = 0  # records applied (changes and tombstones)
    undecodable: int = 0  # records that could not be decoded (logged, skipped)
    newest_change_ms: int | None = None  # the newest record timestamp applied (epoch millis)


class CompactedView:
    def __init__(self, topic: str, message_class, *, client: dict, clients: KafkaClients = LIBRDKAFKA,
                 on_ready=None, measure_every: float = MEASURE_EVERY, clock=time.monotonic):
        """`client`: the librdkafka settings every client of the process shares
        (ordersync.config.Settings.kafka_client()); `on_ready()`: called once, from the view's
        thread, when the topic as it was at the start has been read to its end."""
        self.topic, self.message_class = topic, message_class
        self.on_ready, self._measure_every, self._clock = on_ready, measure_every, clock
        # group.id only because librdkafka asks for one: assign() joins no group, nothing commits.
        # read_committed: the source connector writes in transactions (exactly-once).
        self._consumer = clients.consumer({**client, "group.id": f"ordersync-view-{topic}",
                                           "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                           "isolation.level": "read_committed", **RECONNECT,
                                           # A read_committed fetch can wait out its whole fetch.wait.max.ms
                                           # (500 ms) after a commit: a price change -> order p99 1.33 s;
                                           # 100 ms: 0.44 s (bench/product_view_cost.py).
                                           "fetch.wait.max.ms": 100})
        self.stats = ViewStats()
        self._items: dict[str, object] = {}
        self._lock = threading.Lock()
        self._partitions: list[TopicPartition] = []
        self._lag: dict[int, int] = {}
        self._target: tuple[float, dict[int, tuple[int, int]]] | None = None  # (when asked, (low, high) then)
        self._asked_at = float("-inf")
        self.current_as_of: float | None = None  # clock() of the newest moment the view holds all of
        self.ready = False

    # --- the readers (any thread) ---------------------------------------------------------

    def get(self, key: str):
        """The latest message of `key`, or None (never written, or deleted)."""
        with self._lock:
            return self._items.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def lag(self) -> dict[int, int]:
        """{partition: records behind its high watermark}, as last measured."""
        return dict(self._lag)

    def behind_s(self) -> float | None:
        """Seconds since the newest moment the view held everything of the topic (None: not yet)."""
        at = self.current_as_of
        return None if at is None else max(0.0, self._clock() - at)

    # --- the view's thread ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Follow the topic until `stop` is set (ordersync.serving.grpc_server.run_in_background)."""
        while not stop.is_set():
            self.poll()

    def poll(self) -> None:
        """One round: assign the partitions (the first time), apply what came, measure."""
        if not self._partitions and not self._assign():
            time.sleep(_POLL_WAIT)
            return
        for m in self._consumer.consume(_POLL_BATCH, _POLL_WAIT):
            if m.error():
                if m.error().fatal():
                    raise KafkaException(m.error())
                log.debug("%s: %s", self.topic, m.error())
                continue
            self._apply(m)
        self._measure()

    def close(self) -> None:
        self._consumer.close()

    def _assign(self) -> bool:
        try:
            meta = self._consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
        except KafkaException as e:
            log.warning("%s: no metadata yet (%s)", self.topic, e)
            return False
        if meta is None or meta.error is not None or not meta.partitions:
            log.warning("%s: no such topic yet (%s); the view waits for it", self.topic,
                        None if meta is None else meta.error)
            return False
        starts = []
        for p in sorted(meta.partitions):
            try:
                low, _high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                                  timeout=_WATERMARK_TIMEOUT)
            except KafkaException as e:
                log.warning("%s: first offset of partition %d not read (%s)", self.topic, p, e)
                return False
            starts.append(TopicPartition(self.topic, p, low))
        self._consumer.assign(starts)
        self._partitions = [TopicPartition(self.topic, tp.partition) for tp in starts]
        log.info("%s: reading %d partitions from their beginning", self.topic, len(starts))
        return True

    def _apply(self, m) -> None:
        key = m.key()
        where = f"{self.topic}[{m.partition()}]@{m.offset()}"
        if key is None:
            self.stats.undecodable += 1
            log.warning("%s: a record without a key, skipped", where)
            return
        key = key.decode() if isinstance(key, bytes) else key
        value = m.value()
        if value is None:
            with self._lock:
                self._items.pop(key, None)
        else:
            try:
                message = envelope.decode(value, self.message_class)
            except envelope.EnvelopeError as e:
                self.stats.undecodable += 1
                log.warning("%s: key %s not decoded as %s, its previous value kept: %s",
                            where, key, self.message_class.DESCRIPTOR.full_name, e)
                return
            with self._lock:
                self._items[key] = message
        self.stats.applied += 1
        _kind, ts = m.timestamp()
        if ts is not None and ts > 0 and (self.stats.newest_change_ms is None or ts > self.stats.newest_change_ms):
            self.stats.newest_change_ms = ts

    def _measure(self) -> None:
        """Ask for the ends every measure_every seconds; once the position reaches the ends asked
        for at T, the view holds everything written before T."""
        positions = {tp.partition: tp.offset for tp in self._consumer.position(self._partitions)}
        if self._target is not None:
            asked_at, target = self._target
            if all(low == end or positions.get(p, -1) >= end for p, (low, end) in target.items()):
                self.current_as_of, self._target = asked_at, None
                if not self.ready:
                    self.ready = True
                    log.info("%s: read to its end (%d keys)", self.topic, len(self))
                    if self.on_ready is not None:
                        self.on_ready()
        now = self._clock()
        if now - self._asked_at < self._measure_every:
            return
        self._asked_at = now
        ends: dict[int, tuple[int, int]] = {}
        for tp in self._partitions:
            try:
                ends[tp.partition] = self._consumer.get_watermark_offsets(tp, timeout=_WATERMARK_TIMEOUT)
            except KafkaException as e:
                log.debug("%s: end of partition %d not read (%s)", self.topic, tp.partition, e)
                return  # no new moment: behind_s() keeps growing
        # An empty partition (low == high) is at its end whatever the position says.
        self._lag = {p: 0 if low == high else max(0, high - max(positions.get(p, low), low))
                     for p, (low, high) in ends.items()}
        if self._target is None:  # the oldest moment not reached yet stays the one to reach
            self._target = (now, ends)
