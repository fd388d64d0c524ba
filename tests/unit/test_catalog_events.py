"""The Catalog's side of order events, without servers: which failures are permanent or
transient, the stock rules (on SQLite), and the health the service reports."""

import pymysql
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry

from bus.consumer import EventMeta
from bus.failures import PermanentError, TransientError, is_permanent
from catalog_svc import server, stock
from catalog_svc.metrics import CatalogMetrics
from ordersync.order.v1 import order_event_pb2
from ordersync.serving import db_failures
from ordersync.serving.grpc_server import health_reporter

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# Where the consumer found an event (the handler keeps it for the retention of applied_orders).
AT = EventMeta("orders.accepted", 0, 0, None, None)


def event(**changes):
    fields = dict(order_id="o-1", user_id="alice", product_id="CATALOG-001", qty=2, unit_price=1500,
                  total_price=3000, created_at=Timestamp(seconds=1_700_000_000))
    return order_event_pb2.OrderPlaced(**{**fields, **changes})


@pytest.fixture
def engine():
    # One in-memory database shared by every connection of the pool.
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool,
                              connect_args={"check_same_thread": False})
    stock.prepare(engine)
    yield engine
    engine.dispose()


def stock_of(engine, product_id):
    return stock.get_product(engine, product_id)["stock"]


def applied_orders(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(stock.applied_orders)).all()


# --- the handler checks events like requests -----------------------------------------

@pytest.mark.parametrize("changes, words", [
    ({"qty": 0, "total_price": 0}, "qty must be 1 to 10000, got 0"),
    ({"qty": -5, "total_price": -7500}, "qty must be 1 to 10000, got -5"),  # would raise stock
    ({"qty": 20_000, "total_price": 30_000_000}, "qty must be 1 to 10000"),
    ({"order_id": ""}, "order_id is required"),
    ({"product_id": "a b"}, "product_id 'a b' may only contain"),
    ({"total_price": 1}, "total_price 1 is not qty 2 x unit_price 1500"),
    ({"created_at": None}, "created_at is required"),
])
def test_an_event_breaking_the_rules_is_refused_and_touches_nothing(engine, changes, words):
    handle = server.order_events_handler(engine)
    before = stock.list_products(engine)
    refused = handle([(event(**changes), AT)])
    assert list(refused) == [0] and is_permanent(refused[0]) and words in str(refused[0])
    assert stock.list_products(engine) == before and applied_orders(engine) == []


def test_a_valid_event_lowers_the_stock_once(engine):
    handle = server.order_events_handler(engine)
    before = stock_of(engine, "CATALOG-001")
    assert handle([(event(), AT)]) == {}
    assert handle([(event(), AT)]) == {}  # redelivered: skipped silently
    assert stock_of(engine, "CATALOG-001") == before - 2


def test_a_batch_applies_its_valid_events_and_refuses_the_others_by_index(engine):
    handle = server.order_events_handler(engine)
    before = stock_of(engine, "CATALOG-001"), stock_of(engine, "CATALOG-002")
    refused = handle([(event(order_id="o-1"), AT), (event(order_id="o-2", qty=0, total_price=0), AT),
                      (event(order_id="o-3", product_id="CATALOG-404"), AT),
                      (event(order_id="o-4", product_id="CATALOG-002", unit_price=1000, total_price=2000), AT)])
    assert sorted(refused) == [1, 2]
    assert "qty must be 1 to 10000" in str(refused[1]) and isinstance(refused[2], stock.UnknownProduct)
    assert (stock_of(engine, "CATALOG-001"), stock_of(engine, "CATALOG-002")) == (before[0] - 2, before[1] - 2)


# --- stock.apply_orders / apply_order --------------------------------------------------

def applied_rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(stock.applied_orders)).scalar()


