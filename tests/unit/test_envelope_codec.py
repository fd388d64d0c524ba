"""The codec's fast path against its plain path, and the kind table.

bus.codec has a plain path (one call per field, the definition) and a fast path
(bulk reads and checks, a JSON text template). Whatever the message or payload,
both must give the same bytes, the same message, or the same error.
"""

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bus
from bus.envelope import EnvelopeError, decode, encode, to_envelope
from bus.envelope import codec as codec_module
from bus.envelope.codec import codec_for, to_json
from bus.envelope.kinds import ARRAY, KINDS, MAP, STRUCT, WRAPPER, element_kind, kind_of
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from tests.support.envelope_strategies import json_values, messages, order_placed

AllTypes = all_types_pb2.AllTypes
OrderPlaced = order_event_pb2.OrderPlaced
MESSAGE_TYPES = [AllTypes, AllTypes.Nested, OrderPlaced, all_types_pb2.Flat]


def plain_envelope_bytes(msg):
    """The envelope by the plain path, serialised by the json module itself."""
    payload = json.dumps(to_envelope(msg)["payload"], separators=(",", ":"), ensure_ascii=False,
                         allow_nan=False)
    return (codec_for(msg.DESCRIPTOR).prefix + payload + "}").encode()


def outcome(fn, *args):
    """What fn(*args) gives: ("message", m) or ("error", text, path)."""
    try:
        return ("message", fn(*args))
    except EnvelopeError as e:
        return ("error", str(e), e.path)


# --- encode ------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(messages, order_placed, messages.map(lambda m: m.f_nested)))
def test_fast_encode_writes_the_same_bytes_as_the_plain_path(msg):
    assert encode(msg) == plain_envelope_bytes(msg)
    codec = codec_for(msg.DESCRIPTOR)
    assert codec.encode_json(msg) == to_json(codec.encode_plain(msg))


# Values that cannot be written: NaN and infinities, numbers without an enum name.
unwritable = st.fixed_dictionaries({}, optional={
    "f_float": st.floats(width=32), "f_double": st.floats(),
    "w_double": st.floats().map(lambda v: {"value": v}),
    "f_enum": st.integers(-3, 5), "o_enum": st.integers(-3, 5),
    "r_enum": st.lists(st.integers(-3, 5), max_size=3),
    "m_int64_nested": st.dictionaries(st.integers(-2, 2), st.builds(AllTypes.Nested), max_size=2),
})


@settings(max_examples=200, deadline=None)
@given(unwritable)
def test_fast_and_plain_encode_refuse_the_same_messages_alike(kwargs):
    msg = AllTypes(**kwargs)
    codec = codec_for(AllTypes.DESCRIPTOR)
    fast = outcome(codec.encode_json, msg)
    plain = outcome(codec.encode_plain, msg)
    if plain[0] == "message":
        assert fast == ("message", to_json(plain[1]))
    else:
        assert fast == plain


# --- decode ------------------------------------------------------------------------

# Values a payload field may hold: any JSON, and the edges of every kind's range.
tricky = json_values | st.sampled_from([
    2**31 - 1, 2**31, -(2**31) - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63) - 1, 2**64,
    -1, 0, True, False, 1.0, -0.0, 1e39, 3.4028235e38, None, "", "AA==", "/w==", "COLOR_RED",
    "not base64!", 253_402_300_800_000, -62_135_596_800_001, [], {}, [1, 2], {"a": 1}])


@st.composite
def payloads(draw):
    """A payload of one of our message types, as written, then changed a little."""
    msg = draw(st.one_of(messages, order_placed))
    payload = to_envelope(msg)["payload"]
    names = list(payload)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names + ["extra"]))
        if draw(st.booleans()) and name in payload:
            del payload[name]
        else:
            payload[name] = draw(tricky)
    return type(msg), payload


@settings(max_examples=500, deadline=None)
@given(payloads())
def test_fast_and_plain_decode_agree_on_any_payload(case):
    cls, payload = case
    codec = codec_for(cls.DESCRIPTOR)
    kept = json.loads(json.dumps(payload))
    plain = outcome(codec.decode_plain, payload)
    assert outcome(codec.decode, payload) == plain
    assert payload == kept  # decode leaves the caller's payload as it was
    # From envelope bytes: the payload parsed after our own schema's text.
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError:  # an infinity: no JSON text, so nothing to compare
        return
    assert outcome(decode, (codec.prefix + text + "}").encode(), cls) == plain


