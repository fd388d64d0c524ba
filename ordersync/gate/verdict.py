"""The one decision per record of the orders topic: accepted, a duplicate, or refused with a reason.

Every record goes through here before anything writes it: the gate lets through only what
it accepts, re-encoded as our own canonical envelope, so the sink (JsonConverter, the table)
and the Catalog only ever see records they read alike. `ops.doctor` asks the same functions.

In order, a record is refused when it
1. is no envelope of an OrderPlaced (bus.envelope decodes strictly: 1.5, "1", true or 2**31
   for an int32, a number for a string, a wrong or unknown type name, a missing field, ...);
2. breaks the event rules (ordersync.contract.event_rules: ids, qty, prices, total, created_at);
3. names a product the catalog does not have (ids are compared byte for byte: ordersync.contract.ids);
4. reuses the order id of an order already accepted, with other content.
A later record of an accepted order with the same content (a retry published twice) is a
duplicate: nothing is written for it, since the first is in the table and the stock already.
Fields a newer producer added are dropped by the re-encoding, like the Catalog drops them
(bus.evolution): the gate is upgraded before the producers.
"""

import dataclasses
from collections.abc import Callable, Iterable

from bus.envelope import EnvelopeError, decode
from ordersync.contract.event_rules import InvalidInput, check_order_placed
from ordersync.order.v1.order_event_pb2 import OrderPlaced

# Why a record is refused (a dead letter's dlq.error.class).
NOT_AN_EVENT = "NotAnOrderPlaced"
BREAKS_RULES = "BreaksEventRules"
UNKNOWN_PRODUCT = "UnknownProduct"
ORDER_ID_REUSED = "OrderIdReused"


class Refused(Exception):
    """A record that can never be accepted; `reason` is one of the names above."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def read_event(value: bytes | None) -> OrderPlaced:
    """The OrderPlaced a record's value carries if it is valid on its own (steps 1 and 2);
    raises Refused. The same bytes always get the same answer."""
    if value is None:
        raise Refused(NOT_AN_EVENT, "no envelope: the value is null (a tombstone)")
    try:
        event = decode(value, OrderPlaced)
    except EnvelopeError as e:
        raise Refused(NOT_AN_EVENT, f"not an OrderPlaced envelope: {e}") from None
    try:
        check_order_placed(event)
    except InvalidInput as e:
        raise Refused(BREAKS_RULES, f"order {event.order_id!r} breaks the event rules: {e}") from None
    return event


@dataclasses.dataclass(frozen=True)
class Content:
    """What makes two events the same order; created_at is not part of it (two instances placing
    one retried request stamp it a few milliseconds apart: the first one's is kept)."""
    user_id: str
    product_id: str
    qty: int
    unit_price: int
    total_price: int

    @classmethod
    def of(cls, event: OrderPlaced) -> "Content":
        return cls(event.user_id, event.product_id, event.qty, event.unit_price, event.total_price)

    def __str__(self) -> str:
        return f"{self.qty} x {self.product_id} at {self.unit_price} for {self.user_id}"


Origin = tuple[str, int, int]  # (topic, partition, offset) of a record on the orders topic


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A record valid on its own, waiting for steps 3 and 4."""
    event: OrderPlaced
    content: Content
    origin: Origin


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: str  # ACCEPTED, DUPLICATE or REFUSED
    event: OrderPlaced | None = None
    reason: str = ""  # for REFUSED: NOT_AN_EVENT, ...
    message: str = ""


ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"

# known_products(product_ids) -> those the catalog has
KnownProducts = Callable[[set[str]], set[str]]
# first_events(candidates) -> {order_id: (content, origin)} of the first accepted event of each
# order id, recording the candidates that are the first of theirs (in order: the first wins)
FirstEvents = Callable[[list[Candidate]], dict[str, tuple[Content, Origin]]]


def decide(records: Iterable[tuple[bytes | None, Origin]], known_products: KnownProducts,
           first_events: FirstEvents) -> list[Verdict]:
    """A verdict per (value, origin), in order. The two lookups are the state (bus-free and
    database-free here, so that the doctor and the unit tests ask the same function)."""
    verdicts: list[Verdict | None] = []
    candidates: list[tuple[int, Candidate]] = []
    for value, origin in records:
        try:
            event = read_event(value)
        except Refused as e:
            verdicts.append(Verdict(REFUSED, reason=e.reason, message=str(e)))
            continue
        verdicts.append(None)
        candidates.append((len(verdicts) - 1, Candidate(event, Content.of(event), origin)))
    if candidates:
        known = known_products({c.content.product_id for _, c in candidates})
        orderable = []
        for i, c in candidates:
            if c.content.product_id in known:
                orderable.append((i, c))
            else:
                verdicts[i] = Verdict(REFUSED, reason=UNKNOWN_PRODUCT, message=(
                    f"order {c.event.order_id!r} names product {c.content.product_id!r}, which the catalog "
                    "does not have (product ids are case-sensitive)"))
        firsts = first_events([c for _, c in orderable]) if orderable else {}
        for i, c in orderable:
            content, origin = firsts[c.event.order_id]
            if origin == c.origin:
                verdicts[i] = Verdict(ACCEPTED, event=c.event)
            elif content == c.content:
                verdicts[i] = Verdict(DUPLICATE, event=c.event)
            else:
                verdicts[i] = Verdict(REFUSED, reason=ORDER_ID_REUSED, message=(
                    f"order_id {c.event.order_id} reused with other content: accepted as {content}, "
                    f"now {c.content}"))
    return [v for v in verdicts if v is not None]


def first_events_in_memory() -> FirstEvents:
    """A FirstEvents kept in a dict: for the doctor and the tests (the gate keeps its own in
    the database, gate.first_events)."""
    seen: dict[str, tuple[Content, Origin]] = {}

    def record(candidates: list[Candidate]) -> dict[str, tuple[Content, Origin]]:
        for c in candidates:
            seen.setdefault(c.event.order_id, (c.content, c.origin))
        return {c.event.order_id: seen[c.event.order_id] for c in candidates}
    return record
