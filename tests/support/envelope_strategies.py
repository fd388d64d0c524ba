"""Hypothesis strategies shared by the envelope tests (and the JsonConverter integration test).

messages: AllTypes messages constrained to what the envelope carries losslessly:
- floats are finite (JSON has no NaN/Infinity; encode refuses them), and
  float fields get float32-representable values (what a float field holds);
- timestamps are whole milliseconds (Connect Timestamp is epoch millis; finer
  nanos are truncated, which test_envelope_mapping covers) within the range
  google.protobuf.Timestamp allows;
- enum fields hold named values (an unnamed number cannot be written as a name).
json_values: any parsed JSON value.
"""

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2

AllTypes = all_types_pb2.AllTypes
Nested = AllTypes.Nested


def ints(bits, signed=True):
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else \
        st.integers(0, 2**bits - 1)


float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)
float64s = st.floats(allow_nan=False, allow_infinity=False)
colors = st.sampled_from([v.number for v in all_types_pb2.Color.DESCRIPTOR.values])
millis = st.integers(-62_135_596_800_000, 253_402_300_799_999)
timestamps = millis.map(lambda ms: Timestamp(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000))
nested = st.builds(Nested, label=st.text(), count=ints(32))


def wrapped(values):
    return st.none() | values.map(lambda v: {"value": v})


oneof = st.one_of(st.just({}), st.text().map(lambda v: {"c_text": v}),
                  ints(32).map(lambda v: {"c_number": v}),
                  nested.map(lambda v: {"c_nested": v}))

fields = st.fixed_dictionaries({
    "f_string": st.text(), "f_bool": st.booleans(),
    "f_int32": ints(32), "f_sint32": ints(32), "f_sfixed32": ints(32),
    "f_int64": ints(64), "f_sint64": ints(64), "f_sfixed64": ints(64),
    "f_uint32": ints(32, False), "f_uint64": ints(64, False),
    "f_fixed32": ints(32, False), "f_fixed64": ints(64, False),
    "f_float": float32s, "f_double": float64s, "f_bytes": st.binary(), "f_enum": colors,
    "f_nested": st.none() | nested,
    "r_int32": st.lists(ints(32)), "r_string": st.lists(st.text()), "r_nested": st.lists(nested),
    "m_string_int32": st.dictionaries(st.text(), ints(32)),
    "f_timestamp": st.none() | timestamps,
    "w_string": wrapped(st.text()), "w_int32": wrapped(ints(32)), "w_int64": wrapped(ints(64)),
    "w_uint32": wrapped(ints(32, False)), "w_uint64": wrapped(ints(64, False)),
    "w_bool": wrapped(st.booleans()), "w_float": wrapped(float32s),
    "w_double": wrapped(float64s), "w_bytes": wrapped(st.binary()),
    "o_string": st.none() | st.text(), "o_int64": st.none() | ints(64),
    "o_enum": st.none() | colors,
    "m_int64_nested": st.dictionaries(ints(64), nested),
    "r_timestamp": st.lists(timestamps), "r_bytes": st.lists(st.binary()),
    "r_enum": st.lists(colors),
}).map(lambda d: {k: v for k, v in d.items() if v is not None})

messages = st.builds(lambda d, o: AllTypes(**d, **o), fields, oneof)


order_placed = st.builds(order_event_pb2.OrderPlaced, order_id=st.text(), user_id=st.text(),
                         product_id=st.text(), qty=ints(32), unit_price=ints(32),
                         total_price=ints(32), created_at=st.none() | timestamps)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
