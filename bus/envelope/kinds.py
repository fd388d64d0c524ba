"""One record per kind of protobuf value: its Connect schema, its encoder, its decoder.

`kind_of(field)` is the one lookup from a field to its record; everything that
depends on a field's kind (bus.schema's Connect schema, bus.codec's payload
encoder and decoder) goes through it, so a kind is added or changed in one place.
The mapping itself is listed in bus.schema's docstring.

A record holds builders, since some kinds need the field to do their work (an
enum's value names, a struct's message type, an array's element kind):
- schema(field, optional, stack) -> the Connect schema dict of the field
  (`stack`: the struct names being built, to refuse recursive types);
- encoder(field, codecs) -> a function from the protobuf value to its JSON-ready
  value, or None when the protobuf value is its JSON value as is;
- decoder(field, codecs) -> a strict function from the JSON value to what the
  message constructor takes, raising EnvelopeError.
`codecs(descriptor)` gives the codec of a message type (bus.codec), which the
struct kind delegates to. Builders see the field as one value: the array and map
kinds ask for the kind of their elements.

Two more entries serve the fast paths of bus.codec, which handle a whole
payload at once instead of one call per field:
- json_type: the decoder returns a JSON value of exactly this type unchanged,
  when it is in range (for ints: the range the message constructor checks too).
  When, moreover, the encoder is None (the protobuf value is the JSON value),
  the fast encoder writes strings and ints in bulk: escaped, or as they are.
- text(field, codecs): a function from the protobuf value to its JSON text, or to
  a number whose str() is its JSON text. Left out, it is the JSON text of the
  encoder's value.
"""

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

# Connect's logical types, by the names its schemas give them (the only place they are spelled):
# we write Timestamp and Decimal; Date and Time only the doctor reads (ops.connect_json).
TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
DECIMAL = "org.apache.kafka.connect.data.Decimal"
DATE = "org.apache.kafka.connect.data.Date"
TIME = "org.apache.kafka.connect.data.Time"
WRAPPERS = frozenset(
    "google.protobuf." + n
    for n in ("DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value",
              "UInt32Value", "BoolValue", "StringValue", "BytesValue")
)


class EnvelopeError(ValueError):
    """An envelope that does not fit the message type; `path` names the field."""

    def __init__(self, message, path=""):
        super().__init__(f"{path}: {message}" if path else message)
        self.reason = message
        self.path = path

    def under(self, name):
        """The same error, one level further out (name is a field or "[i]")."""
        if not self.path:
            path = name
        elif self.path.startswith("["):
            path = name + self.path
        else:
            path = f"{name}.{self.path}"
        return EnvelopeError(self.reason, path)


Convert = Callable[[Any], Any]
Codecs = Callable[[Descriptor], Any]  # descriptor -> its codec, with .encode and .decode


@dataclass(frozen=True)
class Kind:
    """How one kind of protobuf value is written to and read from a Connect envelope."""

    name: str
    schema: Callable[[FieldDescriptor, bool, tuple[str, ...]], dict]
    encoder: Callable[[FieldDescriptor, Codecs], Convert | None]
    decoder: Callable[[FieldDescriptor, Codecs], Convert]
    json_type: type | None = None
    text: Callable[[FieldDescriptor, Codecs], Convert] | None = None


