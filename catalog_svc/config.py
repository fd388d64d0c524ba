"""Catalog service settings: the shared ones (svc_runtime.settings) that it uses."""

import os
from dataclasses import dataclass

from svc_runtime.settings import HOST, Settings


@dataclass(frozen=True)
class CatalogSettings:
    listen: str
    metrics_port: int  # 0: no exporter
    kafka_bootstrap: str
    catalog_db_url: str
    orders_topic: str
    consumer_group: str


def load(env=None) -> CatalogSettings:
    env = os.environ if env is None else env
    shared = Settings.from_env(env)
    return CatalogSettings(
        listen=f"{HOST}:{shared.catalog_port}",
        metrics_port=shared.metrics_port(shared.catalog_port, env),
        kafka_bootstrap=shared.kafka_bootstrap,
        catalog_db_url=shared.mariadb_url(shared.catalog_db),
        orders_topic=shared.orders_topic,
        consumer_group=shared.catalog_group,
    )
