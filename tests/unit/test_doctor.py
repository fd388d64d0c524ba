"""The doctor without servers or Java: its JsonConverter emulation (ops.connect_json), every rule
with the exact line it prints, and its truth (ops.doctor: the gate's verdict and the orders
table's columns), asked of an in-memory database.

tests/integration/test_doctor_vs_jsonconverter.py checks the emulation against the real
JsonConverter, tests/integration/test_doctor_truth.py the truth against the real stack."""

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings

from bus.envelope import encode
from bus.envelope.schema import connect_schema
from ops import connect_json, doctor
from ops.connect_json import CONVERTER, SILENT, SINK
from ops.doctor import Column
from ordersync.config import ROOT, Settings
from ordersync.gate import verdict
from ordersync.order.v1 import order_event_pb2
from tests.support.course import COURSE_ENVELOPE, KEY, corrected_course
from tests.support.doctor_db import doctor_database, orders_table_columns
from tests.support.envelope_strategies import messages

COURSE_LINES = [
    'converter $.schema.fields[0].type: "String" is not a Connect type name -> '
    'DataException: Unknown schema type: String. Fix: "type": "string"',
    'silent    $.schema.fields[3]: no "pty" in the payload -> JsonConverter writes null. '
    'Fix: rename the schema field to "qty", the payload key it probably means',
    'silent    $.schema.fields[5]: no "unit-price" in the payload -> JsonConverter writes null. '
    'Fix: rename the schema field to "unit_price", the payload key it probably means',
    'silent    $.payload.qty: "qty" has no field in the schema -> JsonConverter drops it. '
    'Fix: rename the schema field "pty" to "qty"',
    'silent    $.payload.unit_price: "unit_price" has no field in the schema -> JsonConverter drops it. '
    'Fix: rename the schema field "unit-price" to "unit_price"',
]
def envelope(*fields, payload=None, **top):
    """A struct envelope of the given field schemas; payload defaults to {}."""
    return {"schema": {"type": "struct", "fields": list(fields), "optional": False, **top},
            "payload": {} if payload is None else payload}


def field(field_name="x", type_="int32", **more):
    return {"field": field_name, "type": type_, **more}


def found(env, key_fields=()):
    """(level, path, effect) of every problem."""
    return [(p.level, p.where, p.effect) for p in connect_json.diagnose(env, key_fields)]


def one(env, key_fields=()):
    problems = connect_json.diagnose(env, key_fields)
    assert len(problems) == 1, [p.line() for p in problems]
    return problems[0]


# ------------------------------------------------------------------ the course's envelope

def test_course_envelope_names_the_type_and_both_renames():
    problems = connect_json.diagnose(COURSE_ENVELOPE, KEY)
    assert [p.line() for p in problems] == COURSE_LINES
    assert [p.edit for p in problems] == [
        (("schema", "fields", 0, "type"), "string"),
        (("schema", "fields", 3, "field"), "qty"),
        (("schema", "fields", 5, "field"), "unit_price"),
        (("schema", "fields", 3, "field"), "qty"),
        (("schema", "fields", 5, "field"), "unit_price"),
    ]


def test_course_envelope_fixed():
    fixed, left = connect_json.fix(COURSE_ENVELOPE, KEY)
    assert left == []
    assert fixed == corrected_course()
    assert connect_json.diagnose(json.dumps(fixed), KEY) == []


# What the gate says of the course's envelope, as written and as connect_json fixes it.
COURSE_REFUSED = [
    "gate      $: NotAnOrderPlaced: not an OrderPlaced envelope: schema name 'orders' does not match "
    "'ordersync.order.v1.OrderPlaced' -> the gate writes it to orders.rejected; neither the table nor the stock "
    "gets it. Fix: write an envelope of the contract, ordersync.order.v1.OrderPlaced (as bus.envelope.encode does)",
    'gate      $.payload: no "created_at", a field of the contract -> the gate refuses an OrderPlaced without it. '
    'Fix: add "created_at" (epoch milliseconds); with every field of the contract in the payload, --fix writes the '
    "contract's schema",
    "gate      $.payload: with the contract's schema: BreaksEventRules: order '~~~' breaks the event rules: "
    "order_id '~~~' may only contain letters, digits, '.', '_' and '-' -> the gate refuses it still. "
    "Fix: follow the event rules (ordersync/contract/event_rules.py)",
    "verdict: REFUSED by the gate (NotAnOrderPlaced): it goes to orders.rejected; neither the table nor the stock "
    "gets it",
]


def test_course_envelope_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "course.json"
    path.write_text(COURSE_ENVELOPE)
    assert doctor.main([str(path)], doctor_database()) == 1
    assert capsys.readouterr().out.splitlines() == COURSE_LINES + COURSE_REFUSED


def test_course_envelope_fixed_is_still_refused(tmp_path, capsys):
    # JsonConverter would read the fixed envelope; the gate does not take it: no created_at, the
    # order id "~~~" breaks the id rule, the struct name "orders" is not the contract's.
    path = tmp_path / "course.json"
    path.write_text(COURSE_ENVELOPE)
    assert doctor.main(["--fix", str(path)], doctor_database()) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == corrected_course()
    assert err.splitlines() == COURSE_REFUSED
    path.write_text(out)
    assert doctor.main(["--fix", str(path)], doctor_database()) == 1
    assert capsys.readouterr().err.splitlines() == COURSE_REFUSED


