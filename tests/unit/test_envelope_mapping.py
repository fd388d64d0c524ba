"""protobuf -> Connect schema and payload, one test per mapped field kind."""

import json

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from bus.envelope import decode, encode, to_envelope
from bus.envelope.schema import connect_schema
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2

AllTypes = all_types_pb2.AllTypes
Nested = AllTypes.Nested
TIMESTAMP = {"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}
DECIMAL = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
           "parameters": {"scale": "0", "connect.decimal.precision": "20"}}
NESTED = {"type": "struct", "name": "ordersync.testing.v1.AllTypes.Nested",
          "fields": [{"field": "label", "type": "string", "optional": False},
                     {"field": "count", "type": "int32", "optional": False}]}


def field_schema(message_class, name):
    (field,) = [f for f in connect_schema(message_class)["fields"] if f["field"] == name]
    return field


def test_order_placed_schema_is_the_course_dto_plus_created_at():
    schema = connect_schema(order_event_pb2.OrderPlaced)
    assert schema == {
        "type": "struct",
        "name": "ordersync.order.v1.OrderPlaced",
        "optional": False,
        "fields": [
            {"field": "order_id", "type": "string", "optional": False},
            {"field": "user_id", "type": "string", "optional": False},
            {"field": "product_id", "type": "string", "optional": False},
            {"field": "qty", "type": "int32", "optional": False},
            {"field": "unit_price", "type": "int32", "optional": False},
            {"field": "total_price", "type": "int32", "optional": False},
            {"field": "created_at", **TIMESTAMP, "optional": True},
        ],
    }


def test_order_placed_envelope_names_and_values():
    msg = order_event_pb2.OrderPlaced(order_id="o-1", user_id="u-1", product_id="CATALOG-001",
                                      qty=2, unit_price=150, total_price=300,
                                      created_at=Timestamp(seconds=1_700_000_000, nanos=123_000_000))
    env = json.loads(encode(msg))
    assert list(env) == ["schema", "payload"]
    assert [f["field"] for f in env["schema"]["fields"]] == list(env["payload"])
    assert env["payload"] == {"order_id": "o-1", "user_id": "u-1", "product_id": "CATALOG-001",
                              "qty": 2, "unit_price": 150, "total_price": 300,
                              "created_at": 1_700_000_000_123}
    assert decode(encode(msg), order_event_pb2.OrderPlaced) == msg


def test_every_connect_type_name_is_lower_case():
    def types(schema):
        yield schema["type"]
        for key in ("items", "keys", "values"):
            if key in schema:
                yield from types(schema[key])
        for f in schema.get("fields", []):
            yield from types(f)

    found = set(types(connect_schema(AllTypes)))
    assert found == {"string", "boolean", "int32", "int64", "float", "double", "bytes",
                     "struct", "array", "map"}


def test_schema_is_built_once_and_callers_get_copies():
    a = connect_schema(AllTypes)
    a["fields"].clear()
    assert connect_schema(AllTypes.DESCRIPTOR)["fields"]