def test_a_batch_is_applied_once_with_one_change_per_product(engine):
    before = {p: stock_of(engine, p) for p in ("CATALOG-001", "CATALOG-002", "CATALOG-003")}
    batch = [stock.Order("b-1", "CATALOG-001", 2), stock.Order("b-2", "CATALOG-001", 3),
             stock.Order("b-3", "CATALOG-003", 1), stock.Order("b-1", "CATALOG-001", 2)]  # b-1 twice in it
    outcome = stock.apply_orders(engine, batch)
    assert (outcome.applied, outcome.duplicates, outcome.refused) == (3, 1, {})
    again = stock.apply_orders(engine, batch)  # the whole batch redelivered
    assert (again.applied, again.duplicates, again.refused) == (0, 4, {})
    after = {p: stock_of(engine, p) for p in before}
    assert after == {"CATALOG-001": before["CATALOG-001"] - 5, "CATALOG-002": before["CATALOG-002"],
                     "CATALOG-003": before["CATALOG-003"] - 1}
    assert applied_rows(engine) == 3


def test_a_batch_refuses_an_order_id_reused_within_it_or_before_and_applies_the_rest(engine):
    assert stock.apply_order(engine, "r-1", "CATALOG-002", 1) is True
    before = stock_of(engine, "CATALOG-002")
    outcome = stock.apply_orders(engine, [
        stock.Order("r-1", "CATALOG-002", 5),  # applied before with qty 1
        stock.Order("r-2", "CATALOG-002", 2),
        stock.Order("r-2", "CATALOG-002", 7),  # earlier in this batch with qty 2
        stock.Order("r-3", "CATALOG-002", -3)])
    assert outcome.applied == 1 and sorted(outcome.refused) == [0, 2, 3]
    assert isinstance(outcome.refused[0], stock.OrderIdReused) and isinstance(outcome.refused[2], stock.OrderIdReused)
    assert "qty must be at least 1" in str(outcome.refused[3])
    assert stock_of(engine, "CATALOG-002") == before - 2


def test_a_batch_the_database_refuses_whole_changes_nothing(engine):
    before = stock_of(engine, "CATALOG-001"), applied_rows(engine)
    with engine.begin() as conn:  # SQLite does not check lengths: a trigger stands in for MariaDB's
        conn.execute(sa.text("CREATE TRIGGER too_long BEFORE INSERT ON applied_orders "
                             "WHEN NEW.order_id = 'x-bad' BEGIN SELECT RAISE(ABORT, 'too long'); END"))
    with pytest.raises(PermanentError):
        stock.apply_orders(engine, [stock.Order("x-ok", "CATALOG-001", 1), stock.Order("x-bad", "CATALOG-001", 1)])
    assert (stock_of(engine, "CATALOG-001"), applied_rows(engine)) == before


def test_an_unknown_product_is_permanent_and_records_nothing(engine):
    with pytest.raises(stock.UnknownProduct) as info:
        stock.apply_order(engine, "o-2", "CATALOG-404", 1)
    assert is_permanent(info.value)
    # The same order id can still be applied: its row rolled back with the failed change.
    assert stock.apply_order(engine, "o-2", "CATALOG-001", 1) is True


def test_an_order_id_reused_with_other_content_is_permanent_and_changes_nothing(engine):
    assert stock.apply_order(engine, "o-3", "CATALOG-002", 3) is True
    before = stock_of(engine, "CATALOG-002"), stock_of(engine, "CATALOG-003")
    for product_id, qty in (("CATALOG-002", 4), ("CATALOG-003", 3)):
        with pytest.raises(stock.OrderIdReused, match="order_id o-3 reused with different content"):
            stock.apply_order(engine, "o-3", product_id, qty)
    assert stock.apply_order(engine, "o-3", "CATALOG-002", 3) is False  # same content: a no-op
    assert (stock_of(engine, "CATALOG-002"), stock_of(engine, "CATALOG-003")) == before


@pytest.mark.parametrize("qty", [0, -1, -10_000])
def test_no_order_can_raise_stock(engine, qty):
    before = stock_of(engine, "CATALOG-001")
    with pytest.raises(PermanentError, match="qty must be at least 1"):
        stock.apply_order(engine, "o-4", "CATALOG-001", qty)
    assert stock_of(engine, "CATALOG-001") == before


# --- database errors -------------------------------------------------------------------

