"""An order's trace context in the headers of its Kafka records (W3C `traceparent`), so that the
spans of every hop join one trace without the services knowing Kafka.

The producer writes the context of its publish span into the record; a reader takes the record's
context as the parent of its own span (extract), and a processor that writes a record on (the
gate) puts its own span's context there instead (with_context). Only the OpenTelemetry API is
used: a process without a tracer provider (TRACING=OFF, a test) gets no-op spans and writes no
header.
"""

from collections.abc import Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACER = trace.get_tracer("ordersync.bus")  # follows the provider installed later (a proxy)
TRACE_HEADERS = ("traceparent", "tracestate")

# The attributes every hop's span has, so that a trace can be searched by order id in Zipkin.
ORDER_ID = "ordersync.order_id"
DEAD_LETTER_REASON = "ordersync.dead_letter.reason"
DEAD_LETTER_MESSAGE = "ordersync.dead_letter.message"


def headers_now(context: Context | None = None) -> list[tuple[str, str]]:
    """The trace headers of the current span (or of `context`): none when there is no span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v) for k, v in carrier.items() if k in TRACE_HEADERS]


def extract(headers: Iterable[tuple[str, bytes | str | None]] | None) -> Context:
    """The trace context a record's headers carry (an empty one when they carry none)."""
    carrier = {k: (v.decode("ascii", "replace") if isinstance(v, bytes) else v)
               for k, v in headers or () if k in TRACE_HEADERS and v is not None}
    return propagate.extract(carrier)


def with_context(headers: Sequence[tuple[str, bytes | str]], span: Span) -> list[tuple[str, bytes | str]]:
    """`headers` with their trace headers replaced by `span`'s: the record written on is its child."""
    kept = [(k, v) for k, v in headers if k not in TRACE_HEADERS]
    return [*kept, *headers_now(trace.set_span_in_context(span))]


def dead_letter_span(parent: Context, topic: str, key: str | None, reason: str, message: str) -> None:
    """The span a dead letter ends its trace with: where it went, and why."""
    span = TRACER.start_span(f"dead letter {topic}", context=parent, kind=SpanKind.PRODUCER, attributes={
        "messaging.system": "kafka", "messaging.destination.name": topic, ORDER_ID: key or "",
        DEAD_LETTER_REASON: reason, DEAD_LETTER_MESSAGE: message[:500]})
    span.set_status(Status(StatusCode.ERROR, f"{reason}: {message[:200]}"))
    span.end()
