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

# A broker that stops answering but keeps its connections open (frozen, cut off by a network
# fault: no RST as after a kill) holds the produce requests in flight to it until
# socket.timeout.ms, 60 s by default, though new leaders take over its partitions in seconds;
# every caller whose order went there waits as long. With 5 s the request is given up, the
# connection closed (socket.max.fails=1), the metadata refreshed and the batch resent to the new
# leader: the idempotent producer resends with its sequence numbers, so nothing is duplicated.
# request.timeout.ms, how long the broker itself waits for the replicas of acks=all, stays below
# it so that a slow ISR answers with a retriable error, not a connection torn down.
PRODUCE_TIMEOUTS = {"socket.timeout.ms": 5_000, "request.timeout.ms": 4_000}


@dataclasses.dataclass(frozen=True)
class KafkaClients:
    """The classes a client is made with: each takes a librdkafka configuration dict."""
    consumer: type = Consumer
    producer: type = Producer


LIBRDKAFKA = KafkaClients()