EDGES = [None, True, False, 0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**32 - 1, 2**32, 2**63 - 1,
         2**63, -(2**63) - 1, 2**64, 1.0, -0.0, 1.5, 1e39, 3.4028235e38, "", "x", "AA==", "/w==",
         "COLOR_RED", "not base64!", [], [1], ["a"], [None], [[1, {"label": "x"}]], {}, {"a": 1},
         {"label": "x", "count": 1}, {"value": 1}, 1_700_000_000_000, 253_402_300_800_000,
         -62_135_596_800_001, 2**1100]


@pytest.mark.parametrize("cls", [AllTypes, OrderPlaced])
def test_fast_and_plain_decode_agree_on_every_field_with_every_edge_value(cls):
    codec = codec_for(cls.DESCRIPTOR)
    written = to_envelope(cls(**({"c_text": "t"} if cls is AllTypes else {})))["payload"]
    changed = [{**written, name: value} for name in written for value in EDGES]
    changed += [{k: v for k, v in written.items() if k != name} for name in written]
    changed += [{**written, "extra": 1}, {**written, "c_number": 1, "c_nested": None}]
    for payload in changed:
        assert outcome(codec.decode, payload) == outcome(codec.decode_plain, payload), payload


def test_many_payload_shapes_beyond_the_remembered_plans():
    codec = codec_for(AllTypes.DESCRIPTOR)
    optional = [f.name for f in AllTypes.DESCRIPTOR.fields if f.has_presence][:8]
    full = to_envelope(AllTypes(f_string="x", f_nested={}, w_int32={"value": 3}))["payload"]
    for bits in range(2 ** len(optional)):  # 256 shapes: some nulls, some not
        payload = dict(full)
        for i, name in enumerate(optional):
            if bits >> i & 1:
                payload[name] = None
        assert outcome(codec.decode, payload) == outcome(codec.decode_plain, payload)
    assert len(codec._plans) <= codec_module._MAX_PLANS


# --- the kind table ----------------------------------------------------------------

def test_every_kind_record_is_reached_by_the_test_protos():
    fields = AllTypes.DESCRIPTOR.fields
    reached = {kind_of(f) for f in fields} | {element_kind(f) for f in fields}
    assert reached == set(KINDS)
    assert len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("name, kind", [
    ("f_int32", "int32"), ("f_sfixed64", "int64"), ("f_fixed32", "uint32"), ("f_uint64", "uint64"),
    ("f_enum", "enum"), ("f_timestamp", "timestamp"), ("f_nested", STRUCT), ("w_int32", WRAPPER),
    ("r_int32", ARRAY), ("m_string_int32", MAP),
])
def test_kind_of_a_field(name, kind):
    found = kind_of(AllTypes.DESCRIPTOR.fields_by_name[name])
    assert found is kind if not isinstance(kind, str) else found.name == kind


@pytest.mark.parametrize("name, kind", [
    ("f_bool", "boolean"), ("f_uint32", "uint32"), ("r_timestamp", "timestamp"),
    ("r_nested", "struct"), ("w_uint64", "wrapper"),
])
def test_element_kind_of_a_field(name, kind):
    assert element_kind(AllTypes.DESCRIPTOR.fields_by_name[name]).name == kind


def test_a_type_without_a_mapping_is_refused_naming_the_field():
    field = AllTypes.DESCRIPTOR.fields_by_name["f_string"]

    class Group:  # a proto2 group has no Connect mapping
        type = 10
        full_name = field.full_name
        is_repeated = False
        message_type = None

        def __getattr__(self, name):
            return getattr(field, name)
    with pytest.raises(TypeError, match="f_string: protobuf field type 10 has no Connect mapping"):
        element_kind(Group())


def test_no_code_is_generated_at_run_time():
    for path in Path(bus.__file__).parent.glob("*.py"):
        calls = {node.func.id for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert not calls & {"exec", "eval", "compile"}, path


@pytest.mark.parametrize("cls", MESSAGE_TYPES)
def test_the_default_message_round_trips_through_both_paths(cls):
    msg = cls()
    codec = codec_for(cls.DESCRIPTOR)
    assert codec.decode(codec.encode_plain(msg)) == codec.decode_plain(codec.encode_plain(msg)) == msg
    assert json.loads(codec.encode_json(msg)) == json.loads(to_json(codec.encode_plain(msg)))