# (field, message kwargs, schema fragment without "field", payload value)
CASES = [
    ("f_string", {"f_string": "héllo"}, {"type": "string", "optional": False}, "héllo"),
    ("f_bool", {"f_bool": True}, {"type": "boolean", "optional": False}, True),
    ("f_int32", {"f_int32": -2**31}, {"type": "int32", "optional": False}, -2**31),
    ("f_sint32", {"f_sint32": -5}, {"type": "int32", "optional": False}, -5),
    ("f_sfixed32", {"f_sfixed32": 2**31 - 1}, {"type": "int32", "optional": False}, 2**31 - 1),
    ("f_int64", {"f_int64": -2**63}, {"type": "int64", "optional": False}, -2**63),
    ("f_sint64", {"f_sint64": 2**63 - 1}, {"type": "int64", "optional": False}, 2**63 - 1),
    ("f_sfixed64", {"f_sfixed64": -7}, {"type": "int64", "optional": False}, -7),
    ("f_uint32", {"f_uint32": 2**32 - 1}, {"type": "int64", "optional": False}, 2**32 - 1),
    ("f_fixed32", {"f_fixed32": 2**32 - 1}, {"type": "int64", "optional": False}, 2**32 - 1),
    # Decimal payload: base64 of the big-endian two's-complement unscaled value.
    ("f_uint64", {"f_uint64": 2**64 - 1}, {**DECIMAL, "optional": False}, "AP//////////"),
    ("f_fixed64", {"f_fixed64": 0}, {**DECIMAL, "optional": False}, "AA=="),
    ("f_fixed64", {"f_fixed64": 255}, {**DECIMAL, "optional": False}, "AP8="),
    ("f_float", {"f_float": 0.5}, {"type": "float", "optional": False}, 0.5),
    ("f_double", {"f_double": 0.1}, {"type": "double", "optional": False}, 0.1),
    ("f_bytes", {"f_bytes": b"\x00\xffab"}, {"type": "bytes", "optional": False}, "AP9hYg=="),
    ("f_enum", {"f_enum": all_types_pb2.COLOR_GREEN}, {"type": "string", "optional": False},
     "COLOR_GREEN"),
    ("f_enum", {}, {"type": "string", "optional": False}, "COLOR_UNSPECIFIED"),
    ("f_nested", {"f_nested": Nested(label="x", count=3)}, {**NESTED, "optional": True},
     {"label": "x", "count": 3}),
    ("f_nested", {}, {**NESTED, "optional": True}, None),
    ("r_int32", {"r_int32": [3, -1]},
     {"type": "array", "items": {"type": "int32", "optional": False}, "optional": False}, [3, -1]),
    ("r_string", {}, {"type": "array", "items": {"type": "string", "optional": False},
                      "optional": False}, []),
    ("r_nested", {"r_nested": [Nested(label="a")]},
     {"type": "array", "items": {**NESTED, "optional": False}, "optional": False},
     [{"label": "a", "count": 0}]),
    ("r_timestamp", {"r_timestamp": [Timestamp(seconds=1)]},
     {"type": "array", "items": {**TIMESTAMP, "optional": False}, "optional": False}, [1000]),
    ("r_bytes", {"r_bytes": [b"a"]},
     {"type": "array", "items": {"type": "bytes", "optional": False}, "optional": False}, ["YQ=="]),
    ("r_enum", {"r_enum": [1, 0]},
     {"type": "array", "items": {"type": "string", "optional": False}, "optional": False},
     ["COLOR_RED", "COLOR_UNSPECIFIED"]),
    ("m_string_int32", {"m_string_int32": {"a": 1}},
     {"type": "map", "keys": {"type": "string", "optional": False},
      "values": {"type": "int32", "optional": False}, "optional": False}, {"a": 1}),
    # Non-string keys: JsonConverter's [[key, value], ...] form.
    ("m_int64_nested", {"m_int64_nested": {-3: Nested(label="z")}},
     {"type": "map", "keys": {"type": "int64", "optional": False},
      "values": {**NESTED, "optional": False}, "optional": False},
     [[-3, {"label": "z", "count": 0}]]),
    # Sub-millisecond nanos are truncated.
    ("f_timestamp", {"f_timestamp": Timestamp(seconds=1_700_000_000, nanos=987_654_321)},
     {**TIMESTAMP, "optional": True}, 1_700_000_000_987),
    ("f_timestamp", {"f_timestamp": Timestamp(seconds=-1, nanos=500_000_000)},
     {**TIMESTAMP, "optional": True}, -500),
    ("f_timestamp", {}, {**TIMESTAMP, "optional": True}, None),
    ("w_string", {"w_string": {"value": ""}}, {"type": "string", "optional": True}, ""),
    ("w_string", {}, {"type": "string", "optional": True}, None),
    ("w_int32", {"w_int32": {"value": -4}}, {"type": "int32", "optional": True}, -4),
    ("w_int64", {"w_int64": {"value": 2**40}}, {"type": "int64", "optional": True}, 2**40),
    ("w_uint32", {"w_uint32": {"value": 7}}, {"type": "int64", "optional": True}, 7),
    ("w_uint64", {"w_uint64": {"value": 5}}, {**DECIMAL, "optional": True}, "BQ=="),
    ("w_bool", {"w_bool": {"value": False}}, {"type": "boolean", "optional": True}, False),
    ("w_float", {"w_float": {"value": 1.5}}, {"type": "float", "optional": True}, 1.5),
    ("w_double", {"w_double": {"value": 2.25}}, {"type": "double", "optional": True}, 2.25),
    ("w_bytes", {"w_bytes": {"value": b"z"}}, {"type": "bytes", "optional": True}, "eg=="),
    ("o_string", {"o_string": ""}, {"type": "string", "optional": True}, ""),
    ("o_string", {}, {"type": "string", "optional": True}, None),
    ("o_int64", {"o_int64": 0}, {"type": "int64", "optional": True}, 0),
    ("o_enum", {"o_enum": all_types_pb2.COLOR_RED}, {"type": "string", "optional": True},
     "COLOR_RED"),
    # A oneof: one optional field per member, only the set one non-null.
    ("c_text", {"c_number": 4}, {"type": "string", "optional": True}, None),
    ("c_number", {"c_number": 4}, {"type": "int32", "optional": True}, 4),
    ("c_nested", {"c_nested": Nested()}, {**NESTED, "optional": True}, {"label": "", "count": 0}),
]


