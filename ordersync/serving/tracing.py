"""Each process's tracer: its spans go to Zipkin (ZIPKIN_HOST/_PORT), one trace per order.

A trace starts where an order starts (the command-line client's call, or CreateOrder when the
caller sent no trace context) and follows it through every hop: the gRPC call (the
instrumentation's server and client interceptors), the publish and the records it becomes (W3C
`traceparent` in each Kafka record's headers: bus.tracing), the gate's verdict, the Catalog's
batch. Whether a trace is kept is decided once, where it starts (TRACE_SAMPLE_RATIO); every
later hop follows that decision (ParentBased), so a trace is never kept in part.

With TRACING=OFF no provider is installed: the API's spans are no-ops, and the servers and
channels get no interceptor (what a call costs then is what it cost before tracing).
"""

import logging

from opentelemetry import trace
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.grpc import client_interceptor, filters, grpcext, server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ordersync.config import TraceExport

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_S = 5  # one POST of a batch of spans to Zipkin
# Health checks (every part's, every second) and reflection (grpcurl) are not orders' hops.
_NOT_TRACED = filters.negate(filters.any_of(filters.health_check(),
                                            filters.service_prefix("grpc.reflection.")))


def start(service: str, instance: str, export: TraceExport) -> TracerProvider | None:
    """Install this process's tracer provider: `service` is its name in Zipkin (order-svc,
    catalog-svc, gate, ordersync-cli), `instance` which one of them. None when tracing is off."""
    if not export.on:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.instance.id": instance}),
        sampler=ParentBased(TraceIdRatioBased(export.sample_ratio)))
    # Spans leave on a thread of their own, in batches: a call never waits for Zipkin, and a
    # Zipkin that is down costs dropped spans (logged), never an order.
    provider.add_span_processor(BatchSpanProcessor(
        ZipkinExporter(endpoint=f"{export.zipkin_url}/api/v2/spans", timeout=EXPORT_TIMEOUT_S)))
    trace.set_tracer_provider(provider)
    log.info("tracing to %s as %s (%s), %.0f%% of the traces started here kept", export.zipkin_url, service,
             instance, export.sample_ratio * 100)
    return provider


def server_interceptors(provider: TracerProvider | None) -> list:
    """A gRPC server's tracing interceptor (a span per call of its own services), or none."""
    return [] if provider is None else [server_interceptor(tracer_provider=provider, filter_=_NOT_TRACED)]


def traced_channel(provider: TracerProvider | None):
    """What makes a channel traced (a span per call, its context sent along in the metadata), for
    ordersync.serving.channels.open_channel; None when tracing is off."""
    if provider is None:
        return None
    interceptor = client_interceptor(tracer_provider=provider, filter_=_NOT_TRACED)
    return lambda channel: grpcext.intercept_channel(channel, interceptor)


def stop(provider: TracerProvider | None, timeout_s: float = EXPORT_TIMEOUT_S) -> None:
    """Send what is still queued, then stop (a process's last step)."""
    if provider is not None:
        provider.force_flush(int(timeout_s * 1000))
        provider.shutdown()
