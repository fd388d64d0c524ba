"""One trace per order, read back from the stack's real Zipkin (its HTTP API), and the journey
command (`ordersync trace`) on an order in sync and on a dead-lettered record.

An order placed with the `ordersync` command line: its trace holds the command's span, the call on
both sides, the product lookup and the publish on the Order instance, the gate's verdict, the
Catalog's stock change and the row landing (the span `ordersync trace` adds from the row's landed_at);
each hop the child of the one before. A poison record carrying a trace of its own: the trace ends in
the gate's refusal and a dead-letter span with the reason.
"""

import json
import secrets
import urllib.error
import urllib.request
import uuid

from ops import journey
from tests.poisons import poison
from tests.support.cli import cli_env, ordersync
from tests.support.prometheus import alerts
from tests.support.waiting import wait_until

ORDER_ID = "ordersync.order_id"


def zipkin_trace(stack, trace_id: str) -> list[dict]:
    """The spans Zipkin has of a trace ([] while it has none)."""
    try:
        with urllib.request.urlopen(f"{stack.zipkin_url}/api/v2/trace/{trace_id}", timeout=10) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def wait_for_spans(stack, trace_id: str, names: set[str]) -> list[dict]:
    """The trace once a span of each of `names` arrived (the services send theirs every few seconds)."""
    def arrived():
        spans = zipkin_trace(stack, trace_id)
        return spans if names <= {s["name"] for s in spans} else None
    return wait_until(arrived, timeout=60, what=f"the spans {sorted(names)} of trace {trace_id} in Zipkin")


def by_name(spans: list[dict], name: str) -> dict:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, found)
    return found[0]


def test_an_order_placed_with_the_cli_has_one_trace_across_every_hop(stack):
    env = cli_env(stack)
    user_id = f"trace-{uuid.uuid4().hex[:8]}"
    created = ordersync(env, "--json", "--user", user_id, "order", "create", "--product", "CATALOG-001", "--qty", "1")
    assert created.returncode == 0, created.stderr
    order_id = json.loads(created.stdout)["order"]["order_id"]

    traced = ordersync(env, "trace", order_id, "--wait", "90", "--json", timeout=150)
    assert traced.returncode == journey.IN_SYNC, traced.stdout + traced.stderr
    found = json.loads(traced.stdout)
    assert found["verdict"].startswith("in sync") and found["row"] and found["stock"], found
    # The journey found the event where the producer's partitioner put it (it searches there when
    # the Catalog has not told it the position).
    partitions = len(journey.watermarks_of(stack.kafka_client(), stack.orders_topic))
    assert found["event"]["partition"] == journey.key_partition(order_id, partitions)
    trace_id = found["trace_id"]
    assert found["trace_url"] == f"{stack.zipkin_url}/zipkin/traces/{trace_id}"

    server_name = "/ordersync.order.v1.orderservice/createorder"
    spans = wait_for_spans(stack, trace_id, {"ordersync order create", server_name, "product view lookup",
                                             f"publish {stack.orders_topic}", "gate accepted", "catalog stock lowered",
                                             journey.LANDED_SPAN})
    assert {s["localEndpoint"]["serviceName"] for s in spans} == {
        "ordersync-cli", "order-svc", "gate", "catalog-svc", stack.sink_name}
    command = by_name(spans, "ordersync order create")
    client = next(s for s in spans if s["name"] == server_name and s["kind"] == "CLIENT")
    server = next(s for s in spans if s["name"] == server_name and s["kind"] == "SERVER")
    publish, verdict = by_name(spans, f"publish {stack.orders_topic}"), by_name(spans, "gate accepted")
    applied, landed = by_name(spans, "catalog stock lowered"), by_name(spans, journey.LANDED_SPAN)
    # Each hop is the child of the one before it.
    assert "parentId" not in command
    assert client["parentId"] == command["id"] and server["parentId"] == client["id"]
    assert by_name(spans, "product view lookup")["parentId"] == server["id"] and publish["parentId"] == server["id"]
    assert verdict["parentId"] == publish["id"]
    assert applied["parentId"] == verdict["id"] and landed["parentId"] == verdict["id"]
    for span in (server, publish, verdict, applied, landed):
        assert span["tags"][ORDER_ID] == order_id, span
    assert server["localEndpoint"]["serviceName"] == "order-svc" and server["tags"]["ordersync.user_id"] == user_id
    assert int(publish["tags"]["messaging.kafka.offset"]) == found["event"]["offset"]
    assert verdict["tags"]["ordersync.verdict"] == "accepted"
    assert applied["tags"]["ordersync.outcome"] == "stock lowered" and "ordersync.batch.span_id" in applied["tags"]
    assert "ordersync trace" in landed["tags"]["ordersync.reconstructed"]
    print(f"trace {trace_id}: {len(spans)} spans; CreateOrder {server['duration'] / 1000:.1f} ms, "
          f"verdict -> row landed {landed['duration'] / 1000:.0f} ms")

    # Asked again, the journey adds no second landing span.
    assert ordersync(env, "trace", order_id).returncode == journey.IN_SYNC
    assert [s["name"] for s in zipkin_trace(stack, trace_id)].count(journey.LANDED_SPAN) == 1


