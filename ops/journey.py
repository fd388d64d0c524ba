"""The journey of one order: where its event is, whether the table and the stock have it, and its trace.

    ordersync trace ORDER_ID [--json] [--wait SECONDS] [--scan N]
    make trace ORDER=ORDER_ID                     (CLUSTER=1: on the cluster, as its admin)

It looks as the operator (the settings' Kafka and MariaDB accounts), in this order:
1. the stock: catalog_db.applied_orders (when it was applied, and where its event is on the accepted topic);
2. the accepted event: that very record, or else the order id's partition of the accepted topic searched
   (its last --scan records); its headers say where it was on the orders topic and carry its trace;
3. when the gate did not accept it: the order id's partition of the orders topic, searched the same way;
4. the row in the orders table, and when it landed;
5. its dead letters, by key, on the gate's rejected topic and the Catalog's and the sink's dead-letter topics;
6. its trace in Zipkin, and the one span Connect cannot emit: the row landing. This command adds it,
   once (its span id is made from the order id), as a span of the sink from the end of the gate's
   verdict to the row's landed_at, tagged as reconstructed: a span the sink measured it is not.

Then one line: in sync, pending (and where), refused (and why), or not found. Exit codes: 0 in sync,
1 refused (dead-lettered), 2 usage or a bad setting, 3 pending, 4 found nowhere, 5 it could not look
(Kafka or MariaDB does not answer, or refuses this account: the message says which).
"""

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException

from bus import tracing
from bus.topic_reader import NoSuchTopic, ReadTimeout, read_range, watermarks
from ops import dead_letters
from ops.kafka_errors import explain
from ordersync.config import Settings, exits_on_bad_setting
from ordersync.gate.server import H_ORIGIN_OFFSET, H_ORIGIN_PARTITION, H_ORIGIN_TOPIC

IN_SYNC, REFUSED, PENDING, NOT_FOUND, CANNOT_LOOK = 0, 1, 3, 4, 5
SCAN = 200_000  # records searched per partition when the exact position is not known
LANDED_SPAN = "row landed"
READ_TIMEOUT_S = 60
SEARCH_LOOKBACK_MS = 7 * 24 * 3600 * 1000  # how far back Zipkin is searched for a trace by order id


@dataclasses.dataclass
class Journey:
    order_id: str
    event: dict | None = None  # on the orders topic: partition, offset, published_at
    accepted: dict | None = None  # on the accepted topic
    row: dict | None = None  # the table's row
    stock: dict | None = None  # applied_orders
    dead_letters: list = dataclasses.field(default_factory=list)
    trace_id: str | None = None
    trace_url: str | None = None
    spans: int | None = None  # in Zipkin
    verdict: str = ""
    code: int = NOT_FOUND


def key_partition(order_id: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner (consistent_random) gives a key: CRC-32 of it."""
    return zlib.crc32(order_id.encode()) % partitions


def _ms(when) -> str:
    if when is None:
        return "?"
    if isinstance(when, (int, float)):
        when = dt.datetime.fromtimestamp(when / 1000, dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _epoch_ms(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _headers(m) -> dict[str, str]:
    return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v or "") for k, v in m.headers() or ()}


def _record(m) -> dict:
    return {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "timestamp_ms": m.timestamp()[1] if m.timestamp()[0] else None, "headers": _headers(m)}


def find_record(client: dict, topic: str, order_id: str, at: tuple[int, int] | None = None, scan: int = SCAN):
    """The last record keyed `order_id` on `topic`: at (partition, offset) when known, else searched in
    the last `scan` records of the key's partition. None when it is not there."""
    try:
        if at is not None:
            starts, ends = {at[0]: at[1]}, {at[0]: at[1] + 1}
        else:
            marks = watermarks_of(client, topic)
            p = key_partition(order_id, len(marks))
            starts, ends = {p: max(marks[p][0], marks[p][1] - scan)}, None
        found = None
        for m in read_range(client, topic, starts, ends, timeout=READ_TIMEOUT_S):
            if m.key() is not None and m.key().decode("utf-8", "replace") == order_id:
                found = m
        return _record(found) if found is not None else None
    except NoSuchTopic:
        return None


def watermarks_of(client: dict, topic: str) -> dict[int, tuple[int, int]]:
    """{partition: (first offset, end offset)} of `topic`."""
    c = Consumer({**client, "group.id": "ordersync-journey", "enable.auto.commit": False, "log_level": 2})
    try:
        return watermarks(c, topic, READ_TIMEOUT_S)
    finally:
        c.close()


def read_tables(settings: Settings, order_id: str) -> tuple[dict | None, dict | None]:
    """(the orders table's row, the applied_orders row) of the order, each None when there is none."""
    engine = sa.create_engine(settings.mariadb_url(), pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                f"SELECT order_id, user_id, product_id, qty, unit_price, total_price, created_at, landed_at "
                f"FROM `{settings.orders_db}`.`{settings.orders_table}` WHERE order_id = :o"), {"o": order_id}).mappings().first()
            stock = conn.execute(sa.text(
                f"SELECT product_id, qty, applied_at, accepted_partition, accepted_offset "
                f"FROM `{settings.catalog_db}`.applied_orders WHERE order_id = :o"), {"o": order_id}).mappings().first()
    finally:
        engine.dispose()
    return (dict(row) if row else None), (dict(stock) if stock else None)


