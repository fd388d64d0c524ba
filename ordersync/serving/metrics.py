"""The exporter that serves each process's Prometheus metrics (the metrics are each service's own:
order_svc.metrics, catalog_svc.metrics, ordersync.gate.metrics).

Each service serves GET /metrics on its listen host (LISTEN_HOST, 127.0.0.1 unless set), on its
metrics port (Settings.metrics_port: its gRPC port + METRICS_PORT_OFFSET, or METRICS_PORT), from
the process's default registry, which also holds prometheus_client's process_* and python_*
metrics. Tests pass a registry of their own.

"""

import logging

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from ordersync.config import HOST

log = logging.getLogger(__name__)


def serve(port: int, registry: CollectorRegistry = REGISTRY, host: str = HOST):
    """Serve `registry` on host:port/metrics from a daemon thread; returns the HTTP server, or
    None when port is 0. Raises RuntimeError when the port cannot be bound (like the gRPC port)."""
    if not port:
        log.info("metrics exporter off (METRICS_PORT_OFFSET=0)")
        return None
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise RuntimeError(f"cannot serve metrics on {host}:{port} ({e}): set METRICS_PORT to a free port, "
                           "or METRICS_PORT_OFFSET=0 to turn the exporter off") from None
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
