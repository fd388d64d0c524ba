"""Producer and consumer behaviour that needs no broker."""

import os
import signal
import threading

import pytest

from bus.consumer import install_signal_handlers
from bus.producer import EventProducer, PublishError
from ordersync.order.v1 import order_event_pb2


def test_publish_without_a_broker_raises_publish_error_after_the_timeout():
    # Port 1 on loopback: nothing listens, so no acknowledgement can come.
    with EventProducer("orders", "order_id", client={"bootstrap.servers": "127.0.0.1:1"},
                       extra_config={"message.timeout.ms": 60_000}) as producer:
        with pytest.raises(PublishError, match="no acknowledgement .* for key o-1"):
            producer.publish(order_event_pb2.OrderPlaced(order_id="o-1"), timeout=0.5)
        producer._producer.purge()  # do not let close() wait for the lost message


def test_publish_failure_carries_the_kafka_error():
    with EventProducer("orders", "order_id", client={"bootstrap.servers": "127.0.0.1:1"},
                       extra_config={"message.timeout.ms": 300}) as producer:
        with pytest.raises(PublishError) as info:
            producer.publish(order_event_pb2.OrderPlaced(order_id="o-2"), timeout=10)
    assert info.value.kafka_error is not None
    assert "delivery to orders failed for key o-2" in str(info.value)


def test_publish_many_of_nothing_is_nothing():
    with EventProducer("orders", "order_id", client={"bootstrap.servers": "127.0.0.1:1"}) as producer:
        assert producer.publish_many([]) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_sets_the_stop_event(signum):
    before = signal.getsignal(signum)
    stop = threading.Event()
    try:
        install_signal_handlers(stop)
        os.kill(os.getpid(), signum)
        assert stop.wait(5)
    finally:
        signal.signal(signum, before)
