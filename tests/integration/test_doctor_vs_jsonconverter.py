"""The doctor's emulation of JsonConverter (ops.connect_json) against Kafka Connect's real one
(EnvelopeCheck.java). What decides in the system is the gate (tests/integration/test_doctor_truth.py);
the emulation explains problems and finds fixes, so it must say what the real converter does.

Needs Java 17 and the jars `make jars` puts in .stack/kafka/libs; no running servers. For each
envelope: where the converter throws, the emulation reports a converter-level problem, the first
of them with the converter's own exception message; where the converter accepts, it reports
none. Silent coercions ("abc" as int32 -> 0) are accepted by the converter: the emulation reports
them as its own "silent" class, with the value Connect really holds.
"""


import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from bus.envelope import encode
from bus.envelope.schema import connect_schema
from ops import connect_json, doctor
from ops.connect_json import CONVERTER, LEVELS, SILENT, SINK
from ordersync.order.v1 import order_event_pb2
from tests.support.course import COURSE_ENVELOPE, KEY, corrected_course
from tests.support.jsonconverter import envelope_check

TS = "org.apache.kafka.connect.data.Timestamp"
DATE = "org.apache.kafka.connect.data.Date"
TIME = "org.apache.kafka.connect.data.Time"
DEC = "org.apache.kafka.connect.data.Decimal"
OK = "accepted as is"


def one_field(type_, value, **schema):
    """An envelope of one field "x"; value _ABSENT leaves it out of the payload."""
    payload = {} if value is connect_json._ABSENT else {"x": value}
    return {"schema": {"type": "struct", "fields": [{"field": "x", "type": type_, **schema}], "optional": False},
            "payload": payload}


def course_with(index: int, type_: str) -> dict:
    """The course's envelope, corrected, with the type of field `index` replaced."""
    env = corrected_course()
    env["schema"]["fields"][index]["type"] = type_
    return env


def valid_order():
    return encode(order_event_pb2.OrderPlaced(
        order_id="o-1", user_id="u", product_id="CATALOG-001", qty=2, unit_price=150, total_price=300,
        created_at=Timestamp(seconds=1_700_000_000, nanos=123_000_000)))


