"""ProductView: fresh for fresh_s, usable when the Catalog is down for stale_s, then forgotten."""
from types import SimpleNamespace

from order_svc.products import ProductView


def test_fresh_then_only_stale_then_gone():
    now = [100.0]
    view = ProductView(fresh_s=1.0, stale_s=300.0, clock=lambda: now[0])
    product = SimpleNamespace(product_id="CATALOG-001", stock=5)
    assert view.fresh("CATALOG-001") is None and view.stale("CATALOG-001") is None
    view.remember(product)
    assert view.fresh("CATALOG-001") is product
    now[0] += 1.0
    assert view.fresh("CATALOG-001") is None and view.stale("CATALOG-001") is product
    now[0] += 299.0
    assert view.stale("CATALOG-001") is None
