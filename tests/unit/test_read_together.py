"""order_svc.read_together: the idempotency reads of concurrent CreateOrder calls in one query."""

import threading
import time

from order_svc.read_together import ReadTogether
from order_svc.store import StoreUnavailable

ROWS = {f"o-{i}": {"order_id": f"o-{i}"} for i in range(0, 40, 2)}  # the even ones are in the table


class Table:
    """get_many over ROWS that records each query's ids; `hold` keeps the first query open."""

    def __init__(self, fail_first=False):
        self.queries: list[list[str]] = []
        self.hold, self.entered = threading.Event(), threading.Event()
        self.fail_first = fail_first

    def get_many(self, ids):
        self.queries.append(list(ids))
        if len(self.queries) == 1:
            self.entered.set()
            assert self.hold.wait(10)
            if self.fail_first:
                raise StoreUnavailable("connection refused")
        return {i: ROWS[i] for i in ids if i in ROWS}


def ask_all(reads: ReadTogether, ids: list[str]) -> tuple[list[threading.Thread], dict]:
    got: dict = {}

    def one(order_id):
        try:
            got[order_id] = reads.get(order_id)
        except StoreUnavailable as e:
            got[order_id] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    return threads, got


def wait_waiting(reads: ReadTogether, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(reads._waiting) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(reads._waiting) == count


def test_a_call_alone_reads_at_once_and_gets_its_row_or_none():
    table = Table()
    table.hold.set()
    reads = ReadTogether(table.get_many)
    assert reads.get("o-2") == {"order_id": "o-2"} and reads.get("o-3") is None
    assert table.queries == [["o-2"], ["o-3"]]


def test_ids_asked_while_the_readers_are_busy_are_read_together_in_one_query():
    table = Table()
    reads = ReadTogether(table.get_many, readers=1)
    first, got = ask_all(reads, ["o-0"])
    assert table.entered.wait(10)
    later = [f"o-{i}" for i in range(1, 11)]
    threads, got_later = ask_all(reads, later)
    wait_waiting(reads, len(later))
    table.hold.set()
    for t in first + threads:
        t.join(10)
    assert table.queries[0] == ["o-0"] and sorted(table.queries[1]) == sorted(later) and len(table.queries) == 2
    assert {i: row for i, row in got_later.items()} == {i: ROWS.get(i) for i in later}


def test_at_most_most_ids_per_query():
    table = Table()
    reads = ReadTogether(table.get_many, readers=1, most=3)
    first, _ = ask_all(reads, ["o-0"])
    assert table.entered.wait(10)
    threads, got = ask_all(reads, [f"o-{i}" for i in range(1, 8)])
    wait_waiting(reads, 7)
    table.hold.set()
    for t in first + threads:
        t.join(10)
    assert [len(q) for q in table.queries[1:]] == [3, 3, 1] and got == {f"o-{i}": ROWS.get(f"o-{i}") for i in range(1, 8)}


def test_a_failed_query_fails_every_call_in_it_and_the_next_query_reads_again():
    table = Table(fail_first=True)
    reads = ReadTogether(table.get_many, readers=1)
    first, got = ask_all(reads, ["o-0"])
    assert table.entered.wait(10)
    table.hold.set()
    first[0].join(10)
    assert isinstance(got["o-0"], StoreUnavailable)
    # The positive control: the same id, asked again, is read.
    assert reads.get("o-0") == {"order_id": "o-0"}


def test_two_readers_read_at_once():
    table = Table()
    reads = ReadTogether(table.get_many, readers=2)
    first, _ = ask_all(reads, ["o-0"])
    assert table.entered.wait(10)
    assert reads.get("o-2") == {"order_id": "o-2"}  # not behind the held query
    table.hold.set()
    first[0].join(10)


def test_many_callers_each_get_their_own_row():
    table = Table()
    table.hold.set()
    reads = ReadTogether(table.get_many, readers=2, most=8)
    ids = [f"o-{i}" for i in range(40)]
    threads, got = ask_all(reads, ids)
    for t in threads:
        t.join(10)
    assert got == {i: ROWS.get(i) for i in ids}
