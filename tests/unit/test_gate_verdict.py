"""The gate's one decision per record, without servers: refused by class of input, duplicates,
the first event of an order id winning, and the same answer for a record read again."""

import json

import pytest

from bus.envelope import encode
from ordersync.gate import verdict
from tests.poisons import KINDS, poison, reused_id, valid_event

PRODUCT = "GATE-001"
KNOWN = {PRODUCT, "GATE-002"}


def known(ids):
    return ids & KNOWN


def decide(*records, first=None):
    """Verdicts of (value, origin) records, with the first events kept between calls in `first`."""
    return verdict.decide(records, known, first or verdict.first_events_in_memory())


def at(offset, partition=0):
    return ("orders", partition, offset)


def test_a_valid_event_is_accepted_as_it_was_published():
    event = valid_event("o-1", "erin", PRODUCT)
    [v] = decide((encode(event), at(0)))
    assert (v.outcome, v.event) == (verdict.ACCEPTED, event)


# What each kind of poison is refused for: the class of input decides the reason.
EXPECTED = {
    "random-bytes": (verdict.NOT_AN_EVENT, "not an OrderPlaced envelope"),
    "invalid-json": (verdict.NOT_AN_EVENT, "not JSON"),
    "deep-nesting": (verdict.NOT_AN_EVENT, "nested too deeply"),
    "1-MB": (verdict.NOT_AN_EVENT, "not JSON"),
    "tombstone": (verdict.NOT_AN_EVENT, "tombstone"),
    "no-schema": (verdict.NOT_AN_EVENT, '"schema" and "payload"'),
    "null-schema": (verdict.NOT_AN_EVENT, "schema"),
    "type-String": (verdict.NOT_AN_EVENT, "String"),
    "missing-field": (verdict.BREAKS_RULES, "created_at is required"),
    "qty-as-int64": (verdict.NOT_AN_EVENT, "qty"),
    "qty-1.5": (verdict.NOT_AN_EVENT, "qty"),
    "qty-string": (verdict.NOT_AN_EVENT, "qty"),
    "qty-true": (verdict.NOT_AN_EVENT, "qty"),
    "qty-2^31": (verdict.NOT_AN_EVENT, "qty"),
    "price-as-string": (verdict.NOT_AN_EVENT, "unit_price"),
    "number-for-string": (verdict.NOT_AN_EVENT, "user_id"),
    "negative-qty": (verdict.BREAKS_RULES, "qty must be 1 to 10000, got -5"),
    "wrong-total": (verdict.BREAKS_RULES, "total_price 99 is not qty 1 x unit_price 100"),
    "300-char-id": (verdict.BREAKS_RULES, "order_id is 300 characters long"),
    "bad-id-chars": (verdict.BREAKS_RULES, "user_id 'erin smith' may only contain"),
    "year-10000": (verdict.NOT_AN_EVENT, "outside the years 1 to 9999"),
    "unknown-product": (verdict.UNKNOWN_PRODUCT, "'BURST-404', which the catalog does not have"),
    "product-in-lower-case": (verdict.UNKNOWN_PRODUCT, "'gate-001', which the catalog does not have"),
}


def test_every_kind_of_poison_has_an_expected_reason():
    assert set(EXPECTED) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_of_poison_is_refused_with_its_reason(kind):
    [v] = decide((poison(kind, f"o-{kind}"[:60].replace("^", "-").replace(".", "-"), "erin", PRODUCT), at(0)))
    reason, words = EXPECTED[kind]
    assert (v.outcome, v.reason) == (verdict.REFUSED, reason), v.message
    assert words in v.message


def test_a_repeat_with_the_same_content_is_a_duplicate_even_with_another_created_at():
    first = verdict.first_events_in_memory()
    event = valid_event("o-1", "erin", PRODUCT)
    again = valid_event("o-1", "erin", PRODUCT)
    again.created_at.seconds += 1
    assert decide((encode(event), at(0)), first=first)[0].outcome == verdict.ACCEPTED
    assert decide((encode(again), at(1)), first=first)[0].outcome == verdict.DUPLICATE


def test_the_first_event_of_an_order_id_wins_and_other_content_is_refused():
    first = verdict.first_events_in_memory()
    event = valid_event("o-1", "erin", PRODUCT)
    [a, b] = decide((encode(event), at(0)), (reused_id("o-1", "erin", PRODUCT), at(1)), first=first)
    assert a.outcome == verdict.ACCEPTED
    assert (b.outcome, b.reason) == (verdict.REFUSED, verdict.ORDER_ID_REUSED)
    assert "accepted as 1 x GATE-001 at 100 for erin, now 7 x GATE-001" in b.message


@pytest.mark.parametrize("other", [{"user_id": "Erin"}, {"product_id": "GATE-002"}])
def test_content_that_differs_only_in_case_or_product_is_other_content(other):
    first = verdict.first_events_in_memory()
    decide((encode(valid_event("o-1", "erin", PRODUCT)), at(0)), first=first)
    changed = json.loads(encode(valid_event("o-1", "erin", PRODUCT)))
    changed["payload"].update(other)
    [v] = decide((json.dumps(changed).encode(), at(1)), first=first)
    assert v.reason == verdict.ORDER_ID_REUSED


def test_order_ids_that_differ_in_case_are_two_orders():
    first = verdict.first_events_in_memory()
    [a, b] = decide((encode(valid_event("ab-1", "erin", PRODUCT)), at(0)),
                    (encode(valid_event("AB-1", "erin", PRODUCT, qty=2)), at(1)), first=first)
    assert (a.outcome, b.outcome) == (verdict.ACCEPTED, verdict.ACCEPTED)


def test_a_record_read_again_after_an_aborted_transaction_gets_the_same_verdict():
    first = verdict.first_events_in_memory()
    record = (encode(valid_event("o-1", "erin", PRODUCT)), at(7))
    assert decide(record, first=first)[0].outcome == verdict.ACCEPTED
    assert decide(record, first=first)[0].outcome == verdict.ACCEPTED, "its own origin: accepted again"


def test_a_refused_record_is_not_remembered_so_a_replay_after_the_fix_is_accepted():
    first = verdict.first_events_in_memory()
    unknown = encode(valid_event("o-1", "erin", "GATE-003"))
    assert decide((unknown, at(0)), first=first)[0].reason == verdict.UNKNOWN_PRODUCT
    KNOWN.add("GATE-003")
    try:
        assert decide((unknown, at(5)), first=first)[0].outcome == verdict.ACCEPTED
    finally:
        KNOWN.discard("GATE-003")


def test_a_newer_producers_extra_field_is_dropped_as_the_catalog_drops_it():
    envelope = json.loads(encode(valid_event("o-1", "erin", PRODUCT)))
    envelope["schema"]["fields"].append({"type": "string", "optional": False, "field": "coupon"})
    envelope["payload"]["coupon"] = "FREE"
    [v] = decide((json.dumps(envelope).encode(), at(0)))
    assert v.outcome == verdict.ACCEPTED and encode(v.event) == encode(valid_event("o-1", "erin", PRODUCT))


def test_no_lookup_is_made_for_a_batch_of_poison_only():
    def nothing(_):
        raise AssertionError("no state is needed to refuse what is invalid on its own")
    [v] = verdict.decide([(b"{", at(0))], nothing, nothing)
    assert v.outcome == verdict.REFUSED
