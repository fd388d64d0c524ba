"""Our envelopes through Kafka Connect's real JsonConverter (tests/java/EnvelopeCheck.java).

Needs Java 17 and the jars `make jars` puts in .stack/kafka/libs; no running
servers. The converter must accept every mapped type and hold the same values
(checked against the protobuf message, scalar by scalar, with Connect's Java
types), and its own envelope of that data must decode back to the message.
"""

import json
import shutil
import struct
import subprocess

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bus.envelope import decode, encode, to_envelope
from bus.envelope.kinds import WRAPPER, element_kind
from bus.envelope.schema import connect_schema, is_map
from ordersync.config import ROOT
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from stack.infra import KAFKA_LIBS as LIBS
from tests.support.envelope_strategies import messages

CHECK = ROOT / "tests" / "java" / "EnvelopeCheck.java"
AllTypes = all_types_pb2.AllTypes
Nested = AllTypes.Nested



def run_converter(envelopes):
    """Each envelope (bytes) through JsonConverter; its parsed answer per envelope."""
    # Missing tools fail the test rather than skip it: `make test` installs both.
    assert shutil.which("java"), "java not found"
    assert list(LIBS.glob("connect-json-*.jar")), f"no Kafka jars in {LIBS}: run `make jars`"
    out = subprocess.run(["java", "-cp", f"{LIBS}/*", str(CHECK)],
                         input=b"\n".join(envelopes) + b"\n", capture_output=True, timeout=120,
                         check=True)
    # split("\n"), not splitlines(): strings may hold U+2028 and friends, raw.
    answers = [json.loads(line) for line in out.stdout.decode().split("\n") if line]
    assert len(answers) == len(envelopes), out.stderr.decode()
    return answers


def expected(msg):
    """What Connect should hold for msg, in EnvelopeCheck's tagged form."""
    return {f.name: expected_field(f, getattr(msg, f.name), msg) for f in msg.DESCRIPTOR.fields}


def expected_field(field, value, msg):
    if is_map(field):
        entry = field.message_type
        return [[expected_value(entry.fields_by_name["key"], k),
                 expected_value(entry.fields_by_name["value"], v)] for k, v in value.items()]
    if field.is_repeated:
        return [expected_value(field, v) for v in value]
    if field.has_presence and not msg.HasField(field.name):
        return None
    return expected_value(field, value)


def expected_value(field, v):
    kind = element_kind(field).name
    if element_kind(field) is WRAPPER:
        kind, v = element_kind(field.message_type.fields_by_name["value"]).name, v.value
    return {
        "string": lambda: f"string:{v}",
        "boolean": lambda: v,
        "int32": lambda: f"int32:{v}",
        "int64": lambda: f"int64:{v}",
        "uint32": lambda: f"int64:{v}",
        "uint64": lambda: f"decimal:{v}",
        "float": lambda: f"float:{v!r}",
        "double": lambda: f"double:{v!r}",
        "bytes": lambda: f"bytes:{v.hex()}",
        "enum": lambda: f"string:{field.enum_type.values_by_number[v].name}",
        "timestamp": lambda: f"timestamp:{v.seconds * 1000 + v.nanos // 1_000_000}",
        "struct": lambda: expected(v),
    }[kind]()


def normalise(x):
    """Compare floats by value (Java and Python print them differently); maps unordered."""
    if isinstance(x, dict):
        return {k: normalise(v) for k, v in x.items()}
    if isinstance(x, list):
        items = [normalise(v) for v in x]
        if all(isinstance(i, list) and len(i) == 2 for i in items) and items:
            return sorted(items, key=json.dumps)  # map pairs: order is not kept
        return items
    if isinstance(x, str) and x.startswith("float:"):  # rounded to float32; -0.0 == 0.0
        return ("float", struct.unpack("<f", struct.pack("<f", float(x[6:])))[0])
    if isinstance(x, str) and x.startswith("double:"):
        return ("double", float(x[7:]))
    return x


