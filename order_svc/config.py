"""Order service settings: the shared ones (ordersync.config) and this instance's own."""

import os
import socket
from dataclasses import dataclass

from ordersync.config import PORT, SECONDS, ServiceSettings, SettingError, Settings, listen_host, setting

MIN_VIEW_BOUND_S = 3.0


@dataclass(frozen=True)
class OrderSettings(ServiceSettings):
    instance: str
    product_view_max_behind_s: float  # CreateOrder refuses while the product view is older (order_svc/products.py)
    publish_timeout_s: float
    orders_topic: str
    orders_db_url: str
    orders_table: str
    auth_public_key: str  # the path of the key that callers' tokens are checked with (ordersync.config.public_key)


def load(env=None) -> OrderSettings:
    """This instance's settings, each checked (SettingError names the first that is not usable)."""
    env = os.environ if env is None else env
    shared = Settings.from_env(env)
    # ORDER_PORT is this instance's port, one of ORDER_PORTS (the supervisor sets it).
    port = setting(env, "ORDER_PORT", PORT, shared.order_ports[0])
    # How far behind catalog.products the product view may be before CreateOrder refuses. Above the
    # view's own measuring rhythm (bus.compacted_view.MEASURE_EVERY, 1 s): a current view is up to
    # about that behind between two measures.
    max_behind_s = setting(env, "PRODUCT_VIEW_MAX_BEHIND_S", SECONDS, 30.0)
    if max_behind_s < MIN_VIEW_BOUND_S:
        raise SettingError("PRODUCT_VIEW_MAX_BEHIND_S", env.get("PRODUCT_VIEW_MAX_BEHIND_S", ""),
                           f"at least {MIN_VIEW_BOUND_S:g} (the view measures how current it is about every second)")
    return OrderSettings(
        listen=f"{listen_host(env)}:{port}",
        metrics_port=shared.metrics_port(port, env),
        instance=env.get("ORDER_INSTANCE") or f"{socket.gethostname()}:{port}",
        product_view_max_behind_s=max_behind_s,
        publish_timeout_s=setting(env, "PUBLISH_TIMEOUT_S", SECONDS, 10.0),
        kafka_client=shared.kafka_client(),
        grpc_tls=shared.grpc_tls,
        traces=shared.trace_export,
        orders_topic=shared.orders_topic,
        orders_db_url=shared.mariadb_url(shared.orders_db),
        orders_table=shared.orders_table,
        auth_public_key=shared.auth_public_key,
    )
