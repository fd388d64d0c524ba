"""The Catalog's products as this Order instance sees them: the compacted topic catalog.products
(every change of catalog_db.products, written by the source connector) followed from its beginning
by a bus.compacted_view.CompactedView of the contract's Product. The Catalog is never asked on an
order's path; GetProduct/ListProducts stay for clients.

How old a product may be: the view holds everything the topic held `behind_s()` seconds ago.
Beyond PRODUCT_VIEW_MAX_BEHIND_S, CreateOrder is refused (UNAVAILABLE, the seconds named), not
served at a price that may be long gone: a view that far behind means this instance cannot read
the topic (the broker unreachable, the view's thread stuck), and an order would then most likely
not be published either. What this bound does not see: the topic itself behind the table (the
source connector stopped); the README's "The source connector" says so.
"""

from bus.clients import LIBRDKAFKA, KafkaClients
from bus.compacted_view import CompactedView
from ordersync.catalog.v1.catalog_service_pb2 import Product
from ordersync.config import PRODUCTS_TOPIC


class UnknownProduct(Exception):
    """The view has no such product (never written, or deleted)."""


class ViewBehind(Exception):
    """The view is older than the bound; the message says by how much."""


def product_view(client: dict, clients: KafkaClients = LIBRDKAFKA, on_ready=None,
                 topic: str = PRODUCTS_TOPIC) -> CompactedView:
    """The view of the products topic; `client`: Settings.kafka_client() (every Kafka client the same)."""
    return CompactedView(topic, Product, client=client, clients=clients, on_ready=on_ready)


def lookup(view: CompactedView, product_id: str, max_behind_s: float) -> Product:
    """The product as the view holds it, if the view is recent enough; else ViewBehind or UnknownProduct."""
    behind = view.behind_s()
    if behind is None:
        raise ViewBehind(f"this instance has not read {view.topic} to its end yet; retry")
    if behind > max_behind_s:
        raise ViewBehind(f"this instance's products are {behind:.0f}s behind {view.topic} (more than "
                         f"PRODUCT_VIEW_MAX_BEHIND_S={max_behind_s:g}); retry, another instance may answer")
    product = view.get(product_id)
    if product is None:
        raise UnknownProduct(f"unknown product_id {product_id!r} (product ids are case-sensitive; "
                             "ListProducts lists them)")
    return product
