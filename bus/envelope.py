"""Protobuf message <-> Kafka Connect JSON envelope ({"schema": ..., "payload": ...}).

The envelope is what JsonConverter with schemas.enable=true reads; the schema
comes from bus.schema. Per message type we build, once, a codec: one small
encoder and decoder per field, the schema dict and its JSON text, which is
spliced into every encoded envelope instead of being serialised again.

Decisions (see bus.schema for the type mapping):
- Timestamp: epoch millis; sub-millisecond nanos are truncated (floored) on
  encode, so decode(encode(m)) only equals m for whole-millisecond timestamps.
- Decoding is strict, except for what a rolling upgrade needs. The reader (the
  descriptor) accepts a writer's schema that
  - has fields the reader does not know, optional or not (a newer proto added
    them): they and their payload values are ignored;
  - lacks a field that the reader has as optional: it reads as null;
  - marks required a field that the reader has as optional.
  Anything else is refused, naming the field: a known field whose type, logical
  type (name, parameters) or struct name differs, a field the reader requires
  missing from the schema or marked optional there. Such a mismatch breaks the
  contract between producer and consumer, and reading on would lose or invent
  data; the consumer sends the message to its dead-letter topic. The payload may
  hold no field that the writer's schema lacks. Field order and "optional": false
  written or left out do not matter. Optional fields may be absent from the
  payload (read as null), as JsonConverter does.
- Floats must be finite: JSON has no NaN/Infinity and JsonConverter rejects them.
  Connect reads JSON numbers as BigDecimal, so a -0.0 arrives there as 0.0
  (our own decode keeps -0.0).
- A Decimal (uint64) is decoded from base64 or, as JsonConverter also accepts,
  from a JSON number.
"""

import base64
import binascii
import copy
import json
import keyword
import math

from google.protobuf import message_factory
from google.protobuf.timestamp_pb2 import Timestamp

from bus.schema import cached_schema, is_map, is_optional, value_kind


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


_MISSING = object()
# Doubles from here up round to infinity as float32 (halfway above the largest
# float32); below it, e.g. Java's shortest text "3.4028235E38", to a finite one.
_FLOAT32_LIMIT = 2.0**128 - 2.0**103
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_JSON_TYPE_NAMES = {str: "string", bool: "boolean", int: "integer", float: "number",
                    dict: "object", list: "array", type(None): "null"}


def _describe(v):
    return _JSON_TYPE_NAMES.get(type(v), type(v).__name__)


def _reject_constant(name):
    raise EnvelopeError(f"{name} is not valid JSON")