# (case, envelope, the worst level the emulation must report, or OK)
CASES = [
    # The ones the issue names.
    ("course", COURSE_ENVELOPE, CONVERTER),
    ("course-corrected", corrected_course(), OK),
    ("course-wrong-type", {**corrected_course(), "payload": {**corrected_course()["payload"], "qty": "abc"}}, SILENT),
    ("course-number-for-string", {**corrected_course(), "payload": {**corrected_course()["payload"], "user_id": 7}},
     SILENT),  # user_id is optional there: null, silently
    ("course-unknown-type", course_with(1, "varchar"), CONVERTER),
    ("course-float32", course_with(4, "float32"), CONVERTER),
    ("course-float", course_with(4, "float"), OK),
    ("our-own", valid_order(), OK),
    # Type names and schema structure.
    ("Int32", one_field("Int32", 1), CONVERTER),
    ("float64", one_field("float64", 1.5), CONVERTER),
    ("no-type", {"schema": {"type": "struct", "fields": [{"field": "x"}]}, "payload": {"x": 1}}, CONVERTER),
    ("no-field-name", {"schema": {"type": "struct", "fields": [{"name": "x", "type": "int32"}]}, "payload": {"x": 1}},
     CONVERTER),
    ("empty-field-name", {"schema": {"type": "struct", "fields": [{"field": "", "type": "int32"}]},
                          "payload": {"": 1}}, CONVERTER),
    ("duplicate-field", {"schema": {"type": "struct", "fields": [{"field": "x", "type": "int32"}] * 2},
                         "payload": {"x": 1}}, CONVERTER),
    ("fields-not-array", {"schema": {"type": "struct", "fields": {}}, "payload": {}}, CONVERTER),
    ("array-no-items", one_field("array", [1]), CONVERTER),
    ("array-items-String", one_field("array", ["a"], items={"type": "String"}), CONVERTER),
    ("map-no-keys", one_field("map", {}, values={"type": "int32"}), CONVERTER),
    ("map-null-values", one_field("map", {}, keys={"type": "string"}, values=None), CONVERTER),
    ("param-not-string", one_field("bytes", "AQ==", name=DEC, parameters={"scale": 2}), CONVERTER),
    ("optional-as-string", one_field("int32", None, optional="true"), CONVERTER),
    ("unknown-schema-key", one_field("int32", 1, nullable=False), SILENT),
    ("struct-default", one_field("struct", {}, fields=[], default={}), CONVERTER),
    ("string-default-number", one_field("string", "a", default=5), CONVERTER),
    ("int-default-text", one_field("int32", connect_json._ABSENT, default="abc"), SILENT),
    # Schema fields and payload keys.
    ("absent-required", one_field("int32", connect_json._ABSENT), CONVERTER),
    ("absent-optional", one_field("int32", connect_json._ABSENT, optional=True), SILENT),
    ("absent-with-default", one_field("int32", connect_json._ABSENT, default=7), SILENT),
    ("null-required", one_field("int32", None), CONVERTER),
    ("null-optional", one_field("int32", None, optional=True), OK),
    ("extra-key", {"schema": {"type": "struct", "fields": []}, "payload": {"y": 1}}, SILENT),
    # Values against their types.
    ("int32-abc", one_field("int32", "abc"), SILENT),
    ("int32-true", one_field("int32", True), SILENT),
    ("int32-fraction", one_field("int32", 1.5), SILENT),
    ("int32-2^31", one_field("int32", 2**31), SILENT),
    ("int32-1e20", one_field("int32", 1e20), SILENT),
    ("int32-1e3", one_field("int32", 1e3), OK),
    ("int8-300", one_field("int8", 300), SILENT),
    ("int16-70000", one_field("int16", 70000), SILENT),
    ("int64-2^64+1", one_field("int64", 2**64 + 1), SILENT),
    ("boolean-text", one_field("boolean", "true"), SILENT),
    ("float-overflow", one_field("float", 3.5e38), SILENT),
    ("float-max", one_field("float", 3.4028235e38), OK),
    ("double-text", one_field("double", "1.5"), SILENT),
    ("string-number-required", one_field("string", 5), CONVERTER),
    ("string-number-optional", one_field("string", 5, optional=True), SILENT),
    ("bytes-not-base64", one_field("bytes", "not base64!"), CONVERTER),
    ("bytes-unpadded", one_field("bytes", "AAE"), CONVERTER),
    ("bytes-space-inside", one_field("bytes", "AA E="), CONVERTER),
    ("bytes-newline-after", one_field("bytes", "AAE=\n"), OK),
    ("bytes-number-optional", one_field("bytes", 5, optional=True), SILENT),
    ("timestamp-text", one_field("int64", "2024-01-01T00:00:00Z", name=TS), CONVERTER),
    ("timestamp-fraction", one_field("int64", 1.5, name=TS), CONVERTER),
    ("timestamp-ok", one_field("int64", 1_700_000_000_000, name=TS), OK),
    ("date-text", one_field("int32", "2024-01-01", name=DATE), CONVERTER),
    ("date-too-big", one_field("int32", 2**40, name=DATE), CONVERTER),
    ("time-last", one_field("int32", 86_400_000, name=TIME), OK),
    ("time-past-midnight", one_field("int32", 86_400_001, name=TIME), CONVERTER),
    ("decimal-base64", one_field("bytes", "BOI=", name=DEC, parameters={"scale": "2"}), OK),
    ("decimal-number-exact", one_field("bytes", connect_json.parse("12.50")[0], name=DEC, parameters={"scale": "2"}), OK),
    ("decimal-number-scale", one_field("bytes", 12.5, name=DEC, parameters={"scale": "2"}), SILENT),
    ("decimal-bad-base64", one_field("bytes", "zz!", name=DEC, parameters={"scale": "2"}), CONVERTER),
    ("decimal-empty", one_field("bytes", "", name=DEC, parameters={"scale": "0"}), CONVERTER),
    ("decimal-no-scale", one_field("bytes", "AQ==", name=DEC), CONVERTER),
    ("decimal-boolean", one_field("bytes", True, name=DEC, parameters={"scale": "2"}), CONVERTER),
    # Arrays, maps, nested structs.
    ("array-null-element", one_field("array", [5, None], items={"type": "string"}), CONVERTER),
    ("array-number-element", one_field("array", ["a", 5], items={"type": "string"}), CONVERTER),
    ("array-nested-number", one_field("array", [[5]], items={"type": "array", "items": {"type": "string"}}),
     CONVERTER),
    ("array-from-object", one_field("array", {"a": 1}, items={"type": "int32"}), SILENT),
    ("array-from-text", one_field("array", "abc", items={"type": "int32"}), SILENT),
    ("map-int-keys-object", one_field("map", {"1": 1}, keys={"type": "int32"}, values={"type": "int32"}), CONVERTER),
    ("map-short-pair", one_field("map", [[1]], keys={"type": "int32"}, values={"type": "int32"}), CONVERTER),
    ("map-not-pair", one_field("map", [5], keys={"type": "int32"}, values={"type": "int32"}), CONVERTER),
    ("map-string-keys-array", one_field("map", [["a", 1]], keys={"type": "string"}, values={"type": "int32"}),
     CONVERTER),
    ("map-value-number", one_field("map", [[1, 2]], keys={"type": "int32"}, values={"type": "string"}), CONVERTER),
    ("map-ok", one_field("map", [[1, "a"]], keys={"type": "int32"}, values={"type": "string"}), OK),
    ("struct-not-object", one_field("struct", 5, fields=[]), CONVERTER),
    ("struct-inner-number", one_field("struct", {"y": 5}, fields=[{"field": "y", "type": "string"}]), CONVERTER),
    # The envelope itself.
    ("not-json", b"not json", CONVERTER),
    ("nan", b'{"schema": {"type": "double"}, "payload": NaN}', CONVERTER),
    ("single-quotes", b"{'schema': {'type': 'string'}, 'payload': 'a'}", CONVERTER),
    ("trailing-comma", b'{"schema": {"type": "string"}, "payload": "a",}', CONVERTER),
    ("empty", b"", CONVERTER),
    ("array-top", b"[1]", CONVERTER),
    ("no-payload", {"schema": {"type": "struct", "fields": []}}, CONVERTER),
    ("extra-top-key", {"schema": {"type": "struct", "fields": []}, "payload": {}, "key": 1}, CONVERTER),
    ("schema-is-text", {"schema": "struct", "payload": {}}, CONVERTER),
    ("null-schema", {"schema": None, "payload": {"a": 1}}, SINK),
    ("string-schema", {"schema": {"type": "string"}, "payload": "a"}, SINK),
    ("required-null-payload", {"schema": {"type": "struct", "fields": []}, "payload": None}, CONVERTER),
    ("optional-null-payload", {"schema": {"type": "struct", "fields": [], "optional": True}, "payload": None}, SINK),
    ("bom", b'\xef\xbb\xbf{"schema": {"type": "struct", "fields": []}, "payload": {}}', OK),
    ("trailing-text", b'{"schema": {"type": "struct", "fields": []}, "payload": {}} trailing', SILENT),
]


