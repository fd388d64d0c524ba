"""Catalog service settings, from environment variables with defaults for the local stack."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    listen: str
    catalog_db_url: str
    orders_topic: str
    consumer_group: str


def load() -> Settings:
    db = "mysql+pymysql://{user}:{password}@{host}:{port}/{name}".format(
        user=os.environ.get("MARIADB_USER", "ordersync"),
        password=os.environ.get("MARIADB_PASSWORD", "ordersync"),
        host=os.environ.get("MARIADB_HOST", "127.0.0.1"),
        port=os.environ.get("MARIADB_PORT", "3306"),
        name=os.environ.get("CATALOG_DB", "catalog_db"),
    )
    return Settings(
        listen=f"{os.environ.get('CATALOG_HOST', '127.0.0.1')}:{os.environ.get('CATALOG_PORT', '50061')}",
        catalog_db_url=os.environ.get("CATALOG_DB_URL", db),
        orders_topic=os.environ.get("ORDERS_TOPIC", "orders"),
        consumer_group=os.environ.get("CATALOG_CONSUMER_GROUP", "catalog-stock"),
    )
