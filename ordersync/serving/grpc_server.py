"""Run a gRPC server with the standard health service and server reflection until SIGTERM/SIGINT;
its own services only for callers with a valid token (ordersync.serving.auth)."""

import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from ordersync.config import HOST, PLAINTEXT, GrpcTls
from ordersync.serving import auth, tracing
from ordersync.serving import metrics as exporter
from ordersync.serving.tls import server_credentials

# grpcio-reflection serves only v1alpha; current grpcurl and grpc-go ask for v1 first. The two
# protocols have the same messages on the wire, so one servicer answers both.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM or SIGINT sets, so the main thread can shut down in order."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def start_process(name: str, metrics_port: int, host: str = HOST) -> threading.Event:
    """What every service process does first: log one line per event under its `name`, serve its
    metrics on `host` (port 0: none), and stop on SIGTERM or SIGINT (the event returned)."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    stop = stop_on_signals()
    exporter.serve(metrics_port, host=host)
    return stop


def run_in_background(work, stop: threading.Event, name: str) -> threading.Thread:
    """work(stop) on a thread of its own: the process's consumer loop. Only a fatal error can end it
    early (no message can), and then the whole process stops: a service whose stream no longer
    moves must not go on answering as if it did."""
    def run() -> None:
        try:
            work(stop)
        except Exception:
            log.exception("%s failed; shutting the service down", name)
            stop.set()
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


# Calls served at once per process. A service's database pool should hold as many connections:
# a smaller pool makes the calls beyond it open (and close) a connection of their own each.
MAX_WORKERS = 16


def build_server(register, service_names, address, max_workers=MAX_WORKERS, serving=True,
                 verifier: auth.Verifier | None = None, tls: GrpcTls = PLAINTEXT, traces=None):
    """Create and start a server; `register(server)` adds the servicers. Its health says SERVING
    at once, or NOT_SERVING (`serving=False`) until the caller says otherwise. The services of
    `service_names` answer only calls with a token that `verifier` takes (auth.RequireToken);
    health and reflection answer anyone. A server with services of its own needs a verifier: only
    one that serves nothing but health (the gate) goes without. With `tls` on, the port is TLS
    only (GRPC_TLS_CERT and GRPC_TLS_KEY): a plaintext client fails its handshake. `traces`: the
    process's tracer provider (ordersync.serving.tracing.start), None: no call is traced.

    Returns (server, health_servicer). Raises RuntimeError when the address cannot be bound.
    """
    if service_names and verifier is None:
        raise ValueError(f"{', '.join(service_names)}: a server with services of its own needs a token verifier")
    # Tracing first: a call refused for its token is a span too.
    interceptors = [*tracing.server_interceptors(traces), *([auth.RequireToken(verifier)] if verifier is not None else [])]
    # No SO_REUSEPORT: a second process on a taken port must fail, not share it silently.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=interceptors,
                         options=[("grpc.so_reuseport", 0)])
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1)
    reflector = reflection.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            reflector.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)})])
    credentials = server_credentials(tls)
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if bound == 0:
        raise RuntimeError(f"cannot listen on {address}: is the port already in use?")
    server.start()
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *service_names):
        health_servicer.set(name, status)
    return server, health_servicer


def health_reporter(health_servicer, service_names, serving_gauge=None):
    """An on_health(serving, reason) callback for a process whose work is a consumer (the Catalog,
    the gate): it reports NOT_SERVING while the consumer is stuck, since what it serves no longer
    follows the orders, and sets serving_gauge (1 or 0)."""
    def report(serving: bool, reason: str) -> None:
        if serving_gauge is not None:
            serving_gauge.set(1 if serving else 0)
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *service_names):
            health_servicer.set(name, status)
    return report


def serve_until_stopped(server, health_servicer, stop: threading.Event, grace: float = 5.0,
                        background: threading.Thread | None = None, close=()):
    """Block until `stop` is set, then stop answering health checks, finish in-flight calls, let
    the background loop (run_in_background) end, and close what the process opened, in order."""
    stop.wait()
    log.info("shutting down: finishing in-flight calls (grace %.0fs)", grace)
    health_servicer.enter_graceful_shutdown()
    server.stop(grace).wait()
    if background is not None:
        background.join(timeout=30)
    for done_with in close:
        done_with()
    log.info("stopped")
