"""The baseline of bench/load.py: a bare grpcio unary "echo" server, in a process of its own.

    .venv/bin/python bench/echo_server.py PORT [--aio]

It answers the same method as the Order service (ordersync.order.v1.OrderService/CreateOrder),
so ghz loads it with the same proto, call and request data as the real service. It does no
work per call: the request's bytes are not parsed, and the answer is one CreateOrderResponse
serialized at start, of the size a real one has. (Sending the request's own bytes back is not
possible here: they do not parse as a CreateOrderResponse, and ghz checks what it receives.)
What is left is the cost of grpcio's unary path (HTTP/2, the thread pool) on this machine,
with the services' pool size (ordersync.serving.grpc_server.build_server). With --aio it is the same
server on grpc.aio (one event loop, no thread pool): bench/server_models.py compares the two.
"""

import asyncio
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ordersync.order.v1 import order_service_pb2
from ordersync.serving.grpc_server import MAX_WORKERS  # the services' pool size

METHOD_SERVICE = "ordersync.order.v1.OrderService"
METHOD_NAME = "CreateOrder"


# A typical answer: ids of the real lengths, a price, a timestamp.
ANSWER = order_service_pb2.CreateOrderResponse(order=order_service_pb2.Order(
    order_id="5f0c6a8e-2b1d-5c3e-9a4f-0123456789ab", user_id="bench-0123abcd", product_id="CATALOG-001",
    qty=1, unit_price=1500, total_price=1500, created_at=Timestamp(seconds=1_800_000_000, nanos=123_000_000)),
).SerializeToString()


def echo(request: bytes, context) -> bytes:
    return ANSWER


async def echo_async(request: bytes, context) -> bytes:
    return ANSWER


async def serve_aio(port: int) -> None:
    handler = grpc.method_handlers_generic_handler(
        METHOD_SERVICE, {METHOD_NAME: grpc.unary_unary_rpc_method_handler(echo_async)})
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        sys.exit(f"echo server: cannot listen on 127.0.0.1:{port}")
    await server.start()
    print(f"echo server (grpc.aio): listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    port = int(sys.argv[1])
    if "--aio" in sys.argv[2:]:
        asyncio.run(serve_aio(port))
        return
    handler = grpc.method_handlers_generic_handler(
        METHOD_SERVICE, {METHOD_NAME: grpc.unary_unary_rpc_method_handler(echo)})  # raw bytes in and out
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        sys.exit(f"echo server: cannot listen on 127.0.0.1:{port}")
    server.start()
    print(f"echo server: listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
