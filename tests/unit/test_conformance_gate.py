"""The conformance corpus against the gate's Python (gate.verdict): every record gets the verdict
its case was written for. tests/integration/test_conformance.py runs the same corpus against the
orders table's SQL, JsonConverter and the whole pipeline."""

import pytest

from bus.envelope import decode
from ordersync.gate import verdict
from ordersync.order.v1.order_event_pb2 import OrderPlaced
from tests.conformance import corpus

CASES = corpus.by_case(corpus.records())


def test_the_corpus_has_every_class_of_input_and_every_verdict():
    recs = corpus.records()
    assert {r.verdict for r in recs} == {verdict.ACCEPTED, verdict.DUPLICATE, verdict.REFUSED}
    assert {r.reason for r in recs if r.reason} == {verdict.NOT_AN_EVENT, verdict.BREAKS_RULES,
                                                     verdict.UNKNOWN_PRODUCT, verdict.ORDER_ID_REUSED}
    assert len({r.cls for r in recs}) >= 10 and len(recs) >= 150


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_gate_gives_each_record_the_verdict_of_its_case(case):
    first = verdict.first_events_in_memory()
    for i, record in enumerate(CASES[case]):
        [v] = verdict.decide([(record.value, ("orders", 0, i))], lambda ids: ids & set(corpus.PRODUCTS), first)
        assert v.outcome == record.verdict, f"{record}: {v.message}"
        if record.reason:
            assert (v.reason, record.words in v.message) == (record.reason, True), f"{record}: {v.message}"
        if record.event:
            assert v.event == decode(record.value, OrderPlaced)
            assert {f: getattr(v.event, f) for f in record.event if f != "created_at"} == \
                {f: x for f, x in record.event.items() if f != "created_at"}, str(record)
            assert v.event.created_at.ToMilliseconds() == record.event["created_at"], str(record)


def test_a_whole_corpus_in_one_batch_gets_the_same_verdicts():
    recs = corpus.records()
    verdicts = verdict.decide([(r.value, ("orders", 0, i)) for i, r in enumerate(recs)],
                              lambda ids: ids & set(corpus.PRODUCTS), verdict.first_events_in_memory())
    assert [v.outcome for v in verdicts] == [r.verdict for r in recs]


def test_the_committed_corpus_is_what_its_builder_writes():
    from tests.conformance import build_corpus
    lines = build_corpus.build().lines
    assert [r.case for r in corpus.records()] == [line["case"] for line in lines], \
        "run tests/conformance/build_corpus.py and commit order_placed.jsonl"
    assert len(corpus.CORPUS.read_text().splitlines()) == len(lines)
    assert corpus.PRODUCTS == build_corpus.PRODUCTS
