"""ProductView: fresh for fresh_s, usable when the Catalog is down for stale_s, then forgotten."""
from types import SimpleNamespace

from order_svc.products import ProductView
from tests.doubles import Clock


def test_fresh_then_only_stale_then_gone():
    clock = Clock(100.0)
    view = ProductView(fresh_s=1.0, stale_s=300.0, clock=clock)
    product = SimpleNamespace(product_id="CATALOG-001", stock=5)
    assert view.fresh("CATALOG-001") is None and view.stale("CATALOG-001") is None
    view.remember(product)
    assert view.fresh("CATALOG-001") is product
    clock.now += 1.0
    assert view.fresh("CATALOG-001") is None and view.stale("CATALOG-001") is product
    clock.now += 299.0
    assert view.stale("CATALOG-001") is None


def test_one_caller_at_a_time_refreshes_a_product():
    view = ProductView(fresh_s=1.0, stale_s=300.0)
    with view.refresh("CATALOG-001") as first:
        with view.refresh("CATALOG-001") as second, view.refresh("CATALOG-002") as other:
            assert (first, second, other) == (True, False, True)
    with view.refresh("CATALOG-001") as again:
        assert again is True  # released, also after an exception
    try:
        with view.refresh("CATALOG-001"):
            raise RuntimeError("lookup failed")
    except RuntimeError:
        pass
    with view.refresh("CATALOG-001") as after_failure:
        assert after_failure is True