def mariadb_error(cls, driver_cls, code, message="stand-in"):
    return cls("UPDATE products ...", {}, driver_cls(code, message))


@pytest.mark.parametrize("code", [1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 4031])
def test_errors_that_pass_with_time_are_transient(code):
    failure = db_failures.db_failure(mariadb_error(sa.exc.OperationalError,
                                             pymysql.err.OperationalError, code))
    assert isinstance(failure, TransientError)
    assert db_failures.TRANSIENT_DB_ERRORS[code] in str(failure)


def test_a_closed_or_invalidated_connection_is_transient():
    closed = sa.exc.InterfaceError("SELECT 1", {}, pymysql.err.InterfaceError(0, ""))
    assert isinstance(db_failures.db_failure(closed), TransientError)
    invalidated = sa.exc.OperationalError("SELECT 1", {}, Exception("?"), connection_invalidated=True)
    assert isinstance(db_failures.db_failure(invalidated), TransientError)


@pytest.mark.parametrize("cls, driver_cls, code", [
    (sa.exc.DataError, pymysql.err.DataError, 1406),  # data too long
    (sa.exc.DataError, pymysql.err.DataError, 1264),  # out of range
    (sa.exc.IntegrityError, pymysql.err.IntegrityError, 1048),  # column cannot be null
])
def test_data_the_table_cannot_hold_is_permanent(cls, driver_cls, code):
    assert isinstance(db_failures.db_failure(mariadb_error(cls, driver_cls, code)), PermanentError)


def test_other_database_errors_stay_as_they_are_so_the_consumer_retries_them():
    missing_table = mariadb_error(sa.exc.ProgrammingError, pymysql.err.ProgrammingError, 1146)
    failure = db_failures.db_failure(missing_table)
    assert failure is missing_table and not is_permanent(failure)


def test_apply_order_turns_database_errors_into_failures():
    # A MariaDB engine on a port where nothing listens: pymysql's own error 2003, no server needed.
    nowhere = stock.create_engine("mysql+pymysql://u:p@127.0.0.1:1/catalog_db")
    try:
        with pytest.raises(TransientError, match="cannot connect"):
            stock.apply_order(nowhere, "o-5", "CATALOG-001", 1)
    finally:
        nowhere.dispose()


# --- health ------------------------------------------------------------------------------

def status(servicer, name):
    return servicer.Check(health_pb2.HealthCheckRequest(service=name), None).status


def test_the_service_is_not_serving_while_its_consumer_is_stuck():
    servicer = health.HealthServicer()
    names = ["ordersync.catalog.v1.CatalogService"]
    report = health_reporter(servicer, names)
    report(False, "stuck on orders[0]@7: database down")
    assert [status(servicer, n) for n in ("", *names)] == [NOT_SERVING, NOT_SERVING]
    report(True, "recovered")
    assert [status(servicer, n) for n in ("", *names)] == [SERVING, SERVING]


# --- metrics -------------------------------------------------------------------------------

def test_the_handler_counts_applied_and_duplicate_events_and_times_every_call(engine):
    registry = CollectorRegistry()
    handle = server.order_events_handler(engine, CatalogMetrics(registry))
    handle([(event(), AT)])
    handle([(event(), AT), (event(order_id="o-2"), AT)])  # o-1 redelivered
    assert list(handle([(event(order_id="o-3", qty=0, total_price=0), AT)])) == [0]
    assert registry.get_sample_value("ordersync_events_applied_total") == 2
    assert registry.get_sample_value("ordersync_events_duplicate_total") == 1
    assert registry.get_sample_value("ordersync_event_handler_seconds_count") == 3


def test_the_serving_gauge_follows_the_consumers_health():
    registry = CollectorRegistry()
    report = health_reporter(health.HealthServicer(), [], CatalogMetrics(registry).serving)
    assert registry.get_sample_value("ordersync_consumer_serving") == 1
    report(False, "stuck")
    assert registry.get_sample_value("ordersync_consumer_serving") == 0
    report(True, "recovered")
    assert registry.get_sample_value("ordersync_consumer_serving") == 1
