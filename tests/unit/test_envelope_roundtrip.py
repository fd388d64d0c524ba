"""Property: decode(encode(m)) == m for every AllTypes message.

The strategies (tests/support/envelope_strategies.py) are constrained to what the
envelope can carry losslessly: finite floats, float32-representable values in
float fields, whole-millisecond timestamps, named enum values.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bus.envelope import decode, encode
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from tests.support.envelope_strategies import ints, messages, timestamps

AllTypes = all_types_pb2.AllTypes


# No per-example deadline: on a busy 2-core machine a long list can take seconds, which is no bug.
@settings(max_examples=300, deadline=None)
@given(messages)
def test_all_types_round_trip(msg):
    data = encode(msg)
    assert decode(data, AllTypes) == msg
    # The slow path (full parse and schema comparison) agrees with the fast one.
    assert decode(json.loads(data), AllTypes) == msg


@given(st.builds(order_event_pb2.OrderPlaced, order_id=st.text(), user_id=st.text(),
                 product_id=st.text(), qty=ints(32), unit_price=ints(32),
                 total_price=ints(32), created_at=timestamps))
def test_order_placed_round_trip(msg):
    assert decode(encode(msg), order_event_pb2.OrderPlaced) == msg
