"""Order service settings, from environment variables with defaults for the local stack."""

import os
import socket
from dataclasses import dataclass

from svc_runtime.db import mariadb_url


@dataclass(frozen=True)
class Settings:
    listen: str
    instance: str
    catalog_address: str
    catalog_deadline_s: float
    publish_timeout_s: float
    orders_topic: str
    orders_db_url: str
    orders_table: str


def load() -> Settings:
    port = os.environ.get("ORDER_PORT", "50051")
    return Settings(
        listen=f"{os.environ.get('ORDER_HOST', '127.0.0.1')}:{port}",
        instance=os.environ.get("ORDER_INSTANCE", f"{socket.gethostname()}:{port}"),
        catalog_address=os.environ.get("CATALOG_ADDRESS", "127.0.0.1:50061"),
        catalog_deadline_s=float(os.environ.get("CATALOG_DEADLINE_S", "2.0")),
        publish_timeout_s=float(os.environ.get("PUBLISH_TIMEOUT_S", "10.0")),
        orders_topic=os.environ.get("ORDERS_TOPIC", "orders"),
        orders_db_url=os.environ.get("ORDERS_DB_URL", mariadb_url(os.environ.get("ORDERS_DB", "orders_db"))),
        orders_table=os.environ.get("ORDERS_TABLE", "orders"),
    )