# ------------------------------------------------------------------ envelopes that pass

def our_event(order_id="o-1", product_id="CATALOG-001", qty=2):
    return order_event_pb2.OrderPlaced(order_id=order_id, user_id="u", product_id=product_id, qty=qty,
                                       unit_price=150, total_price=qty * 150,
                                       created_at=Timestamp(seconds=1_700_000_000))


ACCEPTED = ("verdict: accepted: the gate passes it to orders.accepted, the sink writes it to orders_db.orders "
            "and the Catalog takes its stock")


def test_our_own_envelope_is_accepted():
    assert connect_json.diagnose(encode(our_event()), KEY) == []
    # "-": the envelope on stdin, so a process of its own (with the in-memory database) reads it there.
    script = ("import sys; from ops import doctor; from tests.support.doctor_db import doctor_database; "
              "sys.exit(doctor.main(['-'], doctor_database()))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, input=encode(our_event()), capture_output=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == ACCEPTED + "\n"


@settings(max_examples=50, deadline=None)
@given(messages)
def test_every_envelope_bus_encodes_is_accepted(msg):
    assert connect_json.diagnose(encode(msg)) == []


# ------------------------------------------------------------------ type names

NAMES = ("Connect's type names: int8, int16, int32, int64, float, double, boolean, string, bytes, array, map, "
         "struct")


@pytest.mark.parametrize("name, value, fix, edit", [
    ("String", "a", '"type": "string"', "string"),
    ("INT32", 1, '"type": "int32"', "int32"),
    ("float32", 1.5, '"type": "float"', "float"),  # Connect's Java enum name; JsonConverter reads "float"
    ("float64", 1.5, '"type": "double"', "double"),
    ("long", 1, '"type": "int64"', "int64"),
    ("strng", "a", 'did you mean "string"? ' + NAMES, None),
    ("varchar", "a", NAMES, None),
])
def test_unknown_type_name(name, value, fix, edit):
    p = one(envelope(field(type_=name), payload={"x": value}))
    assert (p.level, p.where, p.what, p.effect, p.fix) == (
        CONVERTER, "$.schema.fields[0].type", f'"{name}" is not a Connect type name',
        f"DataException: Unknown schema type: {name}", fix)
    assert p.edit == (None if edit is None else (("schema", "fields", 0, "type"), edit))


def test_a_fixable_type_name_still_checks_the_value_under_it():
    assert found(envelope(field(type_="Int32"), payload={"x": "abc"})) == [
        (CONVERTER, "$.schema.fields[0].type", "DataException: Unknown schema type: Int32"),
        (SILENT, "$.payload.x", "JsonConverter silently reads it as 0")]


def test_unknown_type_inside_an_array():
    assert found(envelope(field(type_="array", items={"type": "String"}), payload={"x": ["a"]})) == [
        (CONVERTER, "$.schema.fields[0].items.type", "DataException: Unknown schema type: String")]


@pytest.mark.parametrize("node, what", [
    ({"field": "x"}, 'no "type"'),
    ({"field": "x", "type": 5}, 'no "type"'),
])
def test_missing_type(node, what):
    p = one(envelope(node, payload={"x": 1}))
    assert (p.level, p.where, p.what, p.effect) == (
        CONVERTER, "$.schema.fields[0]", what, "DataException: Schema must contain 'type' field")


# ------------------------------------------------------------------ schema structure

@pytest.mark.parametrize("env, expected", [
    ({"schema": {"type": "struct"}, "payload": {}},
     [(CONVERTER, "$.schema", 'DataException: Struct schema\'s "fields" argument is not an array.')]),
    ({"schema": {"type": "struct", "fields": {}}, "payload": {}},
     [(CONVERTER, "$.schema.fields", 'DataException: Struct schema\'s "fields" argument is not an array.')]),
    (envelope({"type": "int32"}),
     [(CONVERTER, "$.schema.fields[0]", "DataException: Struct schema's field name not specified properly")]),
    (envelope(field("")),
     [(CONVERTER, "$.schema.fields[0].field", "SchemaBuilderException: fieldName cannot be null.")]),
    (envelope(field(), field(), payload={"x": 1}),
     [(CONVERTER, "$.schema.fields[1].field",
       "SchemaBuilderException: Cannot create field because of field name duplication x")]),
    (envelope(field(type_="array"), payload={"x": []}),
     [(CONVERTER, "$.schema.fields[0]", "DataException: Array schema did not specify the element type")]),
    (envelope(field(type_="map", values={"type": "int32"}), payload={"x": {}}),
     [(CONVERTER, "$.schema.fields[0]", "DataException: Map schema did not specify the key type")]),
    (envelope(field(type_="map", keys={"type": "string"}), payload={"x": {}}),
     [(CONVERTER, "$.schema.fields[0]", "DataException: Map schema did not specify the value type")]),
    (envelope(field(type_="map", keys=None, values={"type": "int32"}), payload={"x": {}}),
     [(CONVERTER, "$.schema.fields[0].keys", "SchemaBuilderException: keySchema cannot be null.")]),
    (envelope(field(type_="bytes", name="org.apache.kafka.connect.data.Decimal", parameters={"scale": 2}),
              payload={"x": "AQ=="}),
     [(CONVERTER, "$.schema.fields[0].parameters.scale", "DataException: Schema parameters must have string values.")]),
    (envelope(field(optional="true"), payload={"x": 1}),
     [(SILENT, "$.schema.fields[0].optional", "JsonConverter silently reads the field as required")]),
    (envelope(field(nullable=True), payload={"x": 1}),
     [(SILENT, "$.schema.fields[0].nullable", "JsonConverter ignores it")]),
    (envelope(field(type_="struct", fields=[], default={}), payload={"x": {}}),
     [(CONVERTER, "$.schema.fields[0].default", "SchemaBuilderException: Invalid default value")]),
    (envelope(field(type_="string", default=5), payload={"x": "a"}),
     [(CONVERTER, "$.schema.fields[0].default", "SchemaBuilderException: Invalid default value")]),
])
def test_schema_structure(env, expected):
    assert found(env) == expected


def test_a_field_named_with_name_is_pointed_at_field():
    p = one(envelope({"name": "x", "type": "int32"}, payload={"x": 1}))
    assert p.fix == '"field": "x" ("name" names a schema type, "field" the field)'


def test_unambiguous_schema_fixes_carry_an_edit():
    assert [p.edit for p in connect_json.diagnose(envelope(field(optional="true"), payload={"x": 1}))] == [
        (("schema", "fields", 0, "optional"), True)]
    env = envelope(field(type_="bytes", name="org.apache.kafka.connect.data.Decimal", parameters={"scale": 2}),
                   payload={"x": "AQ=="})
    assert [p.edit for p in connect_json.diagnose(env)] == [(("schema", "fields", 0, "parameters", "scale"), "2")]


# ------------------------------------------------------------------ schema fields and payload keys

def test_schema_field_without_payload_value():
    assert [(p.level, p.where, p.what, p.effect, p.fix) for p in connect_json.diagnose(envelope(
        field("a", optional=True), field("b"), field("c", default=7), payload={}))] == [
        (SILENT, "$.schema.fields[0]", 'no "a" in the payload', "JsonConverter writes null",
         'add "a" to the payload, or remove the field from the schema'),
        (CONVERTER, "$.schema.fields[1]", 'no "b" in the payload',
         "DataException: Invalid null value for required INT32 field",
         'add "b" to the payload, or remove the field from the schema'),
        (SILENT, "$.schema.fields[2]", 'no "c" in the payload', "JsonConverter writes its default 7",
         'add "c" to the payload, or remove the field from the schema'),
    ]


def test_payload_key_without_schema_field_gets_a_field_to_add():
    p = one(envelope(payload={"note": "hi"}))
    assert (p.level, p.where, p.what, p.effect, p.fix, p.edit) == (
        SILENT, "$.payload.note", '"note" has no field in the schema', "JsonConverter drops it",
        'add {"field": "note", "type": "string", "optional": false} to the schema\'s fields, '
        "or remove it from the payload", None)


def test_a_rename_needs_one_clear_match():
    # "ab" is as close to "xa" as to "xb": no rename is suggested for it.
    problems = connect_json.diagnose(envelope(field("ab", optional=True), payload={"xa": 1, "xb": 2}))
    assert [(p.where, p.edit) for p in problems] == [("$.schema.fields[0]", None), ("$.payload.xa", None),
                                                     ("$.payload.xb", None)]


def test_required_renamed_field_is_a_converter_problem_with_its_fix():
    problems = connect_json.diagnose(envelope(field("qyt"), payload={"qty": 1}))
    assert [(p.level, p.where, p.effect, p.edit) for p in problems] == [
        (CONVERTER, "$.schema.fields[0]", "DataException: Invalid null value for required INT32 field",
         (("schema", "fields", 0, "field"), "qty")),
        (SILENT, "$.payload.qty", "JsonConverter drops it", (("schema", "fields", 0, "field"), "qty"))]


# ------------------------------------------------------------------ values that do not fit their type

@pytest.mark.parametrize("type_, value, level, effect, held", [
    ("int32", "abc", SILENT, "JsonConverter silently reads it as 0", 0),
    ("int32", True, SILENT, "JsonConverter silently reads it as 0", 0),
    ("int32", 1.5, SILENT, "JsonConverter silently truncates it to 1", 1),
    ("int32", 2**31, SILENT, "JsonConverter silently wraps it to -2147483648", -2**31),
    ("int32", 1e20, SILENT, "JsonConverter silently wraps it to 1661992960", 1661992960),
    ("int8", 300, SILENT, "JsonConverter silently wraps it to 44", 44),
    ("int64", 2**64 + 1, SILENT, "JsonConverter silently wraps it to 1", 1),
    ("boolean", "true", SILENT, "JsonConverter silently reads it as false", False),
    ("float", 3.5e38, SILENT, "JsonConverter silently reads it as inf", float("inf")),
    ("double", "x", SILENT, "JsonConverter silently reads it as 0.0", 0.0),
    ("string", 5, CONVERTER, 'DataException: Invalid value: null used for required field: "x", schema type: STRING',
     None),
    ("bytes", 5, CONVERTER, 'DataException: Invalid value: null used for required field: "x", schema type: BYTES',
     None),
    ("bytes", "not base64!", CONVERTER, "DataException: Invalid bytes field", None),
    ("bytes", "AAE", CONVERTER, "DataException: Invalid bytes field", None),
])
def test_value_that_does_not_fit(type_, value, level, effect, held):
    text = json.dumps(envelope(field(type_=type_), payload={"x": value}))
    p = one(text)
    assert (p.level, p.where, p.effect) == (level, "$.payload.x", effect)
    if level == SILENT:
        assert p.held == held


@pytest.mark.parametrize("type_, value, what, fix, edit", [
    ("int32", "5", '"5" is a string, not an int32', "write 5 without quotes", 5),
    ("boolean", "true", '"true" is a string, not a boolean', "write true without quotes", True),
    ("string", 5, "5 is a number, not a string", 'write it in quotes: "5"', "5"),
    ("bytes", "AAE", '"AAE" is not base64 (standard alphabet, "=" padding)', 'pad it: "AAE="', "AAE="),
    ("int32", 2**31, "2147483648 is out of int32's range (-2147483648 to 2147483647)", 'use "type": "int64"', None),
])
def test_value_fixes(type_, value, what, fix, edit):
    p = one(envelope(field(type_=type_), payload={"x": value}))
    assert (p.what, p.fix) == (what, fix)
    assert p.edit == (None if edit is None else (("payload", "x"), edit))


def test_optional_string_given_a_number_is_silently_null():
    p = one(envelope(field(type_="string", optional=True), payload={"x": 5}))
    assert (p.level, p.effect, p.held) == (SILENT, "JsonConverter silently reads it as null", None)


def test_explicit_null_for_a_required_field():
    p = one(envelope(field(), payload={"x": None}))
    assert (p.level, p.where, p.effect) == (CONVERTER, "$.payload.x", "DataException: Invalid null value for required "
                                                                      "INT32 field")


TS = "org.apache.kafka.connect.data.Timestamp"
DEC = "org.apache.kafka.connect.data.Decimal"


@pytest.mark.parametrize("schema, value, level, effect, fix", [
    (field(type_="int64", name=TS), "2024-01-01T00:00:00Z", CONVERTER,
     "DataException: Invalid type for Timestamp, underlying representation should be integral but was STRING",
     "write 1704067200000 (epoch milliseconds of 2024-01-01T00:00:00Z, UTC if no offset was given)"),
    (field(type_="int64", name=TS), 1.5, CONVERTER,
     "DataException: Invalid type for Timestamp, underlying representation should be integral but was NUMBER",
     "write the epoch milliseconds as a JSON integer"),
    (field(type_="int32", name="org.apache.kafka.connect.data.Date"), "2024-01-01", CONVERTER,
     "DataException: Invalid type for Date, underlying representation should be integer but was STRING",
     "write 19723 (days since 1970-01-01 for 2024-01-01)"),
    (field(type_="int32", name="org.apache.kafka.connect.data.Time"), 86_400_001, CONVERTER,
     "DataException: Time values must use number of milliseconds greater than 0 and less than 86400000",
     "write the milliseconds since midnight (0 to 86400000) as a JSON integer"),
    (field(type_="bytes", name=DEC, parameters={"scale": "2"}), "zz!", CONVERTER,
     "DataException: Invalid bytes for Decimal field",
     "write the base64 of the unscaled value's big-endian two's complement (e.g. \"BOI=\" for 12.50), "
     "or a JSON number"),
    (field(type_="bytes", name=DEC, parameters={"scale": "2"}), True, CONVERTER,
     "DataException: Invalid type for Decimal, underlying representation should be numeric or bytes but was BOOLEAN",
     "write a JSON number, or the base64 of the unscaled value"),
    (field(type_="bytes", name=DEC, parameters={"scale": "2"}), 12.5, SILENT,
     'JsonConverter reads it with scale 1; Connect throws "Decimal value has mismatching scale" whenever it writes it '
     "again", "write 12.50"),
])
def test_logical_types(schema, value, level, effect, fix):
    p = one(json.dumps(envelope(schema, payload={"x": value})))
    assert (p.level, p.where, p.effect, p.fix) == (level, "$.payload.x", effect, fix)


def test_logical_types_that_fit():
    assert connect_json.diagnose(envelope(field(type_="int64", name=TS), field("d", type_="bytes", name=DEC,
                                                                          parameters={"scale": "2"}),
                                    payload={"x": 1_700_000_000_000, "d": "BOI="})) == []


# ------------------------------------------------------------------ arrays and maps

def test_array_elements_and_the_order_connect_reports_them_in():
    # Connect converts the whole field first (the null throws there) and validates it afterwards.
    assert found(envelope(field(type_="array", items={"type": "string"}), payload={"x": [5, None]})) == [
        (CONVERTER, "$.payload.x[1]", "DataException: Invalid null value for required STRING field"),
        (CONVERTER, "$.payload.x[0]",
         'DataException: Invalid value: null used for required element of array field: "x", schema type: STRING')]


def test_array_written_as_something_else():
    assert found(envelope(field(type_="array", items={"type": "int32"}), payload={"x": {"a": 1}})) == [
        (SILENT, "$.payload.x", "JsonConverter silently reads the list of its values")]
    assert found(envelope(field(type_="array", items={"type": "int32"}), payload={"x": "abc"})) == [
        (SILENT, "$.payload.x", "JsonConverter silently reads it as an empty array")]


def test_maps():
    int_keys = field(type_="map", keys={"type": "int32"}, values={"type": "string"})
    assert found(envelope(int_keys, payload={"x": {"1": "a"}})) == [
        (CONVERTER, "$.payload.x",
         "DataException: Maps with non-string fields should be encoded as JSON array of tuples, but found OBJECT")]
    assert found(envelope(int_keys, payload={"x": [[1]]})) == [
        (CONVERTER, "$.payload.x[0]", "DataException: Found invalid map entry, expected length 2 but found :1")]
    assert found(envelope(int_keys, payload={"x": [[1, 2]]})) == [
        (CONVERTER, "$.payload.x[0][1]",
         'DataException: Invalid value: null used for required value of map field: "x", schema type: STRING')]
    assert found(envelope(field(type_="map", keys={"type": "string"}, values={"type": "int32"}),
                          payload={"x": [["a", 1]]})) == [
        (CONVERTER, "$.payload.x",
         "DataException: Maps with string fields should be encoded as JSON objects, but found ARRAY")]


def test_nested_struct():
    inner = field(type_="struct", fields=[field("y", type_="string")])
    assert found(envelope(inner, payload={"x": 5})) == [
        (CONVERTER, "$.payload.x", "DataException: Structs should be encoded as JSON objects, but found NUMBER")]
    assert found(envelope(inner, payload={"x": {"y": 5, "z": 1}})) == [
        (CONVERTER, "$.payload.x.y",
         'DataException: Invalid value: null used for required field: "y", schema type: STRING'),
        (SILENT, "$.payload.x.z", "JsonConverter drops it")]


# ------------------------------------------------------------------ the sink's upsert key

def test_upsert_key_missing_from_the_schema():
    p = one(envelope(field("orderId", type_="string"), payload={"orderId": "o-1"}), KEY)
    assert (p.level, p.where, p.what, p.effect, p.fix) == (
        SINK, "$.schema.fields", 'the upsert key "order_id" (primary.key.fields) is not in the schema',
        "the JDBC sink cannot upsert the record and fails it",
        'add the field "order_id" to the schema and the payload (or rename "orderId" to "order_id"?)')


def test_upsert_key_null():
    assert found(envelope(field("order_id", type_="string", optional=True), payload={"order_id": None}), KEY) == [
        (SINK, "$.payload.order_id", "the database refuses a null primary key: the sink fails the record")]
    assert found(envelope(field("order_id", type_="string", optional=True)), KEY) == [
        (SILENT, "$.schema.fields[0]", "JsonConverter writes null"),
        (SINK, "$.payload.order_id", "the database refuses a null primary key: the sink fails the record")]


@pytest.mark.parametrize("connector, keys", [
    ({"name": "s", "config": {"primary.key.mode": "record_value", "primary.key.fields": "order_id, user_id",
                              "topics": "${ORDERS_TOPIC}"}}, ("order_id", "user_id")),
    ({"pk.mode": "record_value", "pk.fields": "order_id"}, ("order_id",)),  # Confluent's keys, bare config
    ({"config": {"primary.key.mode": "record_key", "primary.key.fields": "id"}}, ()),
    ({"config": {}}, ()),
])
def test_key_fields_from_the_connector(connector, keys):
    assert connect_json.key_fields(connector) == keys


def test_key_fields_of_our_connector():
    assert connect_json.key_fields(json.loads(doctor.DEFAULT_CONNECTOR.read_text())) == KEY


# ------------------------------------------------------------------ the envelope itself

ENVELOPE_ERROR = ('DataException: JsonConverter with schemas.enable requires "schema" and "payload" fields and '
                  "may not contain additional fields")
NOT_JSON = "DataException: Converting byte[] to Kafka Connect data failed due to serialization error: "


@pytest.mark.parametrize("env, expected", [
    (b"not json", [(CONVERTER, "$", NOT_JSON)]),
    ('{"schema": {"type": "double"}, "payload": NaN}', [(CONVERTER, "$", NOT_JSON)]),
    (b"[" * 100_000, [(CONVERTER, "$", NOT_JSON)]),
    (b"", [(CONVERTER, "$", ENVELOPE_ERROR)]),
    ("[1]", [(CONVERTER, "$", ENVELOPE_ERROR)]),
    ('{"schema": {"type": "struct", "fields": []}}', [(CONVERTER, "$", ENVELOPE_ERROR)]),
    ('{"schema": {"type": "struct", "fields": []}, "payload": {}, "key": 1}', [(CONVERTER, "$.key", ENVELOPE_ERROR)]),
    ('{"schema": null, "payload": {"a": 1}}',
     [(SINK, "$.schema", "JsonConverter reads the payload without a schema; the JDBC sink needs a struct schema and "
                         "fails the record")]),
    ('{"schema": "struct", "payload": {}}', [(CONVERTER, "$.schema", "DataException: Schema must contain 'type' field")]),
    ('{"schema": {"type": "string"}, "payload": "a"}',
     [(SINK, "$.schema.type", "the JDBC sink needs a struct (one column per field) and fails the record")]),
    ('{"schema": {"type": "struct", "fields": []}, "payload": null}',
     [(CONVERTER, "$.payload", "DataException: Invalid null value for required STRUCT field")]),
    ('{"schema": {"type": "struct", "fields": [], "optional": true}, "payload": null}',
     [(SINK, "$.payload", "JsonConverter gives a null value (like a tombstone); the JDBC sink fails the record")]),
    ('\ufeff{"schema": {"type": "struct", "fields": []}, "payload": {}} trailing',
     [(SILENT, "$", "JsonConverter reads the first JSON value and ignores the rest")]),
    (None, [(SINK, "$", "JsonConverter gives a null value; the JDBC sink writes rows and does not delete here "
                        "(delete.enabled=false): it fails the record")]),
])
def test_envelope_shape(env, expected):
    assert found(env) == expected


def test_json_path():
    assert connect_json.json_path(("payload", "unit-price", 0, "a_b")) == '$.payload["unit-price"][0].a_b'


def test_dumps_keeps_the_numbers_as_written():
    value, _ = connect_json.parse('{"a": 12.50, "b": 1e3, "c": [1, "x", null, true], "d": {}}')
    assert connect_json.dumps(value) == '{"a": 12.50, "b": 1E+3, "c": [1, "x", null, true], "d": {}}'


# ------------------------------------------------------------------ the gate decides

def judge(value, database=None, **table):
    """(lines, verdict line, exit code) of ops.doctor.judge with the default settings."""
    problems, verdict, code = doctor.judge(value, database, Settings(), **table)
    return [p.line() for p in problems], verdict, code


def refused(reason):
    return (f"verdict: REFUSED by the gate ({reason}): it goes to orders.rejected; neither the table nor the stock "
            "gets it")


def test_what_the_converter_would_silently_change_the_gate_refuses():
    env = json.loads(encode(our_event()))
    env["payload"]["qty"] = "abc"
    assert found(env, KEY) == [(SILENT, "$.payload.qty", "JsonConverter silently reads it as 0")]
    lines, verdict, code = judge(json.dumps(env).encode(), doctor_database())
    assert (verdict, code) == (refused("NotAnOrderPlaced"), 1)
    assert len(lines) == 1 and "qty" in lines[0]


@pytest.mark.parametrize("event, reason, message", [
    (our_event(qty=0), "BreaksEventRules", "order 'o-1' breaks the event rules: qty must be 1 to 10000, got 0"),
    (our_event(product_id="catalog-001"), "UnknownProduct",
     "order 'o-1' names product 'catalog-001', which the catalog does not have (product ids are case-sensitive)"),
])
def test_refused_by_the_gate(event, reason, message):
    lines, verdict, code = judge(encode(event), doctor_database())
    assert (verdict, code) == (refused(reason), 1)
    assert [line.split(" -> ")[0] for line in lines] == [f"gate      $: {reason}: {message}"]


def test_an_order_id_accepted_before():
    database = doctor_database()
    [first] = verdict.decide([(encode(our_event()), ("orders", 0, 7))], database.known_products,
                             database.first_events)
    assert first.outcome == verdict.ACCEPTED
    assert judge(encode(our_event()), database) == (
        [], "verdict: a duplicate of order o-1, accepted before with the same content: nothing changes", 0)
    lines, verdict_line, code = judge(encode(our_event(qty=3)), database)
    assert (verdict_line, code) == (refused("OrderIdReused"), 1)
    assert "accepted as 2 x CATALOG-001 at 150 for u, now 3 x CATALOG-001 at 150 for u" in lines[0]


def test_offline_checks_only_what_needs_no_database():
    assert judge(encode(our_event(product_id="NOWHERE-1"))) == (
        [], "verdict: valid on its own; the product and the order id not checked", 0)
    assert judge(encode(our_event(qty=0)))[1:] == (refused("BreaksEventRules"), 1)


# ------------------------------------------------------------------ the orders table

def with_column(column, table="orders"):
    """The orders table's columns with `column` in place of its namesake, or added."""
    columns = [c for c in orders_table_columns() if c.name != column.name]
    return doctor_database(tables={table: [*columns, column]})


TABLE_FATE = ("verdict: the gate accepts it, but orders_db.orders CANNOT HOLD it: the Catalog takes its stock and the "
              "table does not get the row [1 table]")


@pytest.mark.parametrize("column, line", [
    (Column("note", "varchar", "varchar(10)", False, False, 10),
     "table     $: column note (varchar(10)) is NOT NULL without a default, and the event does not fill it -> the "
     "sink cannot insert the row. Fix: give note a default, or let it be NULL"),
    (Column("order_id", "varchar", "varchar(2)", False, False, 2),
     "table     $.payload.order_id: 'o-1' is 3 characters long, more than a varchar(2) column holds -> the sink "
     "cannot write the row. Fix: make the column order_id fit the contract (stack/schema.py)"),
    (Column("qty", "varchar", "varchar(10)", False, False, 10),
     "table     $.payload.qty: a varchar(10) column cannot hold an int32 -> the sink cannot write the row. "
     "Fix: make the column qty fit the contract (stack/schema.py)"),
    (Column("unit_price", "tinyint", "tinyint(4)", False, False, None, 3, 0),
     "table     $.payload.unit_price: 150 is out of the range of a tinyint(4) column (-128 to 127) -> the sink "
     "cannot write the row. Fix: make the column unit_price fit the contract (stack/schema.py)"),
    (Column("total_price", "decimal", "decimal(4,2)", False, False, None, 4, 2),
     "table     $.payload.total_price: 300 has more digits than a decimal(4,2) column holds -> the sink cannot "
     "write the row. Fix: make the column total_price fit the contract (stack/schema.py)"),
    (Column("created_at", "date", "date", False, False),
     "table     $.payload.created_at: a date column cannot hold epoch milliseconds -> the sink cannot write the "
     "row. Fix: make the column created_at fit the contract (stack/schema.py)"),
])
def test_a_table_that_cannot_hold_the_row(column, line):
    lines, verdict_line, code = judge(encode(our_event()), with_column(column))
    assert (lines, code) == ([line], 1)
    assert verdict_line == TABLE_FATE


@pytest.mark.parametrize("column", [
    Column("note", "varchar", "varchar(10)", True, False, 10),   # nullable
    Column("note", "varchar", "varchar(10)", False, True, 10),   # with a default
    Column("order_id", "char", "char(3)", False, False, 3),
    Column("qty", "bigint", "bigint(20) unsigned", False, False, None, 20, 0),
    Column("created_at", "timestamp", "timestamp(3)", False, True),
])
def test_a_table_that_holds_the_row(column):
    assert judge(encode(our_event()), with_column(column)) == ([], ACCEPTED, 0)


def test_a_timestamp_column_ends_in_2038():
    event = our_event()
    event.created_at.seconds = 2_200_000_000  # 2039
    lines, _, code = judge(encode(event), with_column(Column("created_at", "timestamp", "timestamp", False, True)))
    assert code == 1 and lines[0].startswith("table     $.payload.created_at: 2200000000000 ms is outside")


def test_the_table_named_and_a_missing_one():
    database = with_column(Column("note", "int", "int(11)", True, False), table="orders_copy")
    assert judge(encode(our_event()), database, table="orders_copy") == (
        [], ACCEPTED.replace("orders_db.orders ", "orders_db.orders_copy "), 0)
    assert judge(encode(our_event()), database) == (
        ["table     $: there is no table orders_db.orders -> the sink would create one without the rules' CHECK "
         "constraints. Fix: run `make stack-up` (it creates the table), or name the table with --table"],
        TABLE_FATE, 1)


# ------------------------------------------------------------------ no database

def unreachable(*args):
    raise sa.exc.OperationalError("SELECT 1", {}, Exception("(2003, \"Can't connect to MySQL server\")"))


NO_DATABASE = doctor.Database(unreachable, unreachable, unreachable)


def test_a_database_that_cannot_be_reached(tmp_path, capsys):
    path = tmp_path / "e.json"
    path.write_bytes(encode(our_event()))
    assert doctor.main([str(path)], NO_DATABASE) == 1
    assert capsys.readouterr().out.splitlines() == [
        "database  cannot ask MariaDB at 127.0.0.1:3306 within 2 s ((2003, \"Can't connect to MySQL server\")): "
        "start it with `make stack-up`, or give --offline",
        "verdict: valid on its own; the product and the order id not checked"]
    assert doctor.main([str(path), "--offline"], NO_DATABASE) == 0
    assert capsys.readouterr().out == "verdict: valid on its own; the product and the order id not checked\n"
    path.write_bytes(encode(our_event(qty=0)))
    assert doctor.main([str(path)], NO_DATABASE) == 1  # refused before the lookups: no database asked
    assert capsys.readouterr().out.splitlines()[-1] == refused("BreaksEventRules")


# ------------------------------------------------------------------ --fix and the command line

def test_fix_gives_a_payload_of_the_contract_its_schema(tmp_path, capsys):
    env = corrected_course()
    env["schema"]["fields"][0]["type"] = "String"
    env["payload"].update(order_id="course-1", created_at=1_767_225_600_000)
    path = tmp_path / "e.json"
    path.write_text(json.dumps(env))
    assert doctor.main(["--fix", str(path)], doctor_database()) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"schema": connect_schema(order_event_pb2.OrderPlaced), "payload": env["payload"]}
    assert err == ACCEPTED + "\n"


