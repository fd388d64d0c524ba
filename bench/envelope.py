"""Encode/decode rates of the envelope codec for OrderPlaced, next to plain json.

Goal: bus.envelope.encode within 1.5x of json.dumps of the bare payload dict.
Prints numbers; it is not a test. Run: .venv/bin/python bench/envelope.py [N]
"""

import json
import sys
import time

from bus import envelope
from ordersync.order.v1 import order_event_pb2


def rate(fn, args, n):
    best = float("inf")
    for _ in range(5):  # best of 5 rounds: least disturbed by the rest of the machine
        start = time.perf_counter()
        for a in args:
            fn(a)
        best = min(best, time.perf_counter() - start)
    return n / best


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    msgs = []
    for i in range(n):
        m = order_event_pb2.OrderPlaced(
            order_id=f"9f1c2d3e-0000-4000-8000-{i:012d}", user_id=f"user-{i % 97}",
            product_id=f"CATALOG-{i % 13:03d}", qty=1 + i % 5, unit_price=1999,
            total_price=(1 + i % 5) * 1999)
        m.created_at.FromMilliseconds(1_700_000_000_000 + i)
        msgs.append(m)
    payloads = [envelope.to_envelope(m)["payload"] for m in msgs]
    encoded = [envelope.encode(m) for m in msgs]
    bare = [json.dumps(p).encode() for p in payloads]

    enc = rate(envelope.encode, msgs, n)
    dumps = rate(json.dumps, payloads, n)
    # The serialiser encode() itself uses (one reused C encoder, compact).
    own_dumps = rate(envelope._dumps, payloads, n)
    dec = rate(lambda b: envelope.decode(b, order_event_pb2.OrderPlaced), encoded, n)
    loads = rate(json.loads, bare, n)
    loads_env = rate(json.loads, encoded, n)

    print(f"OrderPlaced, {n} messages, best of 5 rounds; envelope {len(encoded[0])} bytes, "
          f"bare payload {len(bare[0])} bytes")
    print(f"encode  bus.envelope.encode      {enc:>10,.0f} msg/s")
    print(f"        json.dumps(payload)      {dumps:>10,.0f} msg/s   ratio {dumps / enc:.2f}x "
          f"(goal <= 1.5x)")
    print(f"        same serialiser(payload) {own_dumps:>10,.0f} msg/s   ratio {own_dumps / enc:.2f}x "
          f"(cost of protobuf reads + schema splice)")
    print(f"decode  bus.envelope.decode      {dec:>10,.0f} msg/s")
    print(f"        json.loads(payload)      {loads:>10,.0f} msg/s   ratio {loads / dec:.2f}x")
    print(f"        json.loads(envelope)     {loads_env:>10,.0f} msg/s   ratio {loads_env / dec:.2f}x")


if __name__ == "__main__":
    main()
