"""Catalog service settings, from environment variables with defaults for the local stack."""

import os
from dataclasses import dataclass

from svc_runtime.db import mariadb_url


@dataclass(frozen=True)
class Settings:
    listen: str
    catalog_db_url: str
    orders_topic: str
    consumer_group: str


def load() -> Settings:
    return Settings(
        listen=f"{os.environ.get('CATALOG_HOST', '127.0.0.1')}:{os.environ.get('CATALOG_PORT', '50061')}",
        catalog_db_url=os.environ.get("CATALOG_DB_URL", mariadb_url(os.environ.get("CATALOG_DB", "catalog_db"))),
        orders_topic=os.environ.get("ORDERS_TOPIC", "orders"),
        consumer_group=os.environ.get("CATALOG_CONSUMER_GROUP", "catalog-stock"),
    )
