"""A fatal librdkafka error stops the consumer, whichever way librdkafka reports it."""
from confluent_kafka import KafkaError

from bus.consumer import _fatal


def test_the_fatal_event_counts_as_fatal():
    # How a fenced static member's commit failure arrives from poll(): code _FATAL, fatal() False.
    assert _fatal(KafkaError(KafkaError._FATAL, "Fatal error: Broker: Static consumer fenced"))


def test_a_fatal_error_counts_as_fatal():
    assert _fatal(KafkaError(KafkaError.FENCED_INSTANCE_ID, fatal=True))


def test_a_transport_error_does_not():
    assert not _fatal(KafkaError(KafkaError._TRANSPORT))
