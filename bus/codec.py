"""The codec of one message type: message <-> payload dict, built once from the kind records.

Each codec has two paths that give the same results, which a property test checks:

- The plain path (encode_plain, decode_plain) is the definition: one call per field
  to the converters of its kind record (bus.kinds), checks of presence, nulls and
  oneofs, and every error names its field. It serves to_envelope and every message
  the fast path declines, so that errors come from one place.
- The fast path (encode, decode) does per payload what the plain path does per field,
  with C-level calls (operator.attrgetter / itemgetter, struct, the message
  constructor), and hands anything unusual to the plain path:
  - encode reads all fields in one call and then converts only the fields whose
    kind needs it (a timestamp, an enum, a float's check, a nested message) or
    whose presence matters (optional fields are null when unset);
  - decode looks at the payload's shape, the tuple of the JSON types of its
    fields, and keeps one plan per shape: which fields are null (and may be),
    which are taken as they are after a bulk check (strings, booleans, ints in
    range through one struct.pack, doubles), and which go through their kind's
    decoder. A payload that lacks a field or has an extra one, a shape the plan
    refuses and any error go to the plain path, which reports it.
No code is generated at run time.
"""

import json
import struct
from operator import attrgetter, itemgetter

from google.protobuf import message_factory

from bus.kinds import EnvelopeError, describe, is_optional, kind_of
from bus.schema import cached_schema

_MISSING = object()
_MAX_PLANS = 64  # payload shapes remembered per message type; others are planned each time


class _Field:
    """One field of a message type, with its converters for both paths."""

    __slots__ = ("name", "optional", "json_type", "int_format", "encode", "decode",
                 "encode_plain", "decode_plain")

    def __init__(self, field):
        kind = kind_of(field)
        self.name = field.name
        self.optional = not field.is_repeated and is_optional(field)
        self.json_type = kind.json_type
        self.int_format = kind.int_format
        self.encode = kind.encoder(field, codec_for)
        self.decode = kind.decoder(field, codec_for)
        self.encode_plain = kind.encoder(field, _plain_codec)
        self.decode_plain = kind.decoder(field, _plain_codec)


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
        # Fast encode: every field read at once; then the ones to convert, and the
        # optional ones (null when unset).
        self._read = _tuple_getter(attrgetter, self.names)
        self._convert = [(f.name, f.encode) for f in self.fields if f.encode is not None and not f.optional]
        self._present = [(f.name, f.encode or _identity) for f in self.fields if f.optional]
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
            if f.encode_plain is not None:
                try:
                    v = f.encode_plain(v)
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

    # --- fast path ----------------------------------------------------------------

    def encode(self, msg):
        """The payload dict of `msg` (the same as encode_plain's)."""
        try:
            payload = dict(zip(self.names, self._read(msg)))  # assignments below keep this order
            for name, conv in self._convert:
                payload[name] = conv(payload[name])
            for name, conv in self._present:
                payload[name] = conv(payload[name]) if msg.HasField(name) else None
            return payload
        except EnvelopeError:
            return self.encode_plain(msg)  # raises it again, naming the field

    def decode(self, payload):
        """The message of a payload dict (the same as decode_plain's, errors included)."""
        if type(payload) is dict and len(payload) == len(self.names):
            try:
                shape = tuple(map(type, self._values(payload)))
            except KeyError:  # an absent field, so also an extra one: the plain path tells
                return self.decode_plain(payload)
            plan = self._plans.get(shape, _MISSING)
            if plan is _MISSING:
                plan = self._plan(shape)
                if len(self._plans) < _MAX_PLANS:
                    self._plans[shape] = plan
            if plan is not None:
                ints, check_ints, nulls, convert = plan
                try:
                    if check_ints is not None:
                        check_ints(*ints(payload))
                    kwargs = payload.copy()
                    for name in nulls:
                        del kwargs[name]
                    for name, dec in convert:
                        kwargs[name] = dec(kwargs[name])
                    return self.cls(**kwargs)
                except (EnvelopeError, struct.error, TypeError, ValueError):
                    pass
        return self.decode_plain(payload)

    def _plan(self, shape):
        """How to decode payloads whose field values have these types, or None for the plain path."""
        nulls, convert, ints, formats = [], [], [], ""
        for f, t in zip(self.fields, shape):
            if t is type(None):
                if not f.optional:
                    return None
                nulls.append(f.name)
            elif t is f.json_type:
                if f.int_format:
                    ints.append(f.name)
                    formats += f.int_format
            else:
                convert.append((f.name, f.decode))
        for members in self.oneofs:
            if sum(t is not type(None) for n, t in zip(self.names, shape) if n in members) > 1:
                return None
        check_ints = struct.Struct("<" + formats).pack if formats else None
        return _tuple_getter(itemgetter, ints), check_ints, tuple(nulls), tuple(convert)


def _identity(v):
    return v


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
        self.decode = codec.decode_plain


def _plain_codec(descriptor):
    return _PlainCodec(codec_for(descriptor))