@pytest.mark.parametrize("name, kwargs, schema, value", CASES,
                         ids=[f"{c[0]}={c[3]!r}"[:40] for c in CASES])
def test_field_mapping(name, kwargs, schema, value):
    msg = AllTypes(**kwargs)
    assert field_schema(AllTypes, name) == {"field": name, **schema}
    env = json.loads(encode(msg))
    assert env["payload"][name] == value
    assert to_envelope(msg) == env
    if msg.f_timestamp.nanos % 1_000_000:  # truncated to millis on the way
        msg.f_timestamp.nanos -= msg.f_timestamp.nanos % 1_000_000
    assert decode(encode(msg), AllTypes) == msg


def test_payload_names_equal_schema_names_for_all_types():
    env = to_envelope(AllTypes())
    assert list(env["payload"]) == [f["field"] for f in env["schema"]["fields"]]


def test_timestamp_decodes_whole_millis():
    env = to_envelope(AllTypes())
    env["payload"]["f_timestamp"] = -1
    assert decode(env, AllTypes).f_timestamp == Timestamp(seconds=-1, nanos=999_000_000)


def test_decimal_also_decodes_from_a_json_number():
    env = to_envelope(AllTypes())
    env["payload"]["f_uint64"] = 2**64 - 1
    assert decode(env, AllTypes).f_uint64 == 2**64 - 1


def test_float_edge_values_decode():
    # Java prints the largest float32 as 3.4028235E38, a double slightly above it.
    env = to_envelope(AllTypes())
    env["payload"]["f_float"] = 3.4028235e38
    assert decode(env, AllTypes).f_float == 3.4028234663852886e38
    env["payload"]["f_float"] = 1  # a JSON integer is a number too
    assert decode(env, AllTypes).f_float == 1.0


def test_absent_optional_payload_field_reads_as_null():
    env = to_envelope(AllTypes(o_string="x"))
    del env["payload"]["o_string"]
    assert not decode(env, AllTypes).HasField("o_string")


def test_decode_accepts_str_and_a_reordered_schema():
    env = to_envelope(AllTypes(f_int32=1))
    env["schema"]["fields"].reverse()
    del env["schema"]["fields"][0]["optional"]  # "optional": false may be left out
    assert decode(json.dumps(env), AllTypes) == AllTypes(f_int32=1)


def test_recursive_message_is_refused():
    with pytest.raises(TypeError, match="recursive"):
        connect_schema(all_types_pb2.Recursive)
