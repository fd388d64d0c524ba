"""Private copies of the sink connector: each with its own name, topic, table and dead-letter
topic, registered on the stack's Connect worker and removed with all they made."""

import uuid
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka.admin import AdminClient

from connect import register
from ordersync.config import Settings


def create_private_sink(settings: Settings, overrides: dict | None = None,
                        base: str | Path = register.DEFAULT_CONFIG, prefix: str = "test") -> dict:
    """Register a copy of `base` with its own name, topic, table and dead-letter topic, and wait
    until it RUNS; returns the registered config. `overrides` (Connect keys) win."""
    suffix = uuid.uuid4().hex[:10]
    _, config = register.load(base, settings)
    config.update({
        "name": f"{prefix}-sink-{suffix}",
        "topics": f"{prefix}-orders-{suffix}",
        "collection.name.format": f"{prefix}_orders_{suffix}",
        "errors.deadletterqueue.topic.name": f"{prefix}-orders-{suffix}-dlq",
    })
    config.update(overrides or {})
    register.register(config, settings, wait=True, timeout=120)
    return config


def remove_private_sink(settings: Settings, config: dict) -> None:
    """Delete the connector, its table, its topics and its consumer group."""
    register.delete(settings.connect_url, config["name"])
    engine = sa.create_engine(settings.mariadb_url(settings.orders_db))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS `{config['collection.name.format']}`"))
    engine.dispose()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [config["topics"], config["errors.deadletterqueue.topic.name"]]
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # never created (no bad record): nothing to clean
            pass
    group = f"connect-{config['name']}"
    try:
        admin.delete_consumer_groups([group])[group].result(timeout=30)
    except Exception:  # the group may still be settling after the delete; harmless
        pass
