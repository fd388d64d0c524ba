"""The Catalog's products as this Order instance last saw them.

A product looked up less than `fresh_s` ago is used without asking the Catalog
again: the stock check is advisory anyway (stock is lowered asynchronously, so
two orders can race for the last units), and most orders are for products
ordered a moment ago. Once it is older, one call asks the Catalog (refresh())
while the calls that come meanwhile use the product seen before: a product is
at most `fresh_s` plus one lookup old. When the Catalog cannot answer, a
product seen less than `stale_s` ago is used, so orders keep being taken while
the Catalog or its database is down, at the price and stock of that moment.
"""

import contextlib
import threading
import time


class ProductView:
    def __init__(self, fresh_s: float, stale_s: float, clock=time.monotonic):
        self.fresh_s, self.stale_s, self._clock = fresh_s, stale_s, clock
        self._seen: dict[str, tuple[float, object]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def refresh(self, product_id: str):
        """Yields True to the one caller that should ask the Catalog about product_id now, False
        to those that come while it does (they use stale()): under load, 16 calls finding a
        product expired at once would otherwise all ask the Catalog."""
        with self._lock:
            mine = product_id not in self._refreshing
            self._refreshing.add(product_id)
        try:
            yield mine
        finally:
            if mine:
                with self._lock:
                    self._refreshing.discard(product_id)

    def remember(self, product) -> None:
        with self._lock:
            self._seen[product.product_id] = (self._clock(), product)

    def fresh(self, product_id: str):
        """The product if it was seen less than fresh_s ago, else None."""
        return self._younger_than(product_id, self.fresh_s)

    def stale(self, product_id: str):
        """The product if it was seen less than stale_s ago (for when the Catalog is down), else None."""
        return self._younger_than(product_id, self.stale_s)

    def _younger_than(self, product_id: str, seconds: float):
        with self._lock:
            seen = self._seen.get(product_id)
        if seen is None or self._clock() - seen[0] >= seconds:
            return None
        return seen[1]
