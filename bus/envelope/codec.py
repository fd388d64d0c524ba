"""The codec of one message type: message <-> payload, built once from the kind records.

Each codec has two paths that give the same results, which a property test checks:

- The plain path (encode_plain, decode_plain) is the definition: one call per field
  to the converters of its kind record (bus.kinds), checks of presence, nulls and
  oneofs, and every error names its field. It serves to_envelope and whatever the
  fast path declines, so that errors come from one place.
- The fast path (encode_json, decode) does per payload what the plain path does per
  field, with C-level calls, and hands anything unusual to the plain path:
  - encode_json fills a JSON text template of the payload, made once per type
    ('{"order_id":{0},...,"qty":{3},...}'), with str.format: the string fields
    are read in one call (operator.attrgetter) and escaped by the json module's
    own C function, the int fields read in one call and written as they are, and
    only the other fields (a timestamp, an enum, a nested message, an optional
    field that may be null...) cost a call each. The text is the same, byte for
    byte, as json's of the plain path's payload.
  - decode (decode_fast, for a payload it may change) looks at the payload's
    shape, the tuple of the JSON types of its fields, and keeps one plan per shape: which fields are null (and may be),
    which are taken as they are (strings, booleans, ints, doubles: the shape
    checked their type), and which go through their kind's decoder; then the
    message is built in one constructor call, which checks the ints' ranges.
    A payload that lacks a field or has an extra one, a shape the plan refuses
    and any error go to the plain path, which reports it.
No code is generated at run time.
"""

import json
from operator import attrgetter, itemgetter

from google.protobuf import message_factory

from bus.envelope.kinds import EnvelopeError, describe, is_optional, kind_of
from bus.envelope.schema import cached_schema


