"""How long applied_orders keeps a row: while Kafka can still deliver the row's event.

A row of applied_orders makes a second delivery of an accepted event a no-op. The Catalog reads
only the accepted topic, where the gate writes each order id once (gate.first_events: a later event
of an order id is a duplicate or refused), so a second delivery is the same record read again: a
rebalance, a restart before a commit, the group's offsets reset or expired. Kafka serves no
offset below a partition's log start, which its retention (retention.ms, retention.bytes, or
delete-records) moves up; a row whose event lies below it can dedupe nothing, and is deleted.
The dedupe stays exact whatever the topic's retention, and the table holds about what the topic
holds.
"""

import logging
import threading

from confluent_kafka import KafkaException

from bus.clients import LIBRDKAFKA, KafkaClients
from bus.failures import PermanentError, TransientError
from bus.topic_reader import NoSuchTopic, watermarks
from catalog_svc import stock

log = logging.getLogger("catalog_svc")


class AppliedRetention:
    """Trims applied_orders against the accepted topic's log starts, every `every_s` seconds."""

    def __init__(self, engine, topic: str, client: dict, every_s: float, clients: KafkaClients = LIBRDKAFKA,
                 on_trimmed=lambda count: None):
        """`client`: the process's librdkafka settings (ordersync.config.Settings.kafka_client());
        `on_trimmed(count)`: told the rows each round deleted (the metrics)."""
        self._engine = engine
        self.topic = topic
        self._every_s = every_s
        self._on_trimmed = on_trimmed
        # Never subscribes: it only asks for the partitions' first offsets, no group is joined.
        self._consumer = clients.consumer({**client, "group.id": "ordersync-applied-retention",
                                           "enable.auto.commit": False, "log_level": 2})

    def log_starts(self) -> dict[int, int]:
        """{partition: Kafka's first offset} of the topic ({} for no such topic yet). Raises
        KafkaException for a topic it may not describe, or a broker that does not answer."""
        try:
            return {p: low for p, (low, _end) in watermarks(self._consumer, self.topic).items()}
        except NoSuchTopic:
            return {}

    def trim_once(self) -> int:
        """One round: the rows deleted. Raises KafkaException, TransientError or PermanentError."""
        count = stock.trim_applied(self._engine, self.log_starts())
        self._on_trimmed(count)
        if count:
            log.info("applied_orders: %d rows trimmed (their events are below %s's log start)", count, self.topic)
        return count

    def run(self, stop: threading.Event) -> None:
        """Trim every `every_s` until `stop`, then close; a failed round is logged and the next one tries again."""
        try:
            while not stop.wait(self._every_s):
                try:
                    self.trim_once()
                except (KafkaException, TransientError, PermanentError) as e:
                    log.warning("applied_orders not trimmed this round (retried in %.0fs): %s", self._every_s, e)
        finally:
            # Here, not from the thread that stops the process: never closed while a round uses it.
            self.close()

    def close(self) -> None:
        """Close its Kafka client (run() does, as it ends; a caller of trim_once() does it)."""
        self._consumer.close()