def find_dead_letters(settings: Settings, order_id: str) -> list[dict]:
    found = []
    for topic in (settings.rejected_topic, settings.catalog_dlq_topic, settings.sink_dlq_topic):
        try:
            letters = dead_letters.read_dead_letters(settings.kafka_client(), topic, timeout=READ_TIMEOUT_S)
        except NoSuchTopic:
            continue
        for d in letters:
            if d.key is not None and d.key.decode("utf-8", "replace") == order_id:
                found.append({"topic": topic, "partition": d.partition, "offset": d.offset,
                              "reason": d.error_class, "message": d.error_message})
    return found


# ---------------------------------------------------------------- Zipkin

def _zipkin(settings: Settings, method: str, path: str, body=None):
    request = urllib.request.Request(f"{settings.zipkin_url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read()
    return json.loads(text) if text else None


def landed_span_id(order_id: str) -> str:
    return hashlib.sha256(f"{order_id}/{LANDED_SPAN}".encode()).hexdigest()[:16]


def add_landed_span(settings: Settings, journey: Journey, spans: list[dict], parent_id: str | None) -> bool:
    """Post the span of the row landing into the order's trace, unless it is there: from the end of its
    parent (the gate's verdict) or the event's publishing, to landed_at. True when posted."""
    span_id = landed_span_id(journey.order_id)
    if journey.row is None or journey.trace_id is None or any(s.get("id") == span_id for s in spans):
        return False
    landed_us = _epoch_ms(journey.row["landed_at"]) * 1000
    parent = next((s for s in spans if s.get("id") == parent_id), None)
    start_us = (parent["timestamp"] + parent.get("duration", 0)) if parent else \
        (journey.accepted or journey.event or {}).get("timestamp_ms", landed_us // 1000) * 1000
    start_us = min(start_us, landed_us)
    span = {"traceId": journey.trace_id, "id": span_id, "name": LANDED_SPAN, "kind": "CONSUMER",
            "timestamp": start_us, "duration": max(1, landed_us - start_us),
            "localEndpoint": {"serviceName": settings.sink_name},
            "tags": {tracing.ORDER_ID: journey.order_id, "db.name": settings.orders_db,
                     "db.sql.table": settings.orders_table,
                     "ordersync.reconstructed": "by `ordersync trace` from the verdict's end and the row's landed_at "
                                                "(Kafka Connect emits no spans)"}}
    if parent_id:
        span["parentId"] = parent_id
    _zipkin(settings, "POST", "/api/v2/spans", [span])
    return True


def searched_trace(settings: Settings, order_id: str) -> str | None:
    """The id of the newest trace in Zipkin with a span tagged with the order id: that of a record
    that came without a trace context (a producer that does not trace), which the gate started."""
    query = urllib.parse.urlencode({"annotationQuery": f"{tracing.ORDER_ID}={order_id}", "limit": 1,
                                    "lookback": SEARCH_LOOKBACK_MS, "endTs": int(time.time() * 1000)})
    try:
        traces = _zipkin(settings, "GET", f"/api/v2/traces?{query}") or []
    except (OSError, ValueError):
        return None
    return traces[0][0]["traceId"] if traces and traces[0] else None


def follow_trace(settings: Settings, journey: Journey) -> None:
    """The trace's link, its spans counted, and the landing span added (when Zipkin answers)."""
    if not settings.traced:
        return
    traceparent = ((journey.accepted or {}).get("headers", {}).get("traceparent")
                   or (journey.event or {}).get("headers", {}).get("traceparent") or "")
    parts = traceparent.split("-")
    if len(parts) == 4:
        journey.trace_id, parent_id = parts[1], parts[2] if journey.accepted else None
    else:
        journey.trace_id, parent_id = searched_trace(settings, journey.order_id), None
        if journey.trace_id is None:
            return
    journey.trace_url = f"{settings.zipkin_url}/zipkin/traces/{journey.trace_id}"
    try:
        try:
            spans = _zipkin(settings, "GET", f"/api/v2/trace/{journey.trace_id}") or []
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: none of its spans arrived (yet)
                raise
            spans = []
        journey.spans = len(spans) + (1 if add_landed_span(settings, journey, spans, parent_id) else 0)
    except (OSError, ValueError):
        journey.spans = None  # Zipkin does not answer: the link is still given


# ---------------------------------------------------------------- the journey

def trace_order(settings: Settings, order_id: str, scan: int = SCAN) -> Journey:
    journey = Journey(order_id)
    client = settings.kafka_client()
    journey.row, journey.stock = read_tables(settings, order_id)
    at = None
    if journey.stock and journey.stock.get("accepted_partition") is not None:
        at = (journey.stock["accepted_partition"], journey.stock["accepted_offset"])
    journey.accepted = find_record(client, settings.accepted_topic, order_id, at, scan)
    origin = (journey.accepted or {}).get("headers", {})
    if origin.get(H_ORIGIN_TOPIC) == settings.orders_topic and origin.get(H_ORIGIN_PARTITION, "").isdigit():
        journey.event = find_record(client, settings.orders_topic, order_id,
                                    (int(origin[H_ORIGIN_PARTITION]), int(origin[H_ORIGIN_OFFSET])), scan)
    else:
        journey.event = find_record(client, settings.orders_topic, order_id, None, scan)
    journey.dead_letters = find_dead_letters(settings, order_id)
    journey.verdict, journey.code = decide(journey, settings, scan)
    follow_trace(settings, journey)
    return journey


def decide(j: Journey, settings: Settings, scan: int = SCAN) -> tuple[str, int]:
    """The verdict in one line, and its exit code."""
    if j.dead_letters:
        d = j.dead_letters[-1]
        by = {settings.rejected_topic: "the gate", settings.catalog_dlq_topic: "the Catalog",
              settings.sink_dlq_topic: "the sink"}[d["topic"]]
        return f"refused by {by}: {d['reason']}: {d['message']} ({d['topic']}[{d['partition']}]@{d['offset']})", REFUSED
    if j.row and j.stock:
        return "in sync: the row is in the table and the stock was lowered once", IN_SYNC
    if j.accepted or j.row or j.stock:
        missing = [what for what, there in (("the row in the table", j.row), ("the stock", j.stock)) if not there]
        return f"pending: accepted by the gate, waiting for {' and '.join(missing)}", PENDING
    if j.event:
        return f"pending: on {settings.orders_topic}, not decided by the gate yet", PENDING
    return (f"not found: no event keyed {j.order_id} in the last {scan} records of its partition, no row, "
            "no stock applied, no dead letter"), NOT_FOUND


def report(j: Journey) -> str:
    lines = [f"order {j.order_id}"]
    e, a = j.event, j.accepted
    lines.append(f"  event         {e['topic']}[{e['partition']}]@{e['offset']}, published {_ms(e['timestamp_ms'])}"
                 if e else "  event         not found")
    lines.append(f"  gate          accepted: {a['topic']}[{a['partition']}]@{a['offset']}" if a
                 else "  gate          not accepted")
    if j.row:
        lines.append(f"  table         row landed {_ms(j.row['landed_at'])} "
                     f"(+{(_epoch_ms(j.row['landed_at']) - _epoch_ms(j.row['created_at']))} ms after created): "
                     f"{j.row['qty']} x {j.row['product_id']} for {j.row['user_id']}, total {j.row['total_price']}")
    else:
        lines.append("  table         no row")
    if j.stock:
        created = j.row["created_at"] if j.row else None
        after = f" (+{_epoch_ms(j.stock['applied_at']) - _epoch_ms(created)} ms after created)" if created else ""
        lines.append(f"  stock         lowered {_ms(j.stock['applied_at'])}{after}: {j.stock['qty']} x {j.stock['product_id']}")
    else:
        lines.append("  stock         not applied")
    for d in j.dead_letters:
        lines.append(f"  dead letter   {d['topic']}[{d['partition']}]@{d['offset']}: {d['reason']}: {d['message']}")
    if not j.dead_letters:
        lines.append("  dead letters  none")
    if j.trace_url:
        spans = "Zipkin does not answer" if j.spans is None else f"{j.spans} spans"
        lines.append(f"  trace         {j.trace_url} ({spans})")
    else:
        lines.append("  trace         none (no trace context on its records, or TRACING=OFF)")
    lines.append(f"verdict: {j.verdict}")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dt.datetime):
        return _ms(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@exits_on_bad_setting
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ordersync trace", description=(__doc__ or "").splitlines()[0],
                                     epilog="exit codes: 0 in sync, 1 refused, 2 usage, 3 pending, 4 not found, "
                                            "5 could not look")
    parser.add_argument("order_id")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help="look again until it is in sync or refused, up to this long (default: look once)")
    parser.add_argument("--scan", type=int, default=SCAN, metavar="N",
                        help=f"records searched per partition when the position is not known ({SCAN})")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    deadline = time.monotonic() + args.wait
    try:
        while True:
            journey = trace_order(settings, args.order_id, args.scan)
            if journey.code in (IN_SYNC, REFUSED) or time.monotonic() >= deadline:
                break
            time.sleep(1)
    except KafkaException as e:
        print(f"ordersync trace: cannot look: {explain(e, settings)}", file=sys.stderr)
        return CANNOT_LOOK
    except (ReadTimeout, dead_letters.DeadLetterError, sa.exc.SQLAlchemyError) as e:
        print(f"ordersync trace: cannot look: {str(e).splitlines()[0]}", file=sys.stderr)
        return CANNOT_LOOK
    if args.json:
        print(json.dumps(_jsonable(dataclasses.asdict(journey)), indent=1))
    else:
        print(report(journey))
    return journey.code


if __name__ == "__main__":
    sys.exit(main())