def _make_json_encoder():
    """The compact JSON serialiser's C encoder, made once: json.dumps builds a new one per
    call, and that setup costs about as much as encoding a small event."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                               check_circular=False)
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # no C accelerator: the plain, slower path
        return lambda obj, level: [encoder.encode(obj)]
    return c_make_encoder(None, encoder.default, json.encoder.encode_basestring, None,
                          ":", ",", False, False, False)


_json_chunks = _make_json_encoder()  # (obj, 0) -> list of JSON text chunks
# What that encoder writes a string as (the C function, when there is one).
_escape = json.encoder.encode_basestring


def to_json(value):
    """Compact JSON text of a JSON-ready value (non-ASCII kept, NaN refused)."""
    return "".join(_json_chunks(value, 0))


def _text(value):
    """JSON text of a value for the template, where an int stands for itself."""
    t = type(value)
    if t is int:
        return value
    if t is str:  # an enum's name, base64, an optional string: cheaper than the whole encoder
        return _escape(value)
    return "".join(_json_chunks(value, 0))


_MISSING = object()
_MAX_PLANS = 64  # payload shapes remembered per message type; others are planned each time


class _Field:
    """One field of a message type, with its converters for both paths."""

    __slots__ = ("name", "optional", "json_type", "encode", "decode", "decode_plain", "text", "bulk")

    def __init__(self, field):
        kind = kind_of(field)
        self.name = field.name
        self.optional = not field.is_repeated and is_optional(field)
        self.json_type = kind.json_type
        self.encode = kind.encoder(field, codec_for)  # a nested message: its codec's encode_plain
        self.decode = kind.decoder(field, codec_for)
        self.decode_plain = kind.decoder(field, _plain_codec)
        if kind.text is not None:
            self.text = kind.text(field, codec_for)
        elif self.encode is not None:
            self.text = lambda v, conv=self.encode: _text(conv(v))
        else:
            self.text = _text
        # Written in bulk by encode_json: str (escaped), int (as is), or neither.
        self.bulk = kind.json_type if (self.encode is None and not self.optional
                                       and kind.json_type in (str, int)) else None


class MessageCodec:
    """Encoder and decoder of one message type, built once (see codec_for)."""

    _plans: dict  # payload shape -> decoding plan, or None for the plain path

    def __init__(self, descriptor, cls):
        self.cls = cls
        self.schema = cached_schema(descriptor)  # refuses a recursive type first
        # Every envelope starts with this text: the schema is serialised only once.
        self.prefix = '{"schema":' + json.dumps(self.schema, separators=(",", ":")) + ',"payload":'
        self.full_name = descriptor.full_name
        self.fields = [_Field(f) for f in descriptor.fields]
        self.names = tuple(f.name for f in self.fields)
        self.oneofs = [tuple(f.name for f in o.fields) for o in descriptor.oneofs if len(o.fields) > 1]
        # Fast encode: the template's arguments are the string fields, the int fields,
        # then each other field's text, in field order within each group.
        strings = [f.name for f in self.fields if f.bulk is str]
        ints = [f.name for f in self.fields if f.bulk is int]
        others = [f for f in self.fields if f.bulk is None]
        order = strings + ints + [f.name for f in others]
        self._template = "{{" + ",".join(
            f"{_escape(f.name)}:{{{order.index(f.name)}}}" for f in self.fields) + "}}"
        self._strings = _tuple_getter(attrgetter, strings)
        self._ints = _tuple_getter(attrgetter, ints)
        self._texts = [_field_text(f) for f in others]
        # Fast decode: the payload's values in field order, and a plan per shape.
        self._values = _tuple_getter(itemgetter, self.names)
        self._plans = {}

    # --- plain path ---------------------------------------------------------------

    def encode_plain(self, msg):
        """The payload dict of `msg`, field by field."""
        payload = {}
        for f in self.fields:
            if f.optional and not msg.HasField(f.name):
                payload[f.name] = None
                continue
            v = getattr(msg, f.name)
            if f.encode is not None:
                try:
                    v = f.encode(v)
                except EnvelopeError as e:
                    raise e.under(f.name) from None
            payload[f.name] = v
        return payload

    def decode_plain(self, payload):
        """The message of a payload dict, field by field; EnvelopeError names the field."""
        if type(payload) is not dict:
            raise EnvelopeError(f"expected an object, got {describe(payload)}")
        kwargs = {}
        present = 0
        for f in self.fields:
            v = payload.get(f.name, _MISSING)
            if v is _MISSING:
                if not f.optional:
                    raise EnvelopeError("required field is missing", f.name)
                continue
            present += 1
            if v is None:
                if not f.optional:
                    raise EnvelopeError("required field is null", f.name)
                continue
            try:
                kwargs[f.name] = f.decode_plain(v)
            except EnvelopeError as e:
                raise e.under(f.name) from None
        if present != len(payload):
            extra = sorted(k for k in payload if k not in self.names)
            raise EnvelopeError(f"field is not in {self.full_name}", extra[0])
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

    # The payload dict of a nested message (the struct kind's encoder calls it).
    encode = encode_plain

    # --- fast path ----------------------------------------------------------------

    def encode_json(self, msg):
        """The payload of `msg` as JSON text (the same as to_json(encode_plain(msg)))."""
        try:
            args = [*map(_escape, self._strings(msg)), *self._ints(msg)]
            for text in self._texts:
                args.append(text(msg))
            return self._template.format(*args)
        except (EnvelopeError, ValueError):
            return to_json(self.encode_plain(msg))  # raises it again, naming the field

    def decode(self, payload):
        """The message of a payload dict (the same as decode_plain's, errors included)."""
        if type(payload) is dict:
            msg = self.decode_fast(payload.copy())
            if msg is not None:
                return msg
        return self.decode_plain(payload)

    def decode_fast(self, payload):
        """The message of a payload dict, which this may change (pass a copy or a fresh
        one), or None when the fast path declines it: then decode_plain of the original
        payload gives the message or the error."""
        if len(payload) != len(self.names):
            return None
        try:
            plan = self._plans[tuple(map(type, self._values(payload)))]
        except KeyError:  # a new shape, or a field is absent (so another is extra)
            plan = self._plan_of(payload)
        if plan is None:
            return None
        nulls, convert = plan
        try:
            for name in nulls:
                del payload[name]
            for name, dec in convert:
                payload[name] = dec(payload[name])
            return self.cls(**payload)
        except (EnvelopeError, TypeError, ValueError):
            return None

    def _plan_of(self, payload):
        """The plan of the payload's shape, made and remembered; None for the plain path."""
        try:
            shape = tuple(map(type, self._values(payload)))
        except KeyError:
            return None
        plan = self._plan(shape)
        if len(self._plans) < _MAX_PLANS:
            self._plans[shape] = plan
        return plan

    def _plan(self, shape):
        """How to decode payloads whose field values have these types, or None for the plain path.

        The plan: the fields that are null (to leave out), and the fields to convert with
        their kind's decoder. The others are passed to the constructor as they are, as
        their kind allows for a value of this type; an int's range is checked by the
        constructor, as protobuf does for every int field (the plain path checks it first).
        """
        nulls, convert = [], []
        for f, t in zip(self.fields, shape):
            if t is type(None):
                if not f.optional:
                    return None
                nulls.append(f.name)
            elif t is not f.json_type:
                convert.append((f.name, f.decode))
        for members in self.oneofs:
            if sum(t is not type(None) for n, t in zip(self.names, shape) if n in members) > 1:
                return None
        return tuple(nulls), tuple(convert)


def _field_text(f):
    """msg -> the JSON text of field `f` (or an int), null when an optional field is unset."""
    name, text = f.name, f.text
    read = attrgetter(name)
    if f.optional:
        return lambda msg: text(read(msg)) if msg.HasField(name) else "null"
    return lambda msg: text(read(msg))


def _tuple_getter(getter, names):
    """getter(*names), always returning a tuple (operator's getters return a lone value bare)."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = getter(names[0])
        return lambda obj: (one(obj),)
    return getter(*names)


_codecs: dict = {}


def codec_for(descriptor, cls=None):
    """The codec of a message type, built on first use; `cls` is the class it decodes to."""
    codec = _codecs.get(descriptor)
    if codec is None:
        codec = _codecs[descriptor] = MessageCodec(
            descriptor, cls or message_factory.GetMessageClass(descriptor))
    return codec


class _PlainCodec:
    """A codec seen through its plain path: what the plain path's struct kinds call."""

    def __init__(self, codec):
        self.encode = codec.encode_plain
        self.decode = codec.decode_plain  # not the fast decode: the plain path is plain throughout


def _plain_codec(descriptor):
    return _PlainCodec(codec_for(descriptor))