def test_a_poison_records_trace_ends_in_a_dead_letter_span_with_the_reason(stack, producer):
    env = cli_env(stack)
    key = f"poison-trace-{uuid.uuid4().hex[:8]}"
    # A producer of its own that traces: its record carries a sampled traceparent.
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    producer.send(stack.orders_topic, poison("qty-1.5", key, "trace-user", "CATALOG-001"), key=key,
                  headers=[("traceparent", f"00-{trace_id}-{span_id}-01".encode())])

    traced = ordersync(env, "trace", key, "--wait", "90", timeout=150)
    assert traced.returncode == journey.REFUSED, traced.stdout + traced.stderr
    verdict_line = traced.stdout.strip().splitlines()[-1]
    assert verdict_line.startswith("verdict: refused by the gate: NotAnOrderPlaced"), traced.stdout
    assert f"/zipkin/traces/{trace_id}" in traced.stdout

    spans = wait_for_spans(stack, trace_id, {"gate refused", f"dead letter {stack.rejected_topic}"})
    refused, letter = by_name(spans, "gate refused"), by_name(spans, f"dead letter {stack.rejected_topic}")
    assert refused["parentId"] == span_id and letter["parentId"] == refused["id"]
    assert letter["tags"]["ordersync.dead_letter.reason"] == "NotAnOrderPlaced"
    assert "qty" in letter["tags"]["ordersync.dead_letter.message"] and letter["tags"]["error"], letter
    assert letter["localEndpoint"]["serviceName"] == "gate" and letter["tags"][ORDER_ID] == key
    # And the stack's Prometheus says dead letters are arriving.
    wait_until(lambda: alerts(stack, "DeadLettersArriving", "firing", part="gate-1"), timeout=90,
               what="DeadLettersArriving firing for gate-1 in Prometheus")


def test_the_journey_of_an_order_found_nowhere_says_so(stack):
    env = cli_env(stack)
    result = ordersync(env, "trace", f"nowhere-{uuid.uuid4().hex[:8]}")
    assert result.returncode == journey.NOT_FOUND, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("verdict: not found"), result.stdout
    # Positive control: an order that is there is found, by the same command.
    user_id = f"trace-{uuid.uuid4().hex[:8]}"
    created = ordersync(env, "--json", "--user", user_id, "order", "create", "--product", "CATALOG-002", "--qty", "1")
    assert created.returncode == 0, created.stderr
    found = ordersync(env, "trace", json.loads(created.stdout)["order"]["order_id"], "--wait", "90", timeout=150)
    assert found.returncode == journey.IN_SYNC, found.stdout + found.stderr
