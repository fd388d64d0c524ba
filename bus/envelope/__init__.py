"""Protobuf message <-> Kafka Connect JSON envelope ({"schema": ..., "payload": ...}).

The envelope is what JsonConverter with schemas.enable=true reads. This module is
the public API (encode, decode, to_envelope, EnvelopeError) and the JSON text; the
parts live beside it:
- bus.kinds: one record per kind of value (string, int32, timestamp, struct,
  array, ...) holding its Connect schema, its encoder and its decoder;
- bus.schema: the Connect schema of a message type, from those records;
- bus.codec: the codec of one message type (payload dict <-> message), with a
  plain and a fast path that give the same results;
- bus.evolution: reading envelopes of another version of the schema (rolling
  upgrades);
- bus.serde: the codec as confluent-kafka Serializer and Deserializer.

Decisions (see bus.schema for the type mapping):
- Timestamp: epoch millis; sub-millisecond nanos are truncated (floored) on
  encode, so decode(encode(m)) only equals m for whole-millisecond timestamps.
- Decoding is strict, except for what a rolling upgrade needs (bus.evolution):
  a writer's schema may add fields, lack optional ones, or require what the
  reader has as optional; anything else is refused, naming the field, and the
  consumer sends the message to its dead-letter topic. Optional fields may be
  absent from the payload (read as null), as JsonConverter does.
- Floats must be finite: JSON has no NaN/Infinity and JsonConverter rejects them.
  Connect reads JSON numbers as BigDecimal, so a -0.0 arrives there as 0.0
  (our own decode keeps -0.0).
- A Decimal (uint64) is decoded from base64 or, as JsonConverter also accepts,
  from a JSON number.
"""

import copy
import json
from collections.abc import Callable
from typing import Any

from bus.envelope.codec import codec_for
from bus.envelope.evolution import check_schema, reader_view
from bus.envelope.kinds import EnvelopeError

__all__ = ["EnvelopeError", "decode", "encode", "to_envelope"]


def _reject_constant(name):
    raise EnvelopeError(f"{name} is not valid JSON")


_json_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_loads = _json_decoder.decode
# (text, index) -> (value, end): the scanner raw_decode calls, without its wrapper
# (an attribute JSONDecoder sets, which typeshed does not declare).
_scan: Callable[[str, int], tuple[Any, int]] = getattr(_json_decoder, "scan_once")

# The codec of each message class, looked up by class (encode and decode are the hot path).
_by_class: dict = {}


def _codec(cls):
    codec = _by_class.get(cls)
    if codec is None:
        codec = _by_class[cls] = codec_for(cls.DESCRIPTOR, cls)
    return codec


# --- public API -------------------------------------------------------------

def to_envelope(msg):
    """The envelope of `msg` as a dict (a fresh schema copy, for inspection)."""
    codec = _codec(type(msg))
    return {"schema": copy.deepcopy(codec.schema), "payload": codec.encode_plain(msg)}


def encode(msg):
    """The envelope of `msg` as compact UTF-8 JSON bytes."""
    codec = _by_class.get(type(msg)) or _codec(type(msg))
    # The schema's text is spliced in, never serialised again.
    return (codec.prefix + codec.encode_json(msg) + "}").encode()


def decode(data, message_class):
    """The `message_class` message carried by an envelope (bytes, str or dict).

    Raises EnvelopeError naming the offending field when the envelope's schema
    or payload does not fit the message type, and for any data that is no
    envelope at all.
    """
    codec = _by_class.get(message_class) or _codec(message_class)
    try:
        if type(data) is bytes:
            data = data.decode()
        if type(data) is str and data.startswith(codec.prefix):
            # Our own schema, byte for byte: parse only the payload.
            try:
                payload, end = _scan(data, len(codec.prefix))
            except (StopIteration, ValueError):
                pass
            else:
                if (end == len(data) - 1 and data[end] == "}") or data[end:].strip(" \t\r\n") == "}":
                    if type(payload) is dict:
                        msg = codec.decode_fast(payload)  # ours to change: no copy
                        if msg is not None:
                            return msg
                        payload, end = _scan(data, len(codec.prefix))  # as it was
                    return codec.decode_plain(payload)
        return _decode_other(data, codec)
    except UnicodeDecodeError as e:
        raise EnvelopeError(f"envelope is not UTF-8: {e}") from None
    except RecursionError:
        # The JSON parser recurses once per nesting level: "[" * 100000 exhausts the stack.
        raise EnvelopeError("envelope is nested too deeply") from None


def _decode_other(data, codec):
    """Any envelope: parsed whole, its schema checked against ours."""
    if data is None:
        raise EnvelopeError("no envelope: the value is null (a tombstone)")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    if isinstance(data, str):
        try:
            data = _loads(data)
        except ValueError as e:
            if isinstance(e, EnvelopeError):
                raise
            raise EnvelopeError(f"envelope is not JSON: {e}") from None
    # Exactly these two, as JsonConverter requires: anything else beside them is no envelope.
    if type(data) is not dict or "schema" not in data or "payload" not in data or len(data) != 2:
        raise EnvelopeError('envelope must be a JSON object with "schema" and "payload" and nothing else')
    payload = data["payload"]
    if data["schema"] != codec.schema:  # the cheap check passes for our own envelopes
        check_schema(data["schema"], codec.schema)
        payload = reader_view(payload, data["schema"], codec.schema)
    return codec.decode(payload)