def test_fix_of_a_duplicate_changes_nothing(tmp_path, capsys):
    database = doctor_database()
    verdict.decide([(encode(our_event()), ("orders", 0, 7))], database.known_products, database.first_events)
    path = tmp_path / "e.json"
    path.write_bytes(encode(our_event()))
    assert doctor.main(["--fix", str(path)], database) == 0
    assert capsys.readouterr().err.endswith("nothing changes\n")


def test_fix_says_what_has_no_unambiguous_fix(tmp_path, capsys):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(envelope(field(type_="String"), payload={"x": "abc", "y": 1})))
    assert doctor.main(["--fix", str(path)], doctor_database()) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == json.loads(path.read_text())  # nothing fixed: not all of it could be
    assert err.splitlines() == [
        'no unambiguous fix: sink      $.schema.fields: the upsert key "order_id" (primary.key.fields) is not in '
        'the schema -> the JDBC sink cannot upsert the record and fails it. Fix: add the field "order_id" to the '
        "schema and the payload",
        'no unambiguous fix: silent    $.payload.y: "y" has no field in the schema -> JsonConverter drops it. Fix: '
        'add {"field": "y", "type": "int32", "optional": false} to the schema\'s fields, or remove it from the '
        "payload",
        "gate      $: NotAnOrderPlaced: not an OrderPlaced envelope: schema name None does not match "
        "'ordersync.order.v1.OrderPlaced' -> the gate writes it to orders.rejected; neither the table nor the stock "
        "gets it. Fix: write an envelope of the contract, ordersync.order.v1.OrderPlaced (as bus.envelope.encode "
        "does)",
        *(f'gate      $.payload: no "{name}", a field of the contract -> the gate refuses an OrderPlaced without it. '
          f"Fix: add \"{name}\" ({kind}); with every field of the contract in the payload, --fix writes the "
          "contract's schema"
          for name, kind in [("order_id", "a string"), ("user_id", "a string"), ("product_id", "a string"),
                             ("qty", "an int32"), ("unit_price", "an int32"), ("total_price", "an int32"),
                             ("created_at", "epoch milliseconds")]),
        refused("NotAnOrderPlaced")]