def is_map(field):
    return (field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


def is_optional(field):
    """Whether a (non-repeated) field is an optional Connect field, null when unset."""
    return field.has_presence and not field.is_required


def kind_of(field) -> Kind:
    """The kind record of `field`: map, array, or the kind of its single value."""
    if is_map(field):
        return MAP
    if field.is_repeated:
        return ARRAY
    return element_kind(field)


def element_kind(field) -> Kind:
    """The kind of one value of `field` (an element, for a repeated field)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _MESSAGE_KINDS.get(field.message_type.full_name, STRUCT)
    try:
        return _SCALAR_KINDS[field.type]
    except KeyError:
        raise TypeError(f"{field.full_name}: protobuf field type {field.type} has no Connect mapping") from None


def field_schema(field, stack=()):
    """The Connect schema of `field` (without its "field" name)."""
    return kind_of(field).schema(field, is_optional(field), stack)


def struct_schema(descriptor, optional=False, stack=()):
    """The Connect struct schema of a message type."""
    if descriptor.full_name in stack:
        # Connect schemas have no references, so a recursive type would be infinite.
        raise TypeError(f"{descriptor.full_name} is recursive; a Connect schema cannot express it")
    stack = stack + (descriptor.full_name,)
    return {
        "type": "struct",
        "name": descriptor.full_name,
        "optional": optional,
        "fields": [dict(field=f.name, **field_schema(f, stack)) for f in descriptor.fields],
    }


# --- JSON value checks and conversions ---------------------------------------------

_JSON_TYPE_NAMES = {str: "string", bool: "boolean", int: "integer", float: "number",
                    dict: "object", list: "array", type(None): "null"}


def describe(v):
    """The JSON type name of a parsed value, for error messages."""
    return _JSON_TYPE_NAMES.get(type(v), type(v).__name__)


def _item(conv, v, index):
    try:
        return conv(v)
    except EnvelopeError as e:
        raise e.under(f"[{index!r}]") from None


def _each(conv, items):
    """conv of every item of a list; an error names the item's index."""
    try:
        return [conv(v) for v in items]
    except EnvelopeError:
        for i, v in enumerate(items):  # rare: find the item to name it
            _item(conv, v, i)
        raise


def _identity(v):
    return v


def _decode_string(v):
    if type(v) is not str:
        raise EnvelopeError(f"expected a string, got {describe(v)}")
    return v


def _decode_bool(v):
    if type(v) is not bool:
        raise EnvelopeError(f"expected a boolean, got {describe(v)}")
    return v


_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


def _int_decoder(name):
    lo, hi = _INT_RANGES[name]

    def decode_int(v):
        if type(v) is not int:
            raise EnvelopeError(f"expected an integer, got {describe(v)}")
        if not lo <= v <= hi:
            raise EnvelopeError(f"{v} is out of range for {name}")
        return v
    return decode_int


def _encode_float(v):
    if not math.isfinite(v):
        raise EnvelopeError(f"{v} cannot be written as JSON")
    return v


def _decode_float64(v):
    if type(v) is float:
        return v
    if type(v) is not int:
        raise EnvelopeError(f"expected a number, got {describe(v)}")
    try:
        return float(v)
    except OverflowError:
        raise EnvelopeError(f"an integer of {v.bit_length()} bits is too large for a float field") from None


# Doubles from here up round to infinity as float32 (halfway above the largest
# float32); below it, e.g. Java's shortest text "3.4028235E38", to a finite one.
_FLOAT32_LIMIT = 2.0**128 - 2.0**103


def _decode_float32(v):
    v = _decode_float64(v)
    if abs(v) >= _FLOAT32_LIMIT:
        raise EnvelopeError(f"{v} is out of range for float32")
    return v


def _encode_bytes(v):
    return base64.b64encode(v).decode("ascii")


def _decode_bytes(v):
    if type(v) is not str:
        raise EnvelopeError(f"expected base64 (a string), got {describe(v)}")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError(f"invalid base64: {e}") from None


def _encode_decimal(v):
    # Decimal with scale 0: base64 of the big-endian two's-complement unscaled value
    # (JsonConverter's default decimal.format=BASE64).
    return base64.b64encode(v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)).decode("ascii")


def _decode_decimal(v):
    # JsonConverter also accepts a Decimal as a JSON number.
    if type(v) is not int:
        v = int.from_bytes(_decode_bytes(v), "big", signed=True)
    lo, hi = _INT_RANGES["uint64"]
    if not lo <= v <= hi:
        raise EnvelopeError(f"{v} is out of range for uint64")
    return v


def _encode_timestamp(ts):
    # Epoch millis; sub-millisecond nanos are truncated (floored).
    return ts.seconds * 1000 + ts.nanos // 1_000_000


