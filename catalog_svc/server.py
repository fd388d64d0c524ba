"""CatalogService: serve products from the catalog database; apply order events to the stock.

Its products are for any caller with a valid token, of any role (users and operators browse, the
Order service asks about the products it sells); no anonymous caller (build_server's interceptor)."""

import logging
import time

import grpc
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from bus import tracing
from bus.consumer import EventConsumer, EventMeta
from bus.failures import PermanentError
from catalog_svc import config, metrics, retention, stock
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.config import exits_on_bad_setting, public_key
from ordersync.contract.event_rules import check_order_placed
from ordersync.contract.ids import InvalidInput, check_id
from ordersync.order.v1 import order_event_pb2
from ordersync.serving import auth
from ordersync.serving import tracing as process_tracing
from ordersync.serving.grpc_server import (
    MAX_WORKERS,
    build_server,
    health_reporter,
    run_in_background,
    serve_until_stopped,
    start_process,
)

log = logging.getLogger("catalog_svc")
tracer = trace.get_tracer("catalog_svc")


class CatalogService(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, engine):
        self._engine = engine

    def ListProducts(self, request, context):
        return catalog_service_pb2.ListProductsResponse(
            products=[catalog_service_pb2.Product(**row) for row in stock.list_products(self._engine)])

    def GetProduct(self, request, context):
        try:
            check_id("product_id", request.product_id)
        except InvalidInput as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        row = stock.get_product(self._engine, request.product_id)
        if row is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown product_id {request.product_id!r} (product ids "
                                                     "are case-sensitive; ListProducts lists them)")
        return catalog_service_pb2.GetProductResponse(product=catalog_service_pb2.Product(**row))


# The broker answers a fetch once 64 KiB are there or after 100 ms, not at every new event: under
# load a fetch (and a batch) per event costs the broker and the Catalog CPU for nothing, and
# 100 ms is well inside the stock's 1 s bound.
FETCH_IN_BATCHES = {"fetch.min.bytes": 65536, "fetch.wait.max.ms": 100}


def order_events_handler(engine, catalog_metrics: metrics.CatalogMetrics | None = None):
    """The consumer's batch handler: lower stock for polled OrderPlaced events, each once per
    order id, in one transaction per batch (stock.apply_orders).

    The gate lets through only events it accepted (gate.verdict); each is
    checked once more here, by the same rules, so that nothing written to the
    accepted topic past the gate can raise stock: one that breaks the event
    rules, names an unknown product or reuses an order id with other content is
    refused (it is dead-lettered); an unreachable or busy database raises
    TransientError (the batch is retried until it passes).
    """
    # Without metrics of its own (tests), it counts into a registry nobody reads.
    counts = catalog_metrics or metrics.CatalogMetrics(metrics.CollectorRegistry())

    def handle(items: list[tuple[order_event_pb2.OrderPlaced, EventMeta]]) -> dict[int, PermanentError]:
        began = time.time_ns()
        parents = [tracing.extract(meta.headers) for _, meta in items]
        # One span for the batch's one transaction, linked to the trace of every order in it.
        links = [Link(c) for c in (trace.get_current_span(p).get_span_context() for p in parents) if c.is_valid]
        with counts.handler_seconds.time(), tracer.start_as_current_span(
                "apply stock batch", links=links, attributes={"ordersync.batch.events": len(items)}) as batch:
            refused, orders, where = {}, [], []
            for i, (event, meta) in enumerate(items):
                try:
                    check_order_placed(event)
                except InvalidInput as e:
                    refused[i] = PermanentError(f"order event {event.order_id!r}: {e}")
                    continue
                orders.append(stock.Order(event.order_id, event.product_id, event.qty, meta.partition, meta.offset))
                where.append(i)
            outcome = stock.apply_orders(engine, orders) if orders else stock.Outcome()
            batch.set_attributes({"ordersync.batch.applied": outcome.applied,
                                  "ordersync.batch.duplicates": outcome.duplicates})
        refused.update({where[j]: error for j, error in outcome.refused.items()})
        repeated = {where[j] for j in outcome.repeated}
        counts.applied.inc(outcome.applied)
        counts.duplicates.inc(outcome.duplicates)
        for i, ((event, meta), parent) in enumerate(zip(items, parents)):
            _order_span(event, meta, parent, began, batch, refused.get(i), i in repeated)
        return refused
    return handle


def _order_span(event, meta: EventMeta, parent, began_ns: int, batch, refused: PermanentError | None,
                repeated: bool) -> None:
    """What the batch did for one order, in that order's trace (its record's traceparent is the
    parent): the batch's time, and the batch's span named, so its trace shows the transaction
    that lowered its stock. Only once the batch is done: a batch that failed and is retried
    shows as that batch's span with the error, then again."""
    outcome = "refused" if refused is not None else "applied before" if repeated else "stock lowered"
    span = tracer.start_span(f"catalog {outcome}", context=parent, kind=SpanKind.CONSUMER, start_time=began_ns,
                             links=[Link(batch.get_span_context())], attributes={
                                 tracing.ORDER_ID: event.order_id, "ordersync.product_id": event.product_id,
                                 "ordersync.qty": event.qty, "ordersync.outcome": outcome,
                                 "ordersync.batch.span_id": format(batch.get_span_context().span_id, "016x"),
                                 "messaging.system": "kafka", "messaging.source.name": meta.topic,
                                 "messaging.kafka.source.partition": meta.partition, "messaging.kafka.offset": meta.offset})
    if refused is not None:
        span.set_status(Status(StatusCode.ERROR, str(refused)[:200]))
    span.end()


@exits_on_bad_setting
def serve() -> None:
    settings = config.load()
    verifier = auth.Verifier(public_key(settings.auth_public_key))
    stop = start_process("catalog", settings.metrics_port, settings.listen_host)
    traces = process_tracing.start("catalog-svc", settings.listen, settings.traces)
    catalog_metrics = metrics.CatalogMetrics()
    engine = stock.create_engine(settings.catalog_db_url, connections=MAX_WORKERS + 1)  # + the consumer
    stock.prepare(engine)
    service = CatalogService(engine)
    service_names = [catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]
    server, health = build_server(
        lambda s: catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(service, s),
        service_names, settings.listen, verifier=verifier, tls=settings.grpc_tls, traces=traces)
    consumer = EventConsumer(settings.accepted_topic, order_event_pb2.OrderPlaced, settings.consumer_group,
                             batch_handler=order_events_handler(engine, catalog_metrics),
                             on_health=health_reporter(health, service_names, catalog_metrics.serving),
                             client=settings.kafka_client,
                             extra_config={**FETCH_IN_BATCHES, **settings.consumer_config})
    catalog_metrics.watch(consumer)
    consuming = run_in_background(consumer.run, stop, "the order event consumer")
    trimming = retention.AppliedRetention(engine, settings.accepted_topic, settings.kafka_client,
                                          settings.applied_trim_every_s, on_trimmed=catalog_metrics.trimmed.inc)
    run_in_background(trimming.run, stop, "the applied_orders retention")
    log.info("listening on %s, consuming %s as group %s", settings.listen, settings.accepted_topic,
             settings.consumer_group)
    serve_until_stopped(server, health, stop, background=consuming,
                        close=(consumer.close, engine.dispose, lambda: process_tracing.stop(traces)))
