"""The running services' Prometheus metrics move with the orders they place and apply."""

import uuid

import grpc
import pytest

from connect import register
from ops.metrics import scrape
from ordersync.order.v1 import order_service_pb2
from tests.support.products import wait_in_views
from tests.support.tables import add_product
from tests.support.waiting import wait_until


def request(product_id, qty=1):
    return order_service_pb2.CreateOrderRequest(
        user_id=f"metrics-{uuid.uuid4().hex[:8]}", product_id=product_id, qty=qty, request_id=str(uuid.uuid4()))


def test_an_order_moves_the_counters_of_both_services_and_the_lag_is_exported(topology, stack, services, order_stubs):
    order, catalog = services.orders[0], services.catalog
    product_id = add_product(stack, "METRICS")
    wait_in_views(topology, product_id)
    before, catalog_before = scrape(order), scrape(catalog)

    order_stubs[0].CreateOrder(request(product_id), timeout=15)
    with pytest.raises(grpc.RpcError) as refused:
        order_stubs[0].CreateOrder(request(product_id, qty=0), timeout=15)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    after = scrape(order)

    def moved(name, **labels):
        return (after.value(name, **labels) or 0) - (before.value(name, **labels) or 0)
    assert moved("ordersync_create_order_total", code="OK") == 1
    assert moved("ordersync_create_order_total", code="INVALID_ARGUMENT") == 1
    assert moved("ordersync_create_order_seconds_count") == 2
    assert moved("ordersync_publish_seconds_count", result="acked") == 1

    applied_before = catalog_before.value("ordersync_events_applied_total") or 0

    def applied():
        scraped = scrape(catalog)
        return scraped if (scraped.value("ordersync_events_applied_total") or 0) > applied_before else None
    now = wait_until(applied, timeout=60, what="the Catalog to count the order as applied")
    assert now.value("ordersync_event_handler_seconds_count") > (
        catalog_before.value("ordersync_event_handler_seconds_count") or 0)
    for counter in ("ordersync_events_duplicate_total", "ordersync_events_dead_lettered_total",
                    "ordersync_events_retried_total"):
        assert now.value(counter) is not None, counter
    assert now.value("ordersync_consumer_serving") == 1

    # One lag per partition of the orders topic; the order just applied leaves none (lag is
    # measured at most every 5 s).
    def caught_up():
        lag = scrape(catalog).samples("ordersync_consumer_lag")
        return lag if lag and not any(lag.values()) else None
    lag = wait_until(caught_up, timeout=60, what="the Catalog's consumer lag to reach 0")
    assert {dict(labels)["topic"] for labels in lag} == {services.accepted_topic}
    assert len(lag) == register.TOPIC_PARTITIONS  # all assigned to the one Catalog