def as_bytes(env) -> bytes:
    return env if isinstance(env, bytes) else env.encode() if isinstance(env, str) else connect_json.dumps(env).encode()


def java_tag(schema: dict, held):
    """What the emulation says Connect holds, as EnvelopeCheck prints it (_ABSENT: not comparable)."""
    type_, name = schema["type"], schema.get("name")
    if held is None or isinstance(held, bool) or held == []:
        return held
    if name == DEC:
        return f"decimal:{held:f}"
    if name is None and type_ in ("int8", "int16", "int32", "int64"):
        return f"{type_}:{held}"
    if name is None and type_ in ("float", "double") and held in (0.0, float("inf"), float("-inf")):
        return f"{type_}:" + {float("inf"): "Infinity", float("-inf"): "-Infinity"}.get(held, "0.0")
    return connect_json._ABSENT


@pytest.fixture(scope="module")
def answers():
    """The converter's answer per case, from one JVM."""
    # Our envelopes are single-line JSON (connect_json.dumps); the course's own text is made one line.
    lines = [b" ".join(as_bytes(env).split(b"\n")) for _, env, _ in CASES]
    return dict(zip([c[0] for c in CASES], envelope_check(lines)))


@pytest.mark.parametrize("case, env, worst", CASES, ids=[c[0] for c in CASES])
def test_the_emulation_agrees_with_the_real_converter(case, env, worst, answers):
    answer = answers[case]
    problems = connect_json.diagnose(as_bytes(env), KEY if case.startswith(("course", "our")) else ())
    converter_level = [p for p in problems if p.level == CONVERTER]
    lines = [p.line() for p in problems]
    if "value" in answer:  # the converter read it (it may still fail to write it back: "error" too)
        assert not converter_level, (answer, lines)
    else:
        assert converter_level, (answer["error"], lines)
        thrown = answer["error"].removeprefix("org.apache.kafka.connect.errors.")
        assert thrown.startswith(converter_level[0].effect), (thrown, lines)
    assert next((level for level in LEVELS if any(p.level == level for p in problems)), OK) == worst, lines
    if not problems:  # accepted as is: the converter writes it back too
        assert "error" not in answer, answer