def _make_dumps():
    """Compact JSON serialiser; reuses one C encoder, since json.dumps builds a
    new one per call and that setup costs about as much as encoding a small event."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                               check_circular=False)
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # no C accelerator: the plain, slower path
        return encoder.encode
    c_encoder = c_make_encoder(None, encoder.default, json.encoder.encode_basestring, None,
                               ":", ",", False, False, False)
    return lambda obj: "".join(c_encoder(obj, 0))


_dumps = _make_dumps()
_json_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_loads = _json_decoder.decode
_raw_decode = _json_decoder.raw_decode


# --- public API -------------------------------------------------------------

def to_envelope(msg):
    """The envelope of `msg` as a dict (a fresh schema copy, for inspection)."""
    codec = _codec(msg.DESCRIPTOR)
    return {"schema": copy.deepcopy(codec.schema), "payload": codec.encode(msg)}


def encode(msg):
    """The envelope of `msg` as compact UTF-8 JSON bytes."""
    codec = _codec(msg.DESCRIPTOR)
    return (codec.prefix + _dumps(codec.encode(msg))).encode() + b"}"


def decode(data, message_class):
    """The `message_class` message carried by an envelope (bytes, str or dict).

    Raises EnvelopeError naming the offending field when the envelope's schema
    or payload does not fit the message type, and for any data that is no
    envelope at all.
    """
    try:
        return _decode(data, message_class)
    except RecursionError:
        # The JSON parser recurses once per nesting level: "[" * 100000 exhausts the stack.
        raise EnvelopeError("envelope is nested too deeply") from None


def _decode(data, message_class):
    if data is None:
        raise EnvelopeError("no envelope: the value is null (a tombstone)")
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise EnvelopeError(f"envelope is not UTF-8: {e}") from None
    codec = _codec(message_class.DESCRIPTOR, message_class)
    if isinstance(data, str):
        if data.startswith(codec.prefix):
            # Our own schema, byte for byte: parse only the payload.
            try:
                payload, end = _raw_decode(data, len(codec.prefix))
            except ValueError:
                pass
            else:
                if data[end:].strip(" \t\r\n") == "}":
                    return codec.decode(payload)
        try:
            data = _loads(data)
        except ValueError as e:
            if isinstance(e, EnvelopeError):
                raise
            raise EnvelopeError(f"envelope is not JSON: {e}") from None
    if type(data) is not dict or "schema" not in data or "payload" not in data:
        raise EnvelopeError('envelope must be a JSON object with "schema" and "payload"')
    payload = data["payload"]
    if data["schema"] != codec.schema:  # the cheap check passes for our own envelopes
        _check_schema(data["schema"], codec.schema, "")
        payload = _reader_view(payload, data["schema"], codec.schema, "")
    return codec.decode(payload)


# --- per-type codecs --------------------------------------------------------

class _Codec:
    """Encoder and decoder of one message type, built once."""

    def __init__(self, descriptor, cls):
        self.cls = cls
        self.schema = cached_schema(descriptor)
        # Every envelope starts with this text: the schema is serialised only once.
        self.prefix = '{"schema":' + json.dumps(self.schema, separators=(",", ":")) + ',"payload":'
        self.enc_fields, self._encode = _payload_encoder(descriptor)
        self.dec_fields = [(f.name, not f.is_repeated and is_optional(f), _field_decoder(f))
                           for f in descriptor.fields]
        self.names = frozenset(f.name for f in descriptor.fields)
        self.oneofs = [tuple(f.name for f in o.fields)
                       for o in descriptor.oneofs if len(o.fields) > 1]

    def encode(self, msg):
        try:
            return self._encode(msg)
        except EnvelopeError:
            for name, enc in self.enc_fields:  # rare: find the field to name it
                try:
                    enc(msg)
                except EnvelopeError as e:
                    raise e.under(name) from None
            raise

    def decode(self, payload):
        if type(payload) is not dict:
            raise EnvelopeError(f"expected an object, got {_describe(payload)}")
        kwargs = {}
        present = 0
        for name, optional, dec in self.dec_fields:
            v = payload.get(name, _MISSING)
            if v is _MISSING:
                if not optional:
                    raise EnvelopeError("required field is missing", name)
                continue
            present += 1
            if v is None:
                if not optional:
                    raise EnvelopeError("required field is null", name)
                continue
            try:
                kwargs[name] = dec(v)
            except EnvelopeError as e:
                raise e.under(name) from None
        if present != len(payload):
            extra = sorted(k for k in payload if k not in self.names)
            raise EnvelopeError(f"field is not in {self.cls.DESCRIPTOR.full_name}", extra[0])
        for members in self.oneofs:
            set_ = [n for n in members if n in kwargs]
            if len(set_) > 1:
                raise EnvelopeError(f"oneof members {', '.join(set_)} are all set", set_[1])
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError):
            for name, v in kwargs.items():  # rare: find the field to name it
                try:
                    self.cls(**{name: v})
                except (TypeError, ValueError) as e:
                    raise EnvelopeError(str(e), name) from None
            raise


_codecs: dict = {}


def _codec(descriptor, cls=None):
    codec = _codecs.get(descriptor)
    if codec is None:
        codec = _codecs[descriptor] = _Codec(
            descriptor, cls or message_factory.GetMessageClass(descriptor))
    return codec


# --- encoders: protobuf value -> JSON-ready Python value ---------------------

def _payload_encoder(descriptor):
    """Per-field encoders, and one function building the whole payload dict.

    The latter is compiled from a dict display ({"qty": m.qty, ...}): direct
    attribute reads are about twice as fast as calling a getter per field, and
    encoding speed is what this module is measured by.
    """
    ns = {}
    exprs = [(f.name, _field_expr(f, i, ns)) for i, f in enumerate(descriptor.fields)]
    fields = [(name, eval(f"lambda m: {expr}", ns)) for name, expr in exprs]
    exec("def encode(m):\n    return {%s}\n" % ", ".join(f"{n!r}: {e}" for n, e in exprs), ns)
    return fields, ns["encode"]


def _field_expr(field, i, ns):
    """A Python expression for the JSON value of `field` in message `m`."""
    name = field.name
    read = f"getattr(m, {name!r})" if keyword.iskeyword(name) else f"m.{name}"
    if is_map(field) or field.is_repeated:
        ns[f"e{i}"] = _container_encoder(field)
        return f"e{i}({read})"
    conv = _value_encoder(field)
    if conv is not None:
        ns[f"c{i}"] = conv
        read = f"c{i}({read})"
    if is_optional(field):
        return f"({read} if m.HasField({name!r}) else None)"
    return read


def _container_encoder(field):
    if is_map(field):
        entry = field.message_type
        kconv = _value_encoder(entry.fields_by_name["key"])
        vconv = _value_encoder(entry.fields_by_name["value"])
        if entry.fields_by_name["key"].type == field.TYPE_STRING:
            if vconv is None:
                return dict
            return lambda m: {k: _item(vconv, v, k) for k, v in m.items()}
        # JsonConverter writes maps with non-string keys as [[key, value], ...].
        kconv = kconv or _identity
        vconv = vconv or _identity
        return lambda m: [[kconv(k), _item(vconv, v, k)] for k, v in m.items()]
    conv = _value_encoder(field)
    if conv is None:
        return list
    return lambda r: [_item(conv, v, i) for i, v in enumerate(r)]


def _identity(v):
    return v


def _item(conv, v, index):
    try:
        return conv(v)
    except EnvelopeError as e:
        raise e.under(f"[{index!r}]") from None


def _value_encoder(field):
    """Converter of one value of `field`, or None when the value is JSON as is."""
    kind = value_kind(field)
    if kind == "struct":
        return _codec(field.message_type).encode
    if kind == "timestamp":
        return _encode_timestamp
    if isinstance(kind, tuple):
        inner = _scalar_encoder(kind[1], field.message_type.fields_by_name["value"]) or _identity
        return lambda w: inner(w.value)
    return _scalar_encoder(kind, field)


def _scalar_encoder(kind, field):
    if kind in ("float", "double"):
        return _encode_float
    if kind == "bytes":
        return _encode_bytes
    if kind == "uint64":
        return _encode_decimal
    if kind == "enum":
        names = {v.number: v.name for v in field.enum_type.values}
        enum_name = field.enum_type.full_name

        def encode_enum(v):
            try:
                return names[v]
            except KeyError:
                raise EnvelopeError(f"enum value {v} has no name in {enum_name}") from None
        return encode_enum
    return None


def _encode_timestamp(ts):
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def _encode_float(v):
    if not math.isfinite(v):
        raise EnvelopeError(f"{v} cannot be written as JSON")
    return v


def _encode_bytes(v):
    return base64.b64encode(v).decode("ascii")


def _encode_decimal(v):
    return base64.b64encode(v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)).decode("ascii")


# --- decoders: JSON value -> protobuf constructor argument --------------------

def _field_decoder(field):
    if is_map(field):
        entry = field.message_type
        kconv = _value_decoder(entry.fields_by_name["key"])
        vconv = _value_decoder(entry.fields_by_name["value"])
        if entry.fields_by_name["key"].type == field.TYPE_STRING:
            def decode_map(v):
                if type(v) is not dict:
                    raise EnvelopeError(f"expected an object, got {_describe(v)}")
                return {k: _item(vconv, x, k) for k, x in v.items()}
            return decode_map

        def decode_pairs(v):
            if type(v) is not list:
                raise EnvelopeError(f"expected an array of [key, value], got {_describe(v)}")
            out = {}
            for i, pair in enumerate(v):
                if type(pair) is not list or len(pair) != 2:
                    raise EnvelopeError("expected a [key, value] pair", f"[{i}]")
                out[_item(kconv, pair[0], i)] = _item(vconv, pair[1], i)
            return out
        return decode_pairs
    conv = _value_decoder(field)
    if field.is_repeated:
        def decode_array(v):
            if type(v) is not list:
                raise EnvelopeError(f"expected an array, got {_describe(v)}")
            return [_item(conv, x, i) for i, x in enumerate(v)]
        return decode_array
    return conv


def _value_decoder(field):
    kind = value_kind(field)
    if kind == "struct":
        return _codec(field.message_type).decode
    if kind == "timestamp":
        return _decode_timestamp
    if isinstance(kind, tuple):
        inner = _scalar_decoder(kind[1], field.message_type.fields_by_name["value"])
        wrapper = message_factory.GetMessageClass(field.message_type)
        return lambda v: wrapper(value=inner(v))
    return _scalar_decoder(kind, field)


def _scalar_decoder(kind, field):
    if kind == "string":
        return _decode_string
    if kind == "boolean":
        return _decode_bool
    if kind in ("int32", "int64", "uint32"):
        return _int_decoder(kind)
    if kind == "uint64":
        return _decode_decimal
    if kind == "float":
        return _decode_float32
    if kind == "double":
        return _decode_float64
    if kind == "bytes":
        return _decode_bytes
    if kind == "enum":
        numbers = {v.name: v.number for v in field.enum_type.values}
        enum_name = field.enum_type.full_name

        def decode_enum(v):
            if type(v) is not str:
                raise EnvelopeError(f"expected an enum name (string), got {_describe(v)}")
            try:
                return numbers[v]
            except KeyError:
                raise EnvelopeError(f"unknown enum name {v!r} for {enum_name}") from None
        return decode_enum
    raise AssertionError(kind)


def _decode_string(v):
    if type(v) is not str:
        raise EnvelopeError(f"expected a string, got {_describe(v)}")
    return v


def _decode_bool(v):
    if type(v) is not bool:
        raise EnvelopeError(f"expected a boolean, got {_describe(v)}")
    return v


def _int_decoder(kind):
    lo, hi = _INT_RANGES[kind]

    def decode_int(v):
        if type(v) is not int:
            raise EnvelopeError(f"expected an integer, got {_describe(v)}")
        if not lo <= v <= hi:
            raise EnvelopeError(f"{v} is out of range for {kind}")
        return v
    return decode_int


def _decode_float64(v):
    if type(v) is not float and type(v) is not int:
        raise EnvelopeError(f"expected a number, got {_describe(v)}")
    return float(v)


def _decode_float32(v):
    v = _decode_float64(v)
    if abs(v) >= _FLOAT32_LIMIT:
        raise EnvelopeError(f"{v} is out of range for float32")
    return v


def _decode_bytes(v):
    if type(v) is not str:
        raise EnvelopeError(f"expected base64 (a string), got {_describe(v)}")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError(f"invalid base64: {e}") from None


def _decode_decimal(v):
    if type(v) is not int:
        v = int.from_bytes(_decode_bytes(v), "big", signed=True)
    lo, hi = _INT_RANGES["uint64"]
    if not lo <= v <= hi:
        raise EnvelopeError(f"{v} is out of range for uint64")
    return v


# google.protobuf.Timestamp spans years 1 to 9999 (what Connect's Timestamp and SQL DATETIME hold).
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)


def _decode_timestamp(v):
    if type(v) is not int:
        raise EnvelopeError(f"expected epoch millis (an integer), got {_describe(v)}")
    seconds, millis = divmod(v, 1000)
    if not _TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1]:
        raise EnvelopeError(f"{v} ms is outside the years 1 to 9999 that a Timestamp can hold")
    return Timestamp(seconds=seconds, nanos=millis * 1_000_000)


# --- schema check -------------------------------------------------------------

def _check_schema(given, expected, path):
    """Raise EnvelopeError naming the first field that a reader of schema `expected`
    cannot read from a writer of schema `given` (see the module docstring)."""
    if type(given) is not dict:
        raise EnvelopeError(f"schema must be an object, got {_describe(given)}", path)
    if given.get("type") != expected["type"]:
        raise EnvelopeError(
            f"schema type {given.get('type')!r} does not match {expected['type']!r}", path)
    if given.get("name") != expected.get("name"):
        raise EnvelopeError(
            f"schema name {given.get('name')!r} does not match {expected.get('name')!r}", path)
    if given.get("parameters") != expected.get("parameters"):
        raise EnvelopeError(f"schema parameters {given.get('parameters')!r} "
                            f"do not match {expected.get('parameters')!r}", path)
    optional = given.get("optional", False)
    if type(optional) is not bool:
        raise EnvelopeError(f'schema "optional" must be a boolean, got {_describe(optional)}', path)
    if optional and not expected["optional"]:
        # A writer that may send null for a field the reader cannot do without.
        raise EnvelopeError("schema must mark the field required", path)
    t = expected["type"]
    if t == "array":
        _check_schema(given.get("items"), expected["items"], _join(path, "[]"))
    elif t == "map":
        _check_schema(given.get("keys"), expected["keys"], _join(path, "{key}"))
        _check_schema(given.get("values"), expected["values"], _join(path, "{value}"))
    elif t == "struct":
        by_name = _schema_fields(given, path)
        for f in expected["fields"]:
            name = f["field"]
            if name in by_name:
                _check_schema(by_name[name], f, _join(path, name))
            elif not f["optional"]:
                raise EnvelopeError("schema lacks this field, which the reader requires",
                                    _join(path, name))
        # Fields only the writer has are left out of the payload by _reader_view.


def _schema_fields(schema, path):
    """The fields of a struct schema by name."""
    fields = schema.get("fields")
    if type(fields) is not list:
        raise EnvelopeError("struct schema has no fields list", path)
    by_name = {}
    for f in fields:
        name = f.get("field") if type(f) is dict else None
        if type(name) is not str or name in by_name:
            raise EnvelopeError(f"bad or duplicate struct field {name!r} in schema", path)
        by_name[name] = f
    return by_name


def _reader_view(value, given, expected, path):
    """`value`, written with schema `given`, without the fields only the writer knows.

    Runs after _check_schema passed; a value of the wrong kind is left for the
    codec to report. Raises on a payload field that the writer's schema lacks.
    """
    t = expected["type"]
    if t == "struct" and type(value) is dict:
        writer = _schema_fields(given, path)
        reader = {f["field"]: f for f in expected["fields"]}
        view = {}
        for name, v in value.items():
            if name not in writer:
                raise EnvelopeError("payload field is not in the schema", _join(path, name))
            if name in reader:
                view[name] = _reader_view(v, writer[name], reader[name], _join(path, name))
        return view
    if t == "array" and type(value) is list:
        return [_reader_view(v, given["items"], expected["items"], _join(path, f"[{i}]"))
                for i, v in enumerate(value)]
    if t == "map" and type(value) is dict:
        return {k: _reader_view(v, given["values"], expected["values"], _join(path, f"[{k!r}]"))
                for k, v in value.items()}
    if t == "map" and type(value) is list:  # [[key, value], ...]
        return [[p[0], _reader_view(p[1], given["values"], expected["values"],
                                    _join(path, f"[{i}]"))]
                if type(p) is list and len(p) == 2 else p
                for i, p in enumerate(value)]
    return value


def _join(path, name):
    if not path:
        return name
    return path + name if name.startswith("[") else f"{path}.{name}"
