"""Writes tests/conformance/order_placed.jsonl: records of the orders topic with the verdict each must get.

    .venv/bin/python tests/conformance/build_corpus.py      (then commit the file)

The corpus is what holds the implementations of "a valid OrderPlaced" together: the gate's
Python (gate.verdict), the orders table's SQL (stack.schema's CHECKs, key, foreign key and
trigger), JsonConverter reading what the gate writes, and the whole pipeline; the tests in
tests/conformance run each against it. Every verdict here is the intent of the case, written
beside it, never what the gate answered: a case the gate gets wrong fails, it is not recorded.

One JSON object per line: "case" (records of one case share state: the gate's first event of
an order id, in file order), "class" (the class of input), "what", "key", the value as "text"
(UTF-8) or "base64" or null (a tombstone), "verdict" (accepted, duplicate, refused), for a
refused one "reason" (gate.verdict's name) and "words" (in its message), for an accepted one
"event" (the fields the table and the stock must get). Order ids hold the token RUN00, which a
test on a shared stack replaces with a token of its own (same length, same class of
characters). Seeded: running it again writes the same file.
"""

import base64
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from bus.envelope import encode  # noqa: E402
from ordersync.order.v1.order_event_pb2 import OrderPlaced  # noqa: E402
from tests.poisons import KINDS  # noqa: E402
from tests.support.course import COURSE_ENVELOPE, corrected_course  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "order_placed.jsonl"
PRODUCTS = {"CONF-A": 100, "CONF-B": 2500}  # product -> unit price; the tests create them
TOKEN = "RUN00"
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
MS_2000, MS_2100 = 946_684_800_000, 4_102_444_800_000  # the window of event_rules, in epoch millis
MAX_INT32 = 2**31 - 1

NOT_AN_EVENT, BREAKS_RULES = "NotAnOrderPlaced", "BreaksEventRules"
UNKNOWN_PRODUCT, ORDER_ID_REUSED = "UnknownProduct", "OrderIdReused"


class Corpus:
    def __init__(self):
        self.lines: list[dict] = []
        self.cases = 0

    def case(self) -> str:
        self.cases += 1
        return f"c{self.cases:03d}"

    def add(self, case, cls, what, key, value, verdict, reason=None, words=None, event=None):
        line = {"case": case, "class": cls, "what": what, "key": key}
        if value is None:
            line["text"] = None
        else:
            try:
                line["text"] = value.decode("utf-8")
            except UnicodeDecodeError:
                line["base64"] = base64.b64encode(value).decode()
        line["verdict"] = verdict
        if reason:
            line.update(reason=reason, words=words)
        if event is not None:
            line["event"] = event
        self.lines.append(line)


def order_id(case: str, tail: str = "") -> str:
    return f"{case}-{TOKEN}{tail}"


