"""The envelope codec as confluent-kafka's Serializer and Deserializer.

With them, a SerializingProducer or DeserializingConsumer of one's own publishes and
reads the same Connect JSON envelopes as EventProducer and EventConsumer:

    producer = SerializingProducer({"bootstrap.servers": ..., "value.serializer": EnvelopeSerializer()})
    producer.produce("orders", key=order.order_id, value=order)

    consumer = DeserializingConsumer({..., "value.deserializer": EnvelopeDeserializer(OrderPlaced)})
    event = consumer.poll(1.0).value()  # an OrderPlaced

The topic and headers in the SerializationContext do not change the envelope.
"""

from confluent_kafka.serialization import Deserializer, SerializationContext, Serializer
from google.protobuf.message import Message

from bus import envelope


class EnvelopeSerializer(Serializer):
    """A protobuf message -> its envelope (compact UTF-8 JSON bytes); None stays None."""

    __slots__: list[str] = []

    def __call__(self, obj, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None:
            return None
        if not isinstance(obj, Message):
            raise TypeError(f"EnvelopeSerializer writes protobuf messages, not {type(obj).__name__}")
        return envelope.encode(obj)


class EnvelopeDeserializer(Deserializer):
    """An envelope -> a `message_class` message; None (a tombstone) stays None.

    An envelope that does not fit raises EnvelopeError naming the field (a
    DeserializingConsumer wraps it in ValueDeserializationError, as `.exception`).
    """

    __slots__ = ["message_class"]

    def __init__(self, message_class):
        self.message_class = message_class

    def __call__(self, value, ctx: SerializationContext | None = None):
        if value is None:
            return None
        return envelope.decode(value, self.message_class)
