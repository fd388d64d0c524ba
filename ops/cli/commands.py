"""Each command of `ordersync`: which service it calls, the calls, and its reply as text."""

import dataclasses
import uuid
from collections.abc import Callable

from ops.cli import output
from ops.cli.calls import RETRIED, Caller, CallFailed
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.config import Settings
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc


def create(caller: Caller, args):
    # One request_id for every attempt: the order id is uuid5(user_id, request_id), so a retry
    # that reaches any instance is the same order.
    request = order_service_pb2.CreateOrderRequest(user_id=args.user_id, product_id=args.product_id, qty=args.qty,
                                                   request_id=args.request_id or str(uuid.uuid4()))
    try:
        return caller.call("CreateOrder", request)
    except CallFailed as failed:
        if failed.code in RETRIED:
            failed.details += f" (the order may have been placed: retry with --request-id {request.request_id})"
        raise


def get(caller: Caller, args):
    return caller.call("GetOrder", order_service_pb2.GetOrderRequest(order_id=args.order_id))


def list_orders(caller: Caller, args):
    request = order_service_pb2.ListOrdersRequest(user_id=args.user_id, page_size=args.page_size or 0,
                                                  page_token=args.page_token)
    reply = caller.call("ListOrders", request)
    if not args.all:
        return reply
    # Every page in one reply: one JSON document, as for a single page.
    everything = order_service_pb2.ListOrdersResponse(orders=reply.orders)
    while reply.next_page_token:
        request.page_token = reply.next_page_token
        reply = caller.call("ListOrders", request)
        everything.orders.extend(reply.orders)
    return everything


def products(caller: Caller, args):
    return caller.call("ListProducts", catalog_service_pb2.ListProductsRequest())


@dataclasses.dataclass(frozen=True)
class Command:
    stub: Callable                                # the generated stub of the service it calls
    addresses: Callable[[Settings], list[str]]    # where that service is, without --target
    run: Callable                                 # run(caller, args) -> the reply
    text: Callable                                # the reply as text


def _orders(settings: Settings) -> list[str]:
    return settings.order_addresses


def _catalogs(settings: Settings) -> list[str]:
    return settings.catalog_addresses


COMMANDS = {
    "order create": Command(order_service_pb2_grpc.OrderServiceStub, _orders, create, lambda r: output.order(r.order)),
    "order get": Command(order_service_pb2_grpc.OrderServiceStub, _orders, get, lambda r: output.order(r.order)),
    "order list": Command(order_service_pb2_grpc.OrderServiceStub, _orders, list_orders, output.orders),
    "products": Command(catalog_service_pb2_grpc.CatalogServiceStub, _catalogs, products, output.products),
}