@pytest.mark.parametrize("text", [b"not json", b"[1]"])
def test_fix_of_no_envelope_prints_none(tmp_path, capsys, text):
    path = tmp_path / "e.json"
    path.write_bytes(text)
    assert doctor.main(["--fix", str(path)], doctor_database()) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == refused("NotAnOrderPlaced")


def test_fix_applies_what_a_first_fix_uncovers():
    # Only once "qyt" is renamed is "qty"'s value read: "5" then gets its own fix.
    fixed, left = connect_json.fix(envelope(field("qyt"), payload={"qty": "5"}))
    assert (fixed, left) == (envelope(field("qty"), payload={"qty": 5}), [])


@pytest.mark.parametrize("argv", [
    [], ["a.json", "--topic", "t", "--offset", "0:1"], ["--topic", "t"], ["--topic", "t", "--offset", "x"],
    ["a.json", "--bootstrap", "h:1"], ["a.json", "--table", "orders; DROP TABLE x"],
])
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        doctor.main(argv, doctor_database())
    assert exit_.value.code == 2


def test_unreadable_inputs(tmp_path, capsys):
    assert doctor.main([str(tmp_path / "missing.json")], doctor_database()) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "e.json").write_text("{}")
    assert doctor.main([str(tmp_path / "e.json"), "--connector", str(tmp_path / "nope.json")], doctor_database()) == 2
    assert "cannot read the connector" in capsys.readouterr().err


