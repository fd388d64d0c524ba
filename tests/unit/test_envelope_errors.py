"""Envelopes that do not fit the message type are refused, naming the field."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.envelope import EnvelopeError, decode, encode, to_envelope
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from tests.support.envelope_strategies import json_values

AllTypes = all_types_pb2.AllTypes
OrderPlaced = order_event_pb2.OrderPlaced


def envelope(**kwargs):
    return to_envelope(AllTypes(**kwargs))


def field(schema, name):
    (f,) = [f for f in schema["fields"] if f["field"] == name]
    return f


def refused(env, path, match):
    with pytest.raises(EnvelopeError, match=match) as info:
        decode(env, AllTypes)
    assert info.value.path == path
    return info.value


@pytest.mark.parametrize("name, value, match", [
    ("f_string", 1, "expected a string, got integer"),
    ("f_bool", 1, "expected a boolean, got integer"),
    ("f_int32", True, "expected an integer, got boolean"),
    ("f_int32", 1.0, "expected an integer, got number"),
    ("f_int32", 2**31, "out of range for int32"),
    ("f_int64", -2**63 - 1, "out of range for int64"),
    ("f_uint32", -1, "out of range for uint32"),
    ("f_uint64", -1, "out of range for uint64"),
    ("f_uint64", "/w==", "out of range for uint64"),  # 0xff = -1 in two's complement
    ("f_float", 1e39, "out of range for float32"),
    ("f_float", 2.0**128 - 2.0**103, "out of range for float32"),  # rounds to infinity
    ("f_double", "1.5", "expected a number, got string"),
    ("f_bytes", [1], "expected base64"),
    ("f_nested", [], "expected an object, got array"),
    ("r_int32", {}, "expected an array, got object"),
    ("m_string_int32", [], "expected an object, got array"),
    ("m_int64_nested", {}, "expected an array of"),
    ("f_timestamp", "2024-01-01T00:00:00Z", "expected epoch millis"),
])
def test_wrong_type(name, value, match):
    env = envelope()
    env["payload"][name] = value
    refused(env, name, match)


def test_wrong_type_deep_inside_names_the_path():
    env = envelope(r_nested=[AllTypes.Nested(), AllTypes.Nested()])
    env["payload"]["r_nested"][1]["count"] = "3"
    refused(env, "r_nested[1].count", "expected an integer")
    env = envelope(m_string_int32={"a": 1})
    env["payload"]["m_string_int32"]["a"] = None
    refused(env, "m_string_int32['a']", "got null")


@pytest.mark.parametrize("value", ["not base64!", "YQ", "YQ==YQ=="])
def test_bad_base64(value):
    env = envelope()
    env["payload"]["f_bytes"] = value
    refused(env, "f_bytes", "invalid base64")
    env["payload"]["f_bytes"] = "AA=="
    env["payload"]["r_bytes"] = ["AA==", value]
    refused(env, "r_bytes[1]", "invalid base64")


def test_unknown_enum_name():
    env = envelope()
    env["payload"]["f_enum"] = "COLOR_PURPLE"
    refused(env, "f_enum", "unknown enum name 'COLOR_PURPLE' for ordersync.testing.v1.Color")


def test_missing_required_field():
    env = envelope()
    del env["payload"]["f_int32"]
    refused(env, "f_int32", "required field is missing")


def test_null_required_field():
    env = envelope()
    env["payload"]["f_string"] = None
    refused(env, "f_string", "required field is null")


def test_extra_payload_field():
    env = envelope()
    env["payload"]["discount"] = 5
    refused(env, "discount", "not in ordersync.testing.v1.AllTypes")


def test_two_oneof_members_set():
    env = envelope(c_text="a")
    env["payload"]["c_number"] = 1
    refused(env, "c_number", "oneof members c_text, c_number")


def test_schema_type_String_is_rejected_naming_the_field():
    # The course's hand-written schema bug: Connect types are lower-case.
    env = to_envelope(OrderPlaced(order_id="o-1"))
    env["schema"]["fields"][0]["type"] = "String"
    with pytest.raises(EnvelopeError) as info:
        decode(json.dumps(env).encode(), OrderPlaced)
    assert info.value.path == "order_id"
    assert str(info.value) == "order_id: schema type 'String' does not match 'string'"


@pytest.mark.parametrize("change, path, match", [
    (lambda s: field(s, "f_int32").update(type="int64"), "f_int32", "schema type 'int64'"),
    # Connect's Schema.Type is FLOAT32, but JsonConverter only knows "float".
    (lambda s: field(s, "f_float").update(type="float32"), "f_float", "schema type 'float32'"),
    (lambda s: field(s, "f_timestamp").pop("name"), "f_timestamp", "schema name None"),
    (lambda s: field(s, "f_uint64")["parameters"].update(scale="2"), "f_uint64", "parameters"),
    (lambda s: field(s, "f_int32").update(optional=True), "f_int32", "must mark the field required"),
    (lambda s: field(s, "f_nested")["fields"].pop(), "f_nested.count", "schema lacks this field"),
    (lambda s: field(s, "r_nested")["items"]["fields"][0].update(type="bytes"),
     "r_nested[].label", "schema type 'bytes'"),
    (lambda s: field(s, "m_string_int32")["values"].update(type="int64"),
     "m_string_int32.{value}", "schema type 'int64'"),
    (lambda s: s["fields"].remove(field(s, "f_int32")), "f_int32", "schema lacks this field"),
    (lambda s: field(s, "f_timestamp").update(type="string", name=None), "f_timestamp",
     "schema type 'string'"),
    (lambda s: field(s, "f_nested").update(name="other.Nested"), "f_nested",
     "schema name 'other.Nested'"),
    (lambda s: field(s, "f_int32").update(optional="no"), "f_int32", "must be a boolean"),
    (lambda s: s.update(name="other.Message"), "", "schema name 'other.Message'"),
])
def test_schema_mismatch_names_the_field(change, path, match):
    env = envelope()
    change(env["schema"])
    refused(env, path, match)


@pytest.mark.parametrize("data, match", [
    (b"\xff", "not UTF-8"),
    (b"{", "not JSON"),
    (b'{"payload": {}}', '"schema" and "payload"'),
    (b"[]", '"schema" and "payload"'),
    (b'{"schema": {}, "payload": {"f_double": NaN}}', "NaN is not valid JSON"),
    (None, "tombstone"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"schema": null, "payload": {}}', "schema must be an object, got null"),
    (b'{"schema": {"type": "struct", "optional": false}, "payload": null}', "schema name None"),
    ("\ud800", "not JSON"),
])
def test_not_an_envelope(data, match):
    with pytest.raises(EnvelopeError, match=match):
        decode(data, AllTypes)


def test_our_own_prefix_with_trailing_garbage_is_refused():
    data = encode(AllTypes())[:-1] + b',"payload":{}}'
    with pytest.raises(EnvelopeError):
        decode(data, AllTypes)


@pytest.mark.parametrize("kwargs, path, match", [
    ({"f_float": float("inf")}, "f_float", "cannot be written as JSON"),
    ({"w_double": {"value": float("nan")}}, "w_double", "cannot be written as JSON"),
    ({"f_enum": 7}, "f_enum", "enum value 7 has no name"),
    ({"r_enum": [1, 9]}, "r_enum[1]", "enum value 9"),
])
def test_unencodable_message(kwargs, path, match):
    with pytest.raises(EnvelopeError, match=match) as info:
        encode(AllTypes(**kwargs))
    assert info.value.path == path


# Whatever a producer sends, decode raises EnvelopeError and nothing else: the consumer
# dead-letters it instead of crashing or retrying it for ever.
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_envelope_error_or_a_message(data):
    try:
        decode(data, AllTypes)
    except EnvelopeError:
        pass


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_any_json_envelope_gives_an_envelope_error_or_a_message(schema, payload):
    try:
        decode(json.dumps({"schema": schema, "payload": payload}), OrderPlaced)
    except EnvelopeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_our_schema_with_any_changed_field_gives_an_envelope_error_or_a_message(data):
    env = to_envelope(OrderPlaced(order_id="o-1", qty=2))
    fields = env["schema"]["fields"]
    names = [f["field"] for f in fields] + ["extra"]
    target = data.draw(st.sampled_from(fields + [env["schema"]]))
    target[data.draw(st.sampled_from(["type", "name", "optional", "fields", "field"]))] = \
        data.draw(json_values)
    env["payload"][data.draw(st.sampled_from(names))] = \
        data.draw(json_values)
    try:
        decode(json.dumps(env), OrderPlaced)
    except EnvelopeError:
        pass


def test_a_timestamp_beyond_year_9999_is_an_envelope_error():
    import json

    from google.protobuf.timestamp_pb2 import Timestamp

    from bus import envelope
    from ordersync.order.v1 import order_event_pb2
    doc = json.loads(envelope.encode(order_event_pb2.OrderPlaced(order_id="o", created_at=Timestamp(seconds=1))))
    doc["payload"]["created_at"] = 253_402_300_800_000  # 10000-01-01
    with pytest.raises(envelope.EnvelopeError, match="created_at: .*years 1 to 9999"):
        envelope.decode(json.dumps(doc), order_event_pb2.OrderPlaced)


@pytest.mark.parametrize("name", ["f_double", "f_float", "w_double"])
def test_an_integer_too_large_for_a_float_is_an_envelope_error(name):
    env = envelope()
    env["payload"][name] = 2**1100  # JSON allows it; a double does not
    refused(env, name, "an integer of 1101 bits is too large for a float field")
