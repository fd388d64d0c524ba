"""The envelope codec as confluent-kafka Serializer / Deserializer (no broker)."""

import json

import pytest
from confluent_kafka import SerializingProducer
from confluent_kafka.serialization import Deserializer, MessageField, SerializationContext, Serializer
from google.protobuf.timestamp_pb2 import Timestamp

from bus import producer as bus_producer
from bus.envelope import EnvelopeError, decode, encode
from bus.envelope.serde import EnvelopeDeserializer, EnvelopeSerializer
from ordersync.order.v1 import order_event_pb2
from tests.doubles import KafkaDoubles

OrderPlaced = order_event_pb2.OrderPlaced
ORDER = OrderPlaced(order_id="o-1", user_id="u-1", product_id="CATALOG-001", qty=2, unit_price=150,
                    total_price=300, created_at=Timestamp(seconds=1_700_000_000))
VALUE = SerializationContext("orders", MessageField.VALUE, headers=[("trace", b"1")])


def test_they_are_confluent_kafka_serializers():
    assert isinstance(EnvelopeSerializer(), Serializer)
    assert isinstance(EnvelopeDeserializer(OrderPlaced), Deserializer)


def test_serializer_writes_our_envelope_and_the_deserializer_reads_it():
    data = EnvelopeSerializer()(ORDER, VALUE)
    assert data == encode(ORDER)
    assert json.loads(data)["schema"]["name"] == "ordersync.order.v1.OrderPlaced"
    assert EnvelopeDeserializer(OrderPlaced)(data, VALUE) == ORDER
    assert EnvelopeDeserializer(OrderPlaced)(data) == ORDER  # the context is optional


def test_none_stays_none_both_ways():
    assert EnvelopeSerializer()(None, VALUE) is None
    assert EnvelopeDeserializer(OrderPlaced)(None, VALUE) is None  # a tombstone is no event


def test_serializer_refuses_what_is_no_protobuf_message():
    with pytest.raises(TypeError, match="protobuf messages, not dict"):
        EnvelopeSerializer()({"order_id": "o-1"}, VALUE)


def test_deserializer_refuses_an_envelope_that_does_not_fit_naming_the_field():
    env = json.loads(encode(ORDER))
    env["payload"]["qty"] = "2"
    with pytest.raises(EnvelopeError, match="expected an integer") as info:
        EnvelopeDeserializer(OrderPlaced)(json.dumps(env).encode(), VALUE)
    assert info.value.path == "qty"
    with pytest.raises(EnvelopeError, match="not JSON"):
        EnvelopeDeserializer(OrderPlaced)(b"{", VALUE)


def test_a_serializing_producer_publishes_what_the_serializer_writes():
    delivered = []
    producer = SerializingProducer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0,
                                    "value.serializer": EnvelopeSerializer()})
    producer.produce("orders", key="o-1", value=ORDER,
                     on_delivery=lambda err, msg: delivered.append(msg.value()))
    producer.purge()  # no broker: the queued message is purged, and its callback served
    producer.flush(5)
    assert delivered == [encode(ORDER)]


def test_event_producer_publishes_what_the_serializer_writes_and_answers_where_it_went():
    kafka = KafkaDoubles()
    with bus_producer.EventProducer("orders", "order_id",
                                     client={"bootstrap.servers": "127.0.0.1:1"}, clients=kafka.clients) as producer:
        assert [producer.publish(ORDER), producer.publish(ORDER)] == [(0, 0), (0, 1)]  # the offsets delivered
    values = [value for _, _, value, _ in kafka.producer.written]
    assert values == [EnvelopeSerializer()(ORDER, VALUE)] * 2
    assert decode(values[0], OrderPlaced) == ORDER
