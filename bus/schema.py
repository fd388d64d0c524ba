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
"""

import copy

from google.protobuf.descriptor import Descriptor, FieldDescriptor

TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
DECIMAL = "org.apache.kafka.connect.data.Decimal"

# Connect type (or our own kind name, for the ones needing conversion) per
# protobuf scalar type.
_SCALAR_KINDS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "uint64",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_ENUM: "enum",
}

WRAPPERS = frozenset(
    "google.protobuf." + n
    for n in ("DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value",
              "UInt32Value", "BoolValue", "StringValue", "BytesValue")
)

_cache: dict[Descriptor, dict] = {}


def descriptor_of(message_class_or_descriptor):
    if isinstance(message_class_or_descriptor, Descriptor):
        return message_class_or_descriptor
    return message_class_or_descriptor.DESCRIPTOR


def value_kind(field):
    """The kind of one value of `field` (an element, for repeated fields).

    One of the _SCALAR_KINDS values, "timestamp", "struct", or
    ("wrapper", inner_kind).
    """
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return "timestamp"
        if name in WRAPPERS:
            return ("wrapper", value_kind(field.message_type.fields_by_name["value"]))
        return "struct"
    try:
        return _SCALAR_KINDS[field.type]
    except KeyError:
        raise TypeError(f"{field.full_name}: protobuf field type {field.type} has no Connect mapping")


def is_map(field):
    return (field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


def is_optional(field):
    """Whether a (non-repeated) field is an optional Connect field, null when unset."""
    return field.has_presence and not field.is_required


def connect_schema(message_class_or_descriptor):
    """The Connect struct schema of a message type (a fresh copy; built once per type)."""
    return copy.deepcopy(cached_schema(descriptor_of(message_class_or_descriptor)))


def cached_schema(descriptor):
    """The shared, cached schema dict of `descriptor`: do not mutate it."""
    schema = _cache.get(descriptor)
    if schema is None:
        schema = _cache[descriptor] = _struct_schema(descriptor, optional=False, stack=())
    return schema


def _struct_schema(descriptor, optional, stack):
    if descriptor.full_name in stack:
        # Connect schemas have no references, so a recursive type would be infinite.
        raise TypeError(f"{descriptor.full_name} is recursive; a Connect schema cannot express it")
    stack = stack + (descriptor.full_name,)
    return {
        "type": "struct",
        "name": descriptor.full_name,
        "optional": optional,
        "fields": [dict(field=f.name, **_field_schema(f, stack)) for f in descriptor.fields],
    }


def _field_schema(field, stack):
    if is_map(field):
        entry = field.message_type
        return {
            "type": "map",
            "keys": _value_schema(entry.fields_by_name["key"], False, stack),
            "values": _value_schema(entry.fields_by_name["value"], False, stack),
            "optional": False,
        }
    if field.is_repeated:
        return {"type": "array", "items": _value_schema(field, False, stack), "optional": False}
    return _value_schema(field, is_optional(field), stack)


def _value_schema(field, optional, stack):
    kind = value_kind(field)
    if kind == "struct":
        return _struct_schema(field.message_type, optional, stack)
    if isinstance(kind, tuple):  # a wrapper: the wrapped scalar
        kind = kind[1]
    return kind_schema(kind, optional)


def kind_schema(kind, optional):
    if kind == "timestamp":
        return {"type": "int64", "name": TIMESTAMP, "version": 1, "optional": optional}
    if kind == "uint64":
        # Decimal with scale 0: payload is base64 of the big-endian two's-complement
        # unscaled value (JsonConverter's default decimal.format=BASE64). The
        # precision (2^64-1 has 20 digits) is the parameter sinks read to size the
        # column: without it the Debezium JDBC sink emits "decimal(38,-1)", which
        # MariaDB refuses.
        return {"type": "bytes", "name": DECIMAL, "version": 1,
                "parameters": {"scale": "0", "connect.decimal.precision": "20"},
                "optional": optional}
    if kind == "uint32":
        return {"type": "int64", "optional": optional}
    if kind == "enum":
        return {"type": "string", "optional": optional}
    return {"type": kind, "optional": optional}