def event(oid, user="conf-user", product="CONF-A", qty=1, unit_price=None, total=None, created_at=1_767_225_600_123):
    unit_price = PRODUCTS.get(product, 100) if unit_price is None else unit_price
    e = OrderPlaced(order_id=oid, user_id=user, product_id=product, qty=qty, unit_price=unit_price,
                    total_price=qty * unit_price if total is None else total)
    if created_at is not None:
        e.created_at.CopyFrom(Timestamp(seconds=created_at // 1000, nanos=created_at % 1000 * 1_000_000))
    return e


def fields(e: OrderPlaced) -> dict:
    return {"order_id": e.order_id, "user_id": e.user_id, "product_id": e.product_id, "qty": e.qty,
            "unit_price": e.unit_price, "total_price": e.total_price,
            "created_at": e.created_at.seconds * 1000 + e.created_at.nanos // 1_000_000}


def envelope(e: OrderPlaced) -> dict:
    return json.loads(encode(e))


def dumps(envelope_or_text) -> bytes:
    if isinstance(envelope_or_text, (bytes, str)):
        return envelope_or_text if isinstance(envelope_or_text, bytes) else envelope_or_text.encode()
    return json.dumps(envelope_or_text, separators=(",", ":")).encode()


def accepted(c: Corpus, cls, what, e: OrderPlaced, value=None):
    """A case of one record that must be accepted as `e` ("CASE" in ids becomes the case's name)."""
    case = c.case()
    e.order_id = e.order_id.replace("CASE", case)
    value = encode(e) if value is None else value.replace(b"CASE", case.encode())
    c.add(case, cls, what, e.order_id, value, "accepted", event=fields(e))


def refused(c: Corpus, cls, what, key, value, reason, words):
    """A case of one record (an envelope dict, text, bytes or None) that must be refused."""
    case = c.case()
    value = None if value is None else dumps(value).replace(b"CASE", case.encode())
    c.add(case, cls, what, key.replace("CASE", case), value, "refused", reason, words)


def changed(e: OrderPlaced, **payload) -> dict:
    env = envelope(e)
    env["payload"].update(payload)
    return env


def schema_field(env: dict, field: str, **change) -> dict:
    for f in env["schema"]["fields"]:
        if f["field"] == field:
            for k, v in change.items():  # None: take the attribute away
                f.pop(k) if v is None else f.__setitem__(k, v)
    return env


def random_id(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ID_CHARS) for _ in range(length))


def build() -> Corpus:
    rng = random.Random(20261202)
    c = Corpus()
    oid = order_id("CASE")

    # --- valid events, generated: every id class, sizes, prices and moments of the window.
    for n in range(40):
        qty = rng.choice([1, 1, 2, 3, rng.randint(1, 10_000)])
        unit_price = rng.randint(1, MAX_INT32 // qty)
        e = event(order_id("CASE", "-" + random_id(rng, rng.randint(0, 40))),
                  user=random_id(rng, rng.randint(1, 64)), product=rng.choice(sorted(PRODUCTS)), qty=qty,
                  unit_price=unit_price, created_at=rng.randint(MS_2000, MS_2100 - 1))
        accepted(c, "valid (generated)", f"random valid event {n}", e)

    # --- boundaries that are in.
    accepted(c, "size", "ids of 64 characters", event(order_id("CASE", "-" + "o" * (64 - 11)), user="u" * 64))
    accepted(c, "number range", "qty 10000 (the most)", event(oid, qty=10_000))
    accepted(c, "number range", "unit price 1 (the least)", event(oid, unit_price=1))
    accepted(c, "number range", "total 2^31-1 (the largest int32)", event(oid, unit_price=MAX_INT32))
    accepted(c, "time window", "created at 2000-01-01 00:00:00.000", event(oid, created_at=MS_2000))
    accepted(c, "time window", "created at 2099-12-31 23:59:59.999", event(oid, created_at=MS_2100 - 1))
    accepted(c, "id spelling", "every character ids may hold", event(order_id("CASE", "-aZ09._-"), user="A.b_c-9"))
    e = event(oid)
    env = envelope(e)
    env["schema"]["fields"].reverse()
    accepted(c, "schema", "fields listed in another order", e, dumps(env))
    e = event(oid)
    env = envelope(e)
    env["schema"]["fields"].append({"type": "string", "optional": True, "field": "coupon"})
    env["payload"]["coupon"] = "FREE"
    accepted(c, "schema", "a field the contract does not have (dropped)", e, dumps(env))
    e = event(oid)
    accepted(c, "json", "whitespace and indentation", e, json.dumps(envelope(e), indent=2).encode())

    # --- boundaries that are out.
    refused(c, "size", "order id of 65 characters", order_id("CASE", "-" + "o" * 54),
            envelope(event(order_id("CASE", "-" + "o" * 54))), BREAKS_RULES, "order_id is 65 characters long")
    refused(c, "size", "user id of 20,000 characters", oid, changed(event(oid), user_id="u" * 20_000),
            BREAKS_RULES, "user_id is 20000 characters long")
    refused(c, "size", "empty user id", oid, changed(event(oid), user_id=""), BREAKS_RULES, "user_id is required")
    refused(c, "number range", "qty 0", oid, changed(event(oid), qty=0, total_price=0), BREAKS_RULES,
            "qty must be 1 to 10000, got 0")
    refused(c, "number range", "qty 10001", oid, changed(event(oid), qty=10_001, total_price=1_000_100), BREAKS_RULES,
            "qty must be 1 to 10000, got 10001")
    refused(c, "number range", "unit price 0", oid, changed(event(oid), unit_price=0, total_price=0), BREAKS_RULES,
            "unit_price must be 1 to")
    refused(c, "number range", "negative prices", oid, changed(event(oid), unit_price=-100, total_price=-100),
            BREAKS_RULES, "unit_price must be 1 to")
    refused(c, "number range", "total not qty x unit price", oid, changed(event(oid, qty=2), total_price=201),
            BREAKS_RULES, "total_price 201 is not qty 2 x unit_price 100")
    refused(c, "number range", "total 2^31 (past int32)", oid, changed(event(oid, qty=2), unit_price=2**30,
                                                                       total_price=2**31),
            NOT_AN_EVENT, "total_price")
    refused(c, "time window", "created at 1999-12-31 23:59:59.999", oid, changed(event(oid), created_at=MS_2000 - 1),
            BREAKS_RULES, "is outside 2000-01-01 to 2100-01-01")
    refused(c, "time window", "created at 2100-01-01 00:00:00.000", oid, changed(event(oid), created_at=MS_2100),
            BREAKS_RULES, "is outside 2000-01-01 to 2100-01-01")
    refused(c, "time window", "created at -1 (1969)", oid, changed(event(oid), created_at=-1), BREAKS_RULES,
            "is outside")
    refused(c, "time window", "no created_at (null)", oid, changed(event(oid), created_at=None), BREAKS_RULES,
            "created_at is required")

    # --- numbers JsonConverter coerces without an error (it would write 1, 0 or a wrapped int).
    for name in ("qty", "unit_price", "total_price"):
        for what, value in [("1.5", 1.5), ("1.0", 1.0), ("1e2", 100.0), ('"1"', "1"), ('"abc"', "abc"),
                            ("true", True), ("null", None), ("2^31", 2**31), ("-2^31-1", -(2**31) - 1),
                            ("an object", {"v": 1}), ("an array", [1])]:
            words = "required field is null" if value is None else name
            refused(c, "coerced number", f"{name} {what}", oid, changed(event(oid), **{name: value}),
                    NOT_AN_EVENT, words)
    for what, value in [("1.5e12 (a float)", 1.5e12), ('"1767225600000" (a string)', "1767225600000"),
                        ("true", True), ("2^63", 2**63)]:
        refused(c, "coerced number", f"created_at {what}", oid, changed(event(oid), created_at=value),
                NOT_AN_EVENT, "created_at")

    # --- strings of the wrong JSON type (JsonConverter writes their text, or null).
    for name in ("order_id", "user_id", "product_id"):
        for what, value in [("a number", 42), ("true", True), ("null", None), ("an object", {"id": "x"}),
                            ("an array", ["x"])]:
            words = "required field is null" if value is None else name
            refused(c, "wrong JSON type", f"{name} {what}", oid, changed(event(oid), **{name: value}),
                    NOT_AN_EVENT, words)

    # --- id spelling: case, characters a pattern could let through.
    refused(c, "id spelling", "product id in lower case", oid, envelope(event(oid, product="conf-a")),
            UNKNOWN_PRODUCT, "'conf-a', which the catalog does not have")
    refused(c, "id spelling", "product id with a trailing space", oid, changed(event(oid), product_id="CONF-A "),
            BREAKS_RULES, "may only contain")
    refused(c, "id spelling", "product id unknown", oid, envelope(event(oid, product="CONF-Z")), UNKNOWN_PRODUCT,
            "'CONF-Z', which the catalog does not have")
    for what, user in [("an accented letter", "zoé"), ("a space", "erin smith"), ("a slash", "a/b"),
                       ("a NUL", "a\x00b"), ("a non-breaking space", "a\u00a0b"), ("an emoji", "a\U0001f600"),
                       ("a line break", "a\nb")]:
        refused(c, "id spelling", f"user id with {what}", oid, changed(event(oid), user_id=user), BREAKS_RULES,
                "may only contain")

    # --- schemas that do not fit the contract.
    refused(c, "schema", 'type name "String" (the course\'s)', oid, schema_field(envelope(event(oid)), "order_id",
                                                                                type="String"),
            NOT_AN_EVENT, "String")
    refused(c, "schema", "qty declared int64", oid, schema_field(envelope(event(oid)), "qty", type="int64"),
            NOT_AN_EVENT, "qty")
    refused(c, "schema", "qty declared optional", oid, schema_field(envelope(event(oid)), "qty", optional=True),
            NOT_AN_EVENT, "qty")
    refused(c, "schema", "created_at without its Timestamp name", oid,
            schema_field(envelope(event(oid)), "created_at", name=None), NOT_AN_EVENT, "created_at")
    env = envelope(event(oid))
    env["schema"]["fields"] = [f for f in env["schema"]["fields"] if f["field"] != "qty"]
    del env["payload"]["qty"]
    refused(c, "schema", "no qty at all", oid, env, NOT_AN_EVENT, "qty")
    env = envelope(event(oid))
    env["payload"]["coupon"] = "FREE"
    refused(c, "schema", "a payload field the schema does not declare", oid, env, NOT_AN_EVENT, "coupon")
    env = envelope(event(oid))
    env["schema"]["name"] = "orders"
    refused(c, "schema", "another struct name", oid, env, NOT_AN_EVENT, "schema name")
    refused(c, "envelope", "a third top-level field", oid, {**envelope(event(oid)), "extra": 1}, NOT_AN_EVENT,
            "nothing else")
    # The course names its struct "orders" (and marks every field optional): not our contract's.
    refused(c, "envelope", "the course's envelope as written", "~~~", COURSE_ENVELOPE, NOT_AN_EVENT,
            "schema name 'orders'")
    refused(c, "envelope", "the course's envelope, its type names fixed (doctor --fix)", "~~~", corrected_course(),
            NOT_AN_EVENT, "schema name 'orders'")

    # --- no envelope at all: the fault suite's poisons and their like.
    for kind in ("random-bytes", "invalid-json", "deep-nesting", "tombstone", "no-schema", "null-schema"):
        value = KINDS[kind](envelope(event(oid)))
        if kind == "random-bytes":
            value = bytes(rng.randrange(256) for _ in range(300))
        if kind == "deep-nesting":
            value = b"[" * 20_000  # the fault suite sends 100,000; 20,000 keeps the file small
        refused(c, "not an envelope", kind, oid, value, NOT_AN_EVENT, "tombstone" if value is None else "")
    for what, text in [("empty", b""), ("JSON null", b"null"), ("a JSON string", b'"order"'), ("a JSON array", b"[]"),
                       ("invalid UTF-8", b'{"schema": "\xff"}'), ("NaN", b'{"schema": NaN, "payload": {}}')]:
        refused(c, "not an envelope", what, oid, text, NOT_AN_EVENT, "")

    # --- repeats: the first event of an order id wins, a refused one leaves no trace.
    case = c.case()
    first, again = event(order_id(case)), event(order_id(case), created_at=1_767_225_601_000)
    c.add(case, "repeat", "an order", first.order_id, encode(first), "accepted", event=fields(first))
    c.add(case, "repeat", "the same order again, a second later", again.order_id, encode(again), "duplicate")
    case = c.case()
    first, other = event(order_id(case)), event(order_id(case), qty=7)
    c.add(case, "repeat", "an order", first.order_id, encode(first), "accepted", event=fields(first))
    c.add(case, "repeat", "its order id with another qty", other.order_id, encode(other), "refused", ORDER_ID_REUSED,
          "reused with other content: accepted as 1 x CONF-A")
    case = c.case()
    first, other = event(order_id(case), user="erin"), event(order_id(case), user="Erin")
    c.add(case, "repeat", "an order of erin", first.order_id, encode(first), "accepted", event=fields(first))
    c.add(case, "repeat", "its order id for Erin", other.order_id, encode(other), "refused", ORDER_ID_REUSED,
          "for erin, now 1 x CONF-A at 100 for Erin")
    case = c.case()
    lower, upper = event(order_id(case, "-ab"), qty=2), event(order_id(case, "-AB"), qty=3)
    c.add(case, "id spelling", "order id ...-ab", lower.order_id, encode(lower), "accepted", event=fields(lower))
    c.add(case, "id spelling", "order id ...-AB: another order", upper.order_id, encode(upper), "accepted",
          event=fields(upper))
    case = c.case()
    erin, big_erin = event(order_id(case, "-e"), user="erin"), event(order_id(case, "-E"), user="Erin")
    c.add(case, "id spelling", "an order of erin", erin.order_id, encode(erin), "accepted", event=fields(erin))
    c.add(case, "id spelling", "an order of Erin: another user", big_erin.order_id, encode(big_erin), "accepted",
          event=fields(big_erin))
    case = c.case()
    unknown, fixed = event(order_id(case), product="CONF-Y"), event(order_id(case), product="CONF-B")
    c.add(case, "repeat", "an order for an unknown product", unknown.order_id, encode(unknown), "refused",
          UNKNOWN_PRODUCT, "'CONF-Y'")
    c.add(case, "repeat", "its order id again, for a known product", fixed.order_id, encode(fixed), "accepted",
          event=fields(fixed))
    return c


def main() -> int:
    corpus = build()
    text = "".join(json.dumps(line, ensure_ascii=True, sort_keys=False) + "\n" for line in corpus.lines)
    CORPUS.write_text(text)
    print(f"wrote {len(corpus.lines)} records in {corpus.cases} cases to {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
