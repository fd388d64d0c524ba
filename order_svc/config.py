"""Order service settings: the shared ones (ordersync.config) and this instance's own."""

import os
import socket
from dataclasses import dataclass

from ordersync.config import PORT, SECONDS, ServiceSettings, SettingError, Settings, listen_host, setting


@dataclass(frozen=True)
class OrderSettings(ServiceSettings):
    instance: str
    catalog_address: str
    catalog_deadline_s: float
    product_fresh_s: float
    product_stale_s: float
    publish_timeout_s: float
    orders_topic: str
    orders_db_url: str
    orders_table: str
    auth_public_key: str  # the path of the key that callers' tokens are checked with (ordersync.config.public_key)
    order_token_file: str  # the path of this service's own token for the Catalog (ordersync.config.token_file)


def load(env=None) -> OrderSettings:
    """This instance's settings, each checked (SettingError names the first that is not usable)."""
    env = os.environ if env is None else env
    shared = Settings.from_env(env)
    # ORDER_PORT is this instance's port, one of ORDER_PORTS (the supervisor sets it).
    port = setting(env, "ORDER_PORT", PORT, shared.order_ports[0])
    # How old a product may be before the Catalog is asked again, and when it cannot answer.
    product_fresh_s = setting(env, "PRODUCT_FRESH_S", SECONDS, 1.0)
    product_stale_s = setting(env, "PRODUCT_STALE_S", SECONDS, 300.0)
    if product_stale_s < product_fresh_s:
        raise SettingError("PRODUCT_STALE_S", str(product_stale_s),
                           f"at least PRODUCT_FRESH_S ({product_fresh_s}): a product is asked for again once it is older")
    return OrderSettings(
        listen=f"{listen_host(env)}:{port}",
        metrics_port=shared.metrics_port(port, env),
        instance=env.get("ORDER_INSTANCE") or f"{socket.gethostname()}:{port}",
        catalog_address=shared.catalog_address,
        catalog_deadline_s=setting(env, "CATALOG_DEADLINE_S", SECONDS, 2.0),
        product_fresh_s=product_fresh_s,
        product_stale_s=product_stale_s,
        publish_timeout_s=setting(env, "PUBLISH_TIMEOUT_S", SECONDS, 10.0),
        kafka_client=shared.kafka_client(),
        grpc_tls=shared.grpc_tls,
        orders_topic=shared.orders_topic,
        orders_db_url=shared.mariadb_url(shared.orders_db),
        orders_table=shared.orders_table,
        auth_public_key=shared.auth_public_key,
        order_token_file=shared.order_token_file,
    )
