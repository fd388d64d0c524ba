"""Stock changes against the real MariaDB: once per order id, in one transaction with the record of it."""

import uuid

import pytest
import sqlalchemy as sa

from catalog_svc import stock


@pytest.fixture
def catalog_engine(services):
    return services.catalog_engine


def product_stock(engine, product_id):
    return stock.get_product(engine, product_id)["stock"]


def test_apply_order_is_idempotent_per_order_id(catalog_engine):
    before = product_stock(catalog_engine, "CATALOG-003")
    order_id = str(uuid.uuid4())
    assert stock.apply_order(catalog_engine, order_id, "CATALOG-003", 3) is True
    assert stock.apply_order(catalog_engine, order_id, "CATALOG-003", 3) is False
    assert product_stock(catalog_engine, "CATALOG-003") == before - 3


def test_unknown_product_changes_nothing(catalog_engine):
    order_id = str(uuid.uuid4())
    with pytest.raises(stock.UnknownProduct, match="CATALOG-404"):
        stock.apply_order(catalog_engine, order_id, "CATALOG-404", 1)
    with catalog_engine.connect() as conn:
        recorded = conn.execute(sa.text("SELECT COUNT(*) FROM applied_orders WHERE order_id = :o"),
                                {"o": order_id}).scalar()
    assert recorded == 0, "the applied-order row must roll back with the failed stock change"


def test_prepare_keeps_existing_stock(catalog_engine):
    before = stock.list_products(catalog_engine)
    stock.prepare(catalog_engine)
    assert stock.list_products(catalog_engine) == before
