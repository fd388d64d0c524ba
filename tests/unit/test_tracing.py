"""The trace context in Kafka headers (bus.tracing), the process tracer's settings
(ordersync.serving.tracing), and the journey's verdicts (ops.journey.decide): no servers."""

import dataclasses
import shutil

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from bus import tracing
from ops import journey
from ordersync.config import NO_TRACES, Settings, TraceExport
from ordersync.serving import tracing as process_tracing
from stack.topology import Topology


def sampled_span(ratio: float = 1.0):
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    return provider, provider.get_tracer("test").start_span("publish")


def test_a_records_headers_carry_the_span_that_wrote_it_and_a_reader_continues_its_trace():
    _, span = sampled_span()
    headers = tracing.headers_now(trace.set_span_in_context(span))
    assert [k for k, _ in headers] == ["traceparent"]
    context = span.get_span_context()
    version, trace_id, span_id, flags = headers[0][1].split("-")
    assert (version, trace_id, span_id) == ("00", f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    # As a consumer gets them: bytes.
    parent = trace.get_current_span(tracing.extract([("other", b"x"), ("traceparent", headers[0][1].encode())]))
    assert parent.get_span_context().trace_id == context.trace_id
    assert parent.get_span_context().span_id == context.span_id


def test_no_span_writes_no_header_and_a_record_without_one_starts_nothing():
    assert tracing.headers_now() == []  # no current span
    assert not trace.get_current_span(tracing.extract(None)).get_span_context().is_valid
    assert not trace.get_current_span(tracing.extract([("traceparent", b"garbage")])).get_span_context().is_valid


def test_a_record_written_on_gets_the_writers_span_instead_of_the_one_it_came_with():
    _, first = sampled_span()
    _, second = sampled_span()
    came_with = [("keep", b"1"), *tracing.headers_now(trace.set_span_in_context(first))]
    written = tracing.with_context(came_with, second)
    assert ("keep", b"1") in written and len([k for k, _ in written if k == "traceparent"]) == 1
    parent = trace.get_current_span(tracing.extract(written)).get_span_context()
    assert parent.span_id == second.get_span_context().span_id


def test_the_decision_to_keep_a_trace_is_made_where_it_starts():
    provider, _ = sampled_span()
    kept = provider.get_tracer("t").start_span("root")
    never = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0))).get_tracer("t")
    assert not never.start_span("a root here").is_recording()  # 0 %: not kept
    child = never.start_span("a hop", context=tracing.extract(tracing.headers_now(trace.set_span_in_context(kept))))
    assert child.is_recording()  # its trace was kept where it started: followed


def test_tracing_off_installs_nothing_and_the_stack_starts_no_zipkin():
    assert process_tracing.start("x", "y", NO_TRACES) is None
    assert process_tracing.server_interceptors(None) == [] and process_tracing.traced_channel(None) is None
    assert Settings.from_env({"TRACING": "off"}).trace_export == NO_TRACES
    on = Settings.from_env({"ZIPKIN_PORT": "9999", "TRACE_SAMPLE_RATIO": "0.25"}).trace_export
    assert on == TraceExport("http://127.0.0.1:9999", 0.25)
    topology = Topology.private(reap=False, tracing="OFF")
    try:
        assert topology.zipkin is None and "zipkin" not in {p.name for p in topology.infra}
        assert "prometheus" in {p.name for p in topology.infra}
    finally:
        shutil.rmtree(topology.settings.stack_dir)


def test_prometheus_scrapes_every_service_and_the_watchdog_on_their_metrics_ports():
    topology = Topology.private(reap=False, orders=2)
    try:
        targets = topology.scrape_targets()
        assert {(service, part) for service, part, _ in targets} == {
            ("gate", "gate-1"), ("catalog", "catalog-1"), ("order", "order-1"), ("order", "order-2"),
            ("sink-watchdog", "sink-watchdog")}
        for _, part, address in targets:
            port = topology.part(part).env["METRICS_PORT"] if part != "sink-watchdog" else topology.watchdog.env["METRICS_PORT"]
            assert address == f"127.0.0.1:{port}"
    finally:
        shutil.rmtree(topology.settings.stack_dir)


SETTINGS = Settings()


def found(**parts) -> journey.Journey:
    return dataclasses.replace(journey.Journey("o-1"), **parts)


def test_the_journeys_verdicts():
    letter = {"topic": SETTINGS.rejected_topic, "partition": 0, "offset": 7, "reason": "NotAnOrderPlaced", "message": "m"}
    cases = [
        (found(row={"r": 1}, stock={"s": 1}, accepted={"a": 1}), journey.IN_SYNC, "in sync"),
        (found(dead_letters=[letter]), journey.REFUSED, "refused by the gate: NotAnOrderPlaced: m"),
        (found(accepted={"a": 1}, row={"r": 1}), journey.PENDING, "pending: accepted by the gate, waiting for the stock"),
        (found(accepted={"a": 1}), journey.PENDING, "waiting for the row in the table and the stock"),
        (found(event={"e": 1}), journey.PENDING, "not decided by the gate yet"),
        (found(), journey.NOT_FOUND, "not found"),
    ]
    for j, code, words in cases:
        verdict, got = journey.decide(j, SETTINGS)
        assert (got, words in verdict) == (code, True), (verdict, got)


def test_the_key_partition_is_librdkafkas_consistent_hash():
    # CRC-32 of the key (rd_crc32 is zlib's), modulo the partitions; the integration test checks it
    # against where the producer really put an order.
    assert journey.key_partition("a", 6) == 0xE8B7BE43 % 6
    assert len({journey.key_partition(f"order-{i}", 6) for i in range(100)}) == 6


def test_the_journey_that_cannot_look_says_why_and_exits_5(capsys, monkeypatch):
    # Nothing listens on port 1: MariaDB cannot be asked (the integration tests ask a real one).
    for name, value in {"MARIADB_PORT": "1", "KAFKA_PORT": "2", "TRACING": "OFF"}.items():
        monkeypatch.setenv(name, value)
    assert journey.main(["some-order"]) == journey.CANNOT_LOOK
    err = capsys.readouterr().err
    assert err.startswith("ordersync trace: cannot look: ") and "Traceback" not in err, err
