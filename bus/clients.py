"""How the bus makes its Kafka clients: librdkafka's classes and the settings every client shares.

Every client of the bus (EventConsumer, EventProducer, ExactlyOnceProcessor, the dead-letter
writer) is made through a KafkaClients, LIBRDKAFKA unless told otherwise: the tests give
theirs, the doubles of tests/doubles.py, with no module's globals patched. The settings below are
chosen so that the clients recover fast; each can be overridden through a client's extra_config.
"""

import dataclasses

from confluent_kafka import Consumer, Producer

# Between attempts to reach a broker that went away librdkafka waits up to
# reconnect.backoff.max.ms (default 10 s); with 1 s a returning broker is used
# again about a second after it is back.
RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}

# A consumer that died is noticed after session.timeout.ms (default 45 s): with
# 10 s its partitions move to another member (or back to it, restarted) quickly.
# Heartbeats must come several times per session timeout.
CONSUMER_GROUP = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}


@dataclasses.dataclass(frozen=True)
class KafkaClients:
    """The classes a client is made with: each takes a librdkafka configuration dict."""
    consumer: type = Consumer
    producer: type = Producer


LIBRDKAFKA = KafkaClients()