# google.protobuf.Timestamp spans years 1 to 9999 (what Connect's Timestamp and SQL DATETIME hold):
# from -62_135_596_800 s to 253_402_300_799 s, in millis.
_MIN_MILLIS, _MAX_MILLIS = -62_135_596_800_000, 253_402_300_799_999


def _decode_timestamp(v):
    if type(v) is not int:
        raise EnvelopeError(f"expected epoch millis (an integer), got {describe(v)}")
    if not _MIN_MILLIS <= v <= _MAX_MILLIS:
        raise EnvelopeError(f"{v} ms is outside the years 1 to 9999 that a Timestamp can hold")
    seconds, millis = divmod(v, 1000)
    # A dict, which the constructor takes: cheaper than a Timestamp, and it fits a
    # message class of any descriptor pool.
    return {"seconds": seconds, "nanos": millis * 1_000_000}


# --- the records --------------------------------------------------------------------

def _scalar(name, schema, encode, decode, json_type=None, text=None):
    """The record of a kind whose conversions do not depend on the field."""
    return Kind(name, lambda field, optional, stack: {**schema, "optional": optional},
                lambda field, codecs: encode, lambda field, codecs: decode, json_type,
                None if text is None else lambda field, codecs: text)


STRING = _scalar("string", {"type": "string"}, None, _decode_string, str)
BOOLEAN = _scalar("boolean", {"type": "boolean"}, None, _decode_bool, bool)
INT32 = _scalar("int32", {"type": "int32"}, None, _int_decoder("int32"), int)
INT64 = _scalar("int64", {"type": "int64"}, None, _int_decoder("int64"), int)
UINT32 = _scalar("uint32", {"type": "int64"}, None, _int_decoder("uint32"), int)  # every uint32 fits
# Lossless above 2^63-1, where int64 would overflow. The precision (2^64-1 has 20 digits)
# is the parameter sinks read to size the column: without it the Debezium JDBC sink emits
# "decimal(38,-1)", which MariaDB refuses.
UINT64 = _scalar("uint64", {"type": "bytes", "name": DECIMAL, "version": 1,
                            "parameters": {"scale": "0", "connect.decimal.precision": "20"}},
                 _encode_decimal, _decode_decimal)
# Floats must be finite: JSON has no NaN/Infinity and JsonConverter rejects them.
FLOAT = _scalar("float", {"type": "float"}, _encode_float, _decode_float32)
DOUBLE = _scalar("double", {"type": "double"}, _encode_float, _decode_float64, float)
BYTES = _scalar("bytes", {"type": "bytes"}, _encode_bytes, _decode_bytes)
TIMESTAMP_KIND = _scalar("timestamp", {"type": "int64", "name": TIMESTAMP, "version": 1},
                         _encode_timestamp, _decode_timestamp, text=_encode_timestamp)  # an int


def _enum_encoder(field, codecs):
    names = {v.number: v.name for v in field.enum_type.values}
    enum_name = field.enum_type.full_name

    def encode_enum(v):
        try:
            return names[v]
        except KeyError:
            raise EnvelopeError(f"enum value {v} has no name in {enum_name}") from None
    return encode_enum


def _enum_decoder(field, codecs):
    numbers = {v.name: v.number for v in field.enum_type.values}
    enum_name = field.enum_type.full_name

    def decode_enum(v):
        if type(v) is not str:
            raise EnvelopeError(f"expected an enum name (string), got {describe(v)}")
        try:
            return numbers[v]
        except KeyError:
            raise EnvelopeError(f"unknown enum name {v!r} for {enum_name}") from None
    return decode_enum


ENUM = Kind("enum", lambda field, optional, stack: {"type": "string", "optional": optional},
            _enum_encoder, _enum_decoder)


def _wrapped(field):
    return field.message_type.fields_by_name["value"]


def _wrapper_encoder(field, codecs):
    inner = element_kind(_wrapped(field)).encoder(_wrapped(field), codecs) or _identity
    return lambda w: inner(w.value)


def _wrapper_decoder(field, codecs):
    inner = element_kind(_wrapped(field)).decoder(_wrapped(field), codecs)
    return lambda v: {"value": inner(v)}


