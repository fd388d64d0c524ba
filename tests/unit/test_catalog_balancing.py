"""The Order service's channel to several Catalogs (order_svc.server.catalog_channel): round_robin
over every address, and client-side health checking that leaves out a Catalog that says
NOT_SERVING or is gone, before a call fails there. Two real gRPC servers on loopback, each
answering GetProduct with its own name."""

import collections

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2

from order_svc.server import catalog_channel
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.grpc_server import build_server
from stack.topology import free_port
from tests.support.waiting import wait_until

SERVICE = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name


class NamedCatalog(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, name: str):
        self.name = name

    def GetProduct(self, request, context):
        return catalog_service_pb2.GetProductResponse(product=catalog_service_pb2.Product(product_id=self.name))


def start_catalogs(key, count=2):
    servers = []
    for i in range(count):
        address = f"127.0.0.1:{free_port()}"
        servicer = NamedCatalog(f"catalog-{i + 1}")
        server, health = build_server(lambda s, servicer=servicer: catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(
            servicer, s), [SERVICE], address, verifier=auth.Verifier(key.public_key()))
        servers.append((address, server, health))
    return servers


def answered_by(stub, calls=40) -> collections.Counter:
    request = catalog_service_pb2.GetProductRequest(product_id="ANY")
    return collections.Counter(stub.GetProduct(request, timeout=5).product.product_id for _ in range(calls))


def test_calls_go_to_every_catalog_and_leave_out_one_that_is_not_serving_or_gone():
    key = Ed25519PrivateKey.generate()
    servers = start_catalogs(key)
    token = auth.mint(key, "order", auth.SERVICE, 600)
    channel = catalog_channel("ipv4:" + ",".join(address for address, _, _ in servers), token)
    stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
    try:
        wait_until(lambda: len(answered_by(stub, 10)) == 2, timeout=30, what="calls answered by both Catalogs")
        both = answered_by(stub)
        assert set(both) == {"catalog-1", "catalog-2"} and min(both.values()) >= 10, both  # round_robin: each its share
        _, _, health_1 = servers[0]
        for name in ("", SERVICE):
            health_1.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_until(lambda: set(answered_by(stub, 10)) == {"catalog-2"}, timeout=30,
                   what="catalog-1, NOT_SERVING, to be left out")
        assert answered_by(stub) == {"catalog-2": 40}
        for name in ("", SERVICE):
            health_1.set(name, health_pb2.HealthCheckResponse.SERVING)
        wait_until(lambda: len(answered_by(stub, 10)) == 2, timeout=30, what="catalog-1 back in the rotation")
        _, server_2, _ = servers[1]
        server_2.stop(0)  # gone: every call is answered by the other, none fails
        wait_until(lambda: set(answered_by(stub, 10)) == {"catalog-1"}, timeout=30, what="catalog-2 to be left out")
        assert answered_by(stub) == {"catalog-1": 40}
    finally:
        channel.close()
        for _, server, _ in servers:
            server.stop(0)
