"""One query for the order ids asked at once: CreateOrder's idempotency read, coalesced.

Under load every CreateOrder asks the orders table whether its order id is there (a retry on another
instance must get the order placed first). A query costs about as much Python (pymysql) and MariaDB
work for one id as for several, so the ids asked while `readers` queries are in flight are read
together in the next one (`WHERE order_id IN (...)`), at most `most` per query. Alone, a call reads
at once, as before: nothing waits for a batch to fill.
"""

import threading
from collections.abc import Callable


class _Ask:
    __slots__ = ("order_id", "taken", "done", "row", "error")

    def __init__(self, order_id: str):
        self.order_id = order_id
        self.taken = self.done = False
        self.row: dict | None = None
        self.error: Exception | None = None


class ReadTogether:
    """get(order_id) -> row or None, through get_many(ids) -> {order_id: row}; an exception of
    get_many (StoreUnavailable) is raised in every call whose id was in that query."""

    def __init__(self, get_many: Callable[[list[str]], dict], readers: int = 2, most: int = 64):
        self._get_many = get_many
        self._readers, self._most = readers, most
        self._reading = 0
        self._waiting: list[_Ask] = []
        self._changed = threading.Condition()

    def get(self, order_id: str) -> dict | None:
        ask = _Ask(order_id)
        with self._changed:
            self._waiting.append(ask)
        while True:
            with self._changed:
                while not ask.done and (ask.taken or self._reading >= self._readers):
                    self._changed.wait()
                if ask.done:
                    if ask.error is not None:
                        raise ask.error
                    return ask.row
                # A reader's place is free and this id is not read yet: read it and those waiting.
                batch, self._waiting = self._waiting[:self._most], self._waiting[self._most:]
                for a in batch:
                    a.taken = True
                self._reading += 1
            self._read(batch)

    def _read(self, batch: list[_Ask]) -> None:
        try:
            rows = self._get_many([a.order_id for a in batch])
            for a in batch:
                a.row = rows.get(a.order_id)
        except Exception as e:  # each caller decides what a failed read means (raised there)
            for a in batch:
                a.error = e
        finally:
            with self._changed:
                for a in batch:
                    a.done = True
                self._reading -= 1
                self._changed.notify_all()