# A google.protobuf.*Value wrapper is its wrapped value, optional.
WRAPPER = Kind("wrapper",
               lambda field, optional, stack: element_kind(_wrapped(field)).schema(_wrapped(field), optional, stack),
               _wrapper_encoder, _wrapper_decoder)

STRUCT = Kind("struct",
              lambda field, optional, stack: struct_schema(field.message_type, optional, stack),
              lambda field, codecs: codecs(field.message_type).encode,
              lambda field, codecs: codecs(field.message_type).decode,
              text=lambda field, codecs: codecs(field.message_type).encode_json)


def _array_schema(field, optional, stack):
    return {"type": "array", "items": element_kind(field).schema(field, False, stack), "optional": False}


def _array_encoder(field, codecs):
    conv = element_kind(field).encoder(field, codecs)
    if conv is None:
        return list
    return lambda r: _each(conv, r)


def _array_decoder(field, codecs):
    conv = element_kind(field).decoder(field, codecs)

    def decode_array(v):
        if type(v) is not list:
            raise EnvelopeError(f"expected an array, got {describe(v)}")
        return _each(conv, v)
    return decode_array


ARRAY = Kind("array", _array_schema, _array_encoder, _array_decoder)


def _entry(field):
    entry = field.message_type
    return entry.fields_by_name["key"], entry.fields_by_name["value"]


def _map_schema(field, optional, stack):
    key, value = _entry(field)
    return {"type": "map", "keys": kind_of(key).schema(key, False, stack),
            "values": kind_of(value).schema(value, False, stack), "optional": False}


def _map_encoder(field, codecs):
    key, value = _entry(field)
    kconv = kind_of(key).encoder(key, codecs)
    vconv = kind_of(value).encoder(value, codecs)
    if key.type == FieldDescriptor.TYPE_STRING:
        if vconv is None:
            return dict
        return lambda m: {k: _item(vconv, v, k) for k, v in m.items()}
    # JsonConverter writes maps with non-string keys as [[key, value], ...].
    kconv = kconv or _identity
    vconv = vconv or _identity
    return lambda m: [[kconv(k), _item(vconv, v, k)] for k, v in m.items()]


def _map_decoder(field, codecs):
    key, value = _entry(field)
    kconv = kind_of(key).decoder(key, codecs)
    vconv = kind_of(value).decoder(value, codecs)
    if key.type == FieldDescriptor.TYPE_STRING:
        def decode_map(v):
            if type(v) is not dict:
                raise EnvelopeError(f"expected an object, got {describe(v)}")
            return {k: _item(vconv, x, k) for k, x in v.items()}
        return decode_map

    def decode_pairs(v):
        if type(v) is not list:
            raise EnvelopeError(f"expected an array of [key, value], got {describe(v)}")
        out = {}
        for i, pair in enumerate(v):
            if type(pair) is not list or len(pair) != 2:
                raise EnvelopeError("expected a [key, value] pair", f"[{i}]")
            out[_item(kconv, pair[0], i)] = _item(vconv, pair[1], i)
        return out
    return decode_pairs


MAP = Kind("map", _map_schema, _map_encoder, _map_decoder)

_SCALAR_KINDS = {
    FieldDescriptor.TYPE_STRING: STRING,
    FieldDescriptor.TYPE_BOOL: BOOLEAN,
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
    FieldDescriptor.TYPE_FLOAT: FLOAT,
    FieldDescriptor.TYPE_DOUBLE: DOUBLE,
    FieldDescriptor.TYPE_BYTES: BYTES,
    FieldDescriptor.TYPE_ENUM: ENUM,
}
_MESSAGE_KINDS = {"google.protobuf.Timestamp": TIMESTAMP_KIND, **{name: WRAPPER for name in WRAPPERS}}
KINDS = (STRING, BOOLEAN, INT32, INT64, UINT32, UINT64, FLOAT, DOUBLE, BYTES, ENUM, TIMESTAMP_KIND,
         WRAPPER, STRUCT, ARRAY, MAP)