# The cases with a silently changed scalar in field "x", and what the emulation says Connect holds.
SILENT_X = [(case, env, p.held) for case, env, worst in CASES if worst == SILENT and isinstance(env, dict)
            for p in connect_json.diagnose(env) if p.path == ("payload", "x") and p.held is not connect_json._ABSENT]


@pytest.mark.parametrize("case, env, held", SILENT_X, ids=[c[0] for c in SILENT_X])
def test_silent_changes_hold_what_the_converter_holds(case, env, held, answers):
    (schema_field,) = env["schema"]["fields"]
    expected = java_tag(schema_field, held)
    assert expected is not connect_json._ABSENT, f"add {held!r} to java_tag"
    assert answers[case]["value"]["x"] == expected


def test_the_course_envelope_fixed_by_the_emulation_is_read_by_the_converter():
    fixed, left = connect_json.fix(COURSE_ENVELOPE, KEY)
    assert left == []
    (answer,) = envelope_check([connect_json.dumps(fixed).encode()])
    assert answer["value"] == {"order_id": "string:~~~", "user_id": "string:user1", "product_id": "string:CATALOG-001",
                               "qty": "int32:5", "total_price": "int32:6000", "unit_price": "int32:1200"}
    assert "error" not in answer


def test_the_contract_schema_the_doctor_writes_is_read_by_the_converter():
    # The course's payload with every field of the contract: --fix gives it the contract's own schema.
    env = corrected_course()
    env["payload"].update(order_id="course-1", created_at=1_767_225_600_000)
    fixed, left = doctor.fix_envelope(connect_json.dumps(env).encode(), KEY)
    assert left == []
    assert fixed["schema"] == connect_schema(order_event_pb2.OrderPlaced)
    (answer,) = envelope_check([connect_json.dumps(fixed).encode()])
    assert answer["value"]["created_at"] == "timestamp:1767225600000"
    assert "error" not in answer
