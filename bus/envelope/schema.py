"""Kafka Connect schemas derived from protobuf descriptors.

The schema is what `org.apache.kafka.connect.json.JsonConverter` (with
schemas.enable=true) reads from the "schema" half of an envelope. It is derived
from the message descriptor, never written by hand, so the Connect type names
are always the lower-case ones Connect knows ("string", not "String").

Mapping (field kind -> Connect schema):
  string -> string              bool -> boolean
  int32, sint32, sfixed32 -> int32
  int64, sint64, sfixed64 -> int64
  uint32, fixed32 -> int64      (every uint32 fits)
  uint64, fixed64 -> Decimal(scale 0) logical type: lossless above 2^63-1,
                     where int64 would overflow. The Debezium JDBC sink maps it
                     to a DECIMAL column.
  float -> float                double -> double
                     (JsonConverter's names for Connect's FLOAT32/FLOAT64;
                     "float32"/"float64" are rejected as unknown schema types)
  bytes -> bytes (base64 in the payload)
  enum -> string (the value's name)
  google.protobuf.Timestamp -> Timestamp logical type (int64 epoch millis)
  google.protobuf.*Value wrappers -> the wrapped type, optional
  other message -> struct named after the message
  repeated -> array, map -> map

Optional (null when unset): message fields (structs, timestamps, wrappers),
proto3 `optional` scalars and oneof members. Plain proto3 scalars, repeated and
map fields are required and always present. A oneof becomes one optional field
per member, at most one of them non-null: Connect has no union type, and this
keeps the members as plain columns for sinks.

Each kind's schema is built by its record in bus.kinds, beside its encoder and
decoder; this module caches the schema of each message type.
"""

import copy

from google.protobuf.descriptor import Descriptor

from bus.envelope.kinds import DATE, DECIMAL, TIME, TIMESTAMP, WRAPPERS, is_map, is_optional, struct_schema

__all__ = ["DATE", "DECIMAL", "TIME", "TIMESTAMP", "WRAPPERS", "cached_schema", "connect_schema", "descriptor_of",
           "is_map", "is_optional"]

_cache: dict[Descriptor, dict] = {}


def descriptor_of(message_class_or_descriptor):
    if isinstance(message_class_or_descriptor, Descriptor):
        return message_class_or_descriptor
    return message_class_or_descriptor.DESCRIPTOR


def connect_schema(message_class_or_descriptor):
    """The Connect struct schema of a message type (a fresh copy; built once per type)."""
    return copy.deepcopy(cached_schema(descriptor_of(message_class_or_descriptor)))


def cached_schema(descriptor):
    """The shared, cached schema dict of `descriptor`: do not mutate it."""
    schema = _cache.get(descriptor)
    if schema is None:
        schema = _cache[descriptor] = struct_schema(descriptor)
    return schema