def test_a_record_from_a_topic(capsys):
    asked = []

    def read_record(client, topic, partition, offset):
        asked.append((client["bootstrap.servers"], topic, partition, offset))
        return COURSE_ENVELOPE.encode()
    assert doctor.main(["--topic", "orders", "--offset", "2:17", "--bootstrap", "h:9"], doctor_database(),
                       read=read_record) == 1
    assert asked == [("h:9", "orders", 2, 17)]
    assert capsys.readouterr().out.splitlines() == COURSE_LINES + COURSE_REFUSED


def test_the_record_the_gate_accepted_from_a_topic(capsys):
    # Asked of the very record the gate accepted, the gate accepts it again; of a copy of it, a duplicate.
    database = doctor_database()
    verdict.decide([(encode(our_event()), ("orders", 2, 17))], database.known_products, database.first_events)
    def read(*args):
        return encode(our_event())
    assert doctor.main(["--topic", "orders", "--offset", "2:17"], database, read=read) == 0
    assert capsys.readouterr().out == ACCEPTED + "\n"
    assert doctor.main(["--topic", "orders", "--offset", "2:18"], database, read=read) == 0
    assert capsys.readouterr().out.endswith("nothing changes\n")


def test_a_tombstone_from_a_topic(capsys):
    assert doctor.main(["--topic", "orders", "--offset", "0:0"], doctor_database(), read=lambda *args: None) == 1
    assert capsys.readouterr().out.splitlines() == [
        "sink      $: the record has no value (a tombstone) -> JsonConverter gives a null value; the JDBC sink writes "
        "rows and does not delete here (delete.enabled=false): it fails the record. Fix: send an envelope",
        "gate      $: NotAnOrderPlaced: no envelope: the value is null (a tombstone) -> the gate writes it to "
        "orders.rejected; neither the table nor the stock gets it. Fix: write an envelope of the contract, "
        "ordersync.order.v1.OrderPlaced (as bus.envelope.encode does)",
        refused("NotAnOrderPlaced")]
