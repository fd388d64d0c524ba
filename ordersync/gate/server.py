"""The gate process: ORDERS_TOPIC -> ORDERS_TOPIC.accepted and .rejected, exactly once.

    python -m ordersync.gate          (the stack starts it with the services; GATE_INSTANCES of them)

Each polled batch is decided by gate.verdict against the gate's database (gate.first_events),
then written in one Kafka transaction with the batch's offsets (bus.processor): an accepted
event as our own canonical envelope, keyed by its order id, with the record's timestamp and
headers; a refused record as it came, with the reason and its origin in the headers of
bus.dead_letters (so `ops.dead_letters` lists and replays them). A duplicate writes
nothing. The gRPC health service says NOT_SERVING while the gate is stuck retrying a batch
(its database or Kafka is down), and until it has registered its transactional producer.
"""

import logging
import time
from collections import Counter

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from bus import dead_letters, tracing
from bus.envelope import encode
from bus.processor import ExactlyOnceProcessor, Output
from ordersync.config import exits_on_bad_setting
from ordersync.gate import config, metrics, verdict
from ordersync.gate.first_events import GateStore
from ordersync.serving import tracing as process_tracing
from ordersync.serving.grpc_server import build_server, health_reporter, run_in_background, serve_until_stopped, start_process

log = logging.getLogger("gate")
tracer = trace.get_tracer("ordersync.gate")

# Where an accepted event was on the orders topic (its dead letters say so in bus.consumer's names).
H_ORIGIN_TOPIC, H_ORIGIN_PARTITION, H_ORIGIN_OFFSET = "origin.topic", "origin.partition", "origin.offset"


def transform_for(settings: config.GateSettings, store: GateStore):
    """The processor's transform: a batch of orders records -> what the gate writes for them."""
    def transform(batch: list) -> list[Output]:
        began = time.time_ns()
        records = [(m.value(), (m.topic(), m.partition(), m.offset())) for m in batch]
        verdicts = store.decide(lambda known, first: verdict.decide(records, known, first))
        outputs = []
        for m, v in zip(batch, verdicts):
            with _verdict_span(m, v, began, len(batch)) as span:
                if v.outcome == verdict.ACCEPTED:
                    assert v.event is not None
                    outputs.append(accepted(settings.accepted_topic, m, v.event, span))
                elif v.outcome == verdict.REFUSED:
                    outputs.append(rejected(settings.rejected_topic, m, v, span))
        return outputs
    return transform


def _verdict_span(m, v: verdict.Verdict, began_ns: int, batch_size: int):
    """One record's verdict, a span of the order's trace (the record's traceparent is its parent).
    It covers the batch's decision, which is one query for all its records. A batch whose
    transaction is aborted and decided again has its spans twice: the attempt is not hidden."""
    key = m.key().decode("utf-8", "replace") if m.key() is not None else ""
    parent = tracing.extract(m.headers())
    span = tracer.start_span(f"gate {v.outcome}", context=parent, kind=SpanKind.CONSUMER, start_time=began_ns,
                             attributes={
                                 tracing.ORDER_ID: key, "ordersync.verdict": v.outcome,
                                 "ordersync.batch.records": batch_size, "messaging.system": "kafka",
                                 "messaging.source.name": m.topic(), "messaging.kafka.source.partition": m.partition(),
                                 "messaging.kafka.offset": m.offset()})
    if v.outcome == verdict.REFUSED:
        span.set_attribute(tracing.DEAD_LETTER_REASON, v.reason)
        span.set_status(Status(StatusCode.ERROR, f"{v.reason}: {v.message[:200]}"))
    return trace.use_span(span, end_on_exit=True)


def accepted(topic: str, m, event, span) -> Output:
    """The accepted event; its traceparent is the verdict's `span`, so the sink and the Catalog
    join the order's trace below the gate."""
    origin = [(H_ORIGIN_TOPIC, m.topic()), (H_ORIGIN_PARTITION, str(m.partition())),
              (H_ORIGIN_OFFSET, str(m.offset()))]
    return Output(topic, event.order_id.encode(), encode(event), [*tracing.with_context(m.headers() or (), span), *origin],
                  m.timestamp()[1] if m.timestamp()[0] else None)


def rejected(topic: str, m, v: verdict.Verdict, span) -> Output:
    """The refused record as it came, with the reason; its trace ends in a dead-letter span."""
    reason = dead_letters.headers(v.reason, v.message, (m.topic(), m.partition(), m.offset()), attempts=1)
    key, value, headers = m.key(), m.value(), [*(m.headers() or ()), *reason]
    tracing.dead_letter_span(trace.set_span_in_context(span), topic,
                             key.decode("utf-8", "replace") if key is not None else None, v.reason, v.message)
    if dead_letters.too_large(key, value):
        key, value, headers = dead_letters.truncated(key, value, reason, f"larger than {dead_letters.MAX_BYTES} bytes")
    return Output(topic, key, value, headers, m.timestamp()[1] if m.timestamp()[0] else None)


def counter_for(settings: config.GateSettings, gate_metrics: metrics.GateMetrics):
    """The processor's on_committed: count what a committed batch became, and log the refusals."""
    def committed(batch: list, outputs: list[Output]) -> None:
        refused: Counter[str] = Counter()
        for out in outputs:
            if out.topic == settings.rejected_topic:
                headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in out.headers}
                refused[headers[dead_letters.H_ERROR_CLASS]] += 1
                log.warning("refused %s[%s]@%s key=%s: %s", headers[dead_letters.H_ORIGIN_TOPIC],
                            headers[dead_letters.H_ORIGIN_PARTITION], headers[dead_letters.H_ORIGIN_OFFSET],
                            (out.key or b"")[:100].decode("utf-8", "replace"), headers[dead_letters.H_ERROR_MESSAGE])
        taken = sum(1 for out in outputs if out.topic == settings.accepted_topic)
        gate_metrics.records.labels(verdict.ACCEPTED).inc(taken)
        gate_metrics.records.labels(verdict.REFUSED).inc(sum(refused.values()))
        gate_metrics.records.labels(verdict.DUPLICATE).inc(len(batch) - len(outputs))
        for reason, n in refused.items():
            gate_metrics.refused.labels(reason).inc(n)
    return committed


@exits_on_bad_setting
def serve() -> None:
    settings = config.load()
    stop = start_process(f"gate[{settings.instance}]", settings.metrics_port, settings.listen_host)
    traces = process_tracing.start("gate", settings.instance, settings.traces)
    gate_metrics = metrics.GateMetrics()
    engine = sa.create_engine(settings.gate_db_url, pool_pre_ping=True, pool_recycle=3600, pool_size=1,
                              max_overflow=0)
    server, health = build_server(lambda s: None, [], settings.listen, serving=False, tls=settings.grpc_tls)
    report = health_reporter(health, [], gate_metrics.serving)
    processor = ExactlyOnceProcessor(
        settings.orders_topic, settings.group, settings.transactional_id,
        transform_for(settings, GateStore(engine, settings.catalog_db)),
        client=settings.kafka_client, extra_config={"client.id": settings.instance},
        on_health=report,
        on_committed=counter_for(settings, gate_metrics))
    gate_metrics.watch(processor)
    processing = run_in_background(processor.run, stop, "the gate's processing")
    log.info("health on %s; %s -> %s and %s as group %s (transactional id %s)", settings.listen,
             settings.orders_topic, settings.accepted_topic, settings.rejected_topic, settings.group,
             settings.transactional_id)
    serve_until_stopped(server, health, stop, background=processing,
                        close=(processor.close, engine.dispose, lambda: process_tracing.stop(traces)))