def populated():
    return AllTypes(
        f_string="héllo ✓", f_bool=True, f_int32=-2**31, f_sint32=-1, f_sfixed32=2**31 - 1,
        f_int64=-2**63, f_sint64=2**63 - 1, f_sfixed64=-5, f_uint32=2**32 - 1,
        f_uint64=2**64 - 1, f_fixed32=7, f_fixed64=2**63, f_float=0.1, f_double=1e-300,
        f_bytes=b"\x00\xff\x10", f_enum=all_types_pb2.COLOR_GREEN,
        f_nested=Nested(label="n", count=-3), r_int32=[1, -2], r_string=["a", ""],
        r_nested=[Nested(count=1), Nested(label="x")], m_string_int32={"a": 1, "b": -1},
        f_timestamp=Timestamp(seconds=-62_135_596_800, nanos=1_000_000),
        w_string={"value": ""}, w_int32={"value": 0}, w_int64={"value": -1},
        w_uint32={"value": 2**32 - 1}, w_uint64={"value": 0}, w_bool={"value": False},
        w_float={"value": -1.5}, w_double={"value": 2.5}, w_bytes={"value": b""},
        o_string="o", o_int64=0, o_enum=all_types_pb2.COLOR_UNSPECIFIED, c_nested=Nested(),
        m_int64_nested={-(2**63): Nested(label="min"), 5: Nested()},
        r_timestamp=[Timestamp(seconds=1, nanos=999_000_000)], r_bytes=[b"", b"a"],
        r_enum=[2, 0])


def check(msgs):
    answers = run_converter([encode(m) for m in msgs])
    for msg, answer in zip(msgs, answers):
        assert "error" not in answer, (answer["error"], msg)
        assert normalise(answer["value"]) == normalise(expected(msg))
        # The converter writes our schema back exactly, and its payload decodes to msg.
        assert answer["envelope"]["schema"] == connect_schema(type(msg))
        # Connect reads JSON floats as BigDecimal, which has no -0.0: it becomes 0.0.
        env = to_envelope(msg)
        env["payload"] = json.loads(json.dumps(env["payload"]),
                                    parse_float=lambda t: float(t) or 0.0)
        assert decode(json.dumps(answer["envelope"]), type(msg)) == decode(env, type(msg))


def test_real_converter_accepts_every_type_and_keeps_the_values():
    check([
        populated(), AllTypes(), AllTypes(c_text="t"), AllTypes(c_number=-1),
        order_event_pb2.OrderPlaced(order_id="o-1", user_id="u", product_id="CATALOG-001",
                                    qty=2, unit_price=150, total_price=300,
                                    created_at=Timestamp(seconds=1_700_000_000,
                                                         nanos=123_000_000)),
        order_event_pb2.OrderPlaced(),
        all_types_pb2.Flat(id="f", f_uint64=12345678901234567890, f_float=3.25,
                           f_timestamp=Timestamp(seconds=1)),
    ])


@settings(max_examples=3, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(st.lists(messages, min_size=10, max_size=10))
def test_real_converter_on_generated_messages(msgs):
    check(msgs)


def test_real_converter_rejects_non_connect_type_names():
    bad = [("order_id", "String"),  # the course's hand-written schema
           ("qty", "Int32"),
           ("qty", "float32"), ("qty", "float64")]  # Connect's Java enum names, not JSON's
    envelopes = []
    for field, bad_type in bad:
        env = to_envelope(order_event_pb2.OrderPlaced(order_id="o-1"))
        next(f for f in env["schema"]["fields"] if f["field"] == field)["type"] = bad_type
        envelopes.append(json.dumps(env).encode())
    for (_, bad_type), answer in zip(bad, run_converter(envelopes)):
        assert answer["error"] == ("org.apache.kafka.connect.errors.DataException: "
                                   f"Unknown schema type: {bad_type}")
