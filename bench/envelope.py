"""Envelope codec speed for OrderPlaced, as ratios to plain json in the same run.

Goals: bus.envelope.encode(msg) takes at most 1.3x the time of json.dumps(payload),
and bus.envelope.decode(envelope) at most 1.5x the time of json.loads(payload bytes),
where payload is the bare payload dict (no schema) of the same message.

The machine may be shared, so every timing is the best of many short rounds, and the
rounds of the codec and of its json reference alternate: a busy moment slows both
alike instead of one of them. Each ratio is measured `reps` times (5); its min, median
and max are printed, and whether the max meets the goal. Prints numbers; it is not a
test, and exits 0 either way. The ratios go to bench/results/envelope-<timestamp>.json too.

Run: .venv/bin/python bench/envelope.py [messages per round] [reps]
"""

import gc
import json
import statistics
import sys
import time

import measure

from bus import envelope
from ordersync.order.v1 import order_event_pb2

ROUNDS = 800  # short alternating rounds per measurement; the best one counts
GOALS = {"encode": 1.3, "decode": 1.5}


def best_times(fns, n):
    """The best time per call of each (fn, args) pair, rounds alternating between them."""
    best = [float("inf")] * len(fns)
    gc.disable()  # as timeit does: a collection lands on whichever side happens to run
    try:
        for _ in range(ROUNDS):
            for i, (fn, args) in enumerate(fns):
                start = time.perf_counter()
                for a in args:
                    fn(a)
                best[i] = min(best[i], (time.perf_counter() - start) / n)
    finally:
        gc.enable()
    return best


def messages(n):
    msgs = []
    for i in range(n):
        m = order_event_pb2.OrderPlaced(
            order_id=f"9f1c2d3e-0000-4000-8000-{i:012d}", user_id=f"user-{i % 97}",
            product_id=f"CATALOG-{i % 13:03d}", qty=1 + i % 5, unit_price=1999,
            total_price=(1 + i % 5) * 1999)
        m.created_at.FromMilliseconds(1_700_000_000_000 + i)
        msgs.append(m)
    return msgs


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    msgs = messages(n)
    payloads = [envelope.to_envelope(m)["payload"] for m in msgs]
    encoded = [envelope.encode(m) for m in msgs]
    bare = [json.dumps(p).encode() for p in payloads]
    assert [envelope.decode(e, order_event_pb2.OrderPlaced) for e in encoded] == msgs

    def decode(data):
        return envelope.decode(data, order_event_pb2.OrderPlaced)

    cases = {"encode": ((envelope.encode, msgs), (json.dumps, payloads)),
             "decode": ((decode, encoded), (json.loads, bare))}
    started = time.strftime("%Y%m%d-%H%M%S")
    results: dict = {"bench": "envelope", "started": started, "machine": measure.machine(),
                     "arguments": {"messages": n, "reps": reps, "rounds": ROUNDS}, "goals": GOALS}
    times: dict[str, list] = {name: [] for name in cases}
    for _ in range(reps):
        for name, fns in cases.items():
            times[name].append(best_times(fns, n))

    print(f"OrderPlaced: {n} messages per round, best of {ROUNDS} alternating rounds, {reps} reps; "
          f"envelope {len(encoded[0])} bytes, bare payload {len(bare[0])} bytes")
    for name, (ours, ref) in zip(cases, (("bus.envelope.encode", "json.dumps(payload)"),
                                         ("bus.envelope.decode", "json.loads(payload)"))):
        ratios = sorted(t[0] / t[1] for t in times[name])
        us = statistics.median(t[0] for t in times[name]) * 1e6
        ref_us = statistics.median(t[1] for t in times[name]) * 1e6
        passed = ratios[-1] <= GOALS[name]
        print(f"{name}  {ours} {us:5.2f} us   {ref} {ref_us:5.2f} us   ratio "
              f"min {ratios[0]:.2f}  median {statistics.median(ratios):.2f}  max {ratios[-1]:.2f}x"
              f"   goal <= {GOALS[name]}x: {'met' if passed else 'MISSED'}")
        results[name] = {"ratios": ratios, "us": us, "json_us": ref_us}
    measure.RESULTS.mkdir(parents=True, exist_ok=True)
    out = measure.RESULTS / f"envelope-{started}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
