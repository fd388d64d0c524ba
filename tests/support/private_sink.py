"""A private copy of a sink connector: own name, topic, table and dead-letter topic.

Tests and benchmarks use one so that their orders never reach the shared `orders`
topic, and so never the stock or the orders table that `make run` shows.
"""
import json
import uuid
from pathlib import Path

import sqlalchemy as sa

from connect import register, settings


def create(overrides: dict | None = None, base: str | Path = register.DEFAULT_CONFIG,
           prefix: str = "test") -> dict:
    """Register a copy of `base` and wait until it RUNS; returns the registered config.

    `overrides` (Connect config keys) win over the unique names given here.
    """
    suffix = uuid.uuid4().hex[:10]
    config = dict(json.loads(Path(base).read_text())["config"])
    config.update({
        "name": f"{prefix}-sink-{suffix}",
        "topics": f"{prefix}-orders-{suffix}",
        "collection.name.format": f"{prefix}_orders_{suffix}",
        "errors.deadletterqueue.topic.name": f"{prefix}-orders-{suffix}-dlq",
    })
    config.update(overrides or {})
    register.register(config, wait=True, timeout=120)
    return config


def remove(config: dict) -> None:
    """Delete the connector, its table (in orders_db), its topics and its consumer group."""
    from confluent_kafka.admin import AdminClient

    register.delete(config["name"])
    engine = sa.create_engine(settings.sqlalchemy_url("orders_db"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS `{config['collection.name.format']}`"))
    engine.dispose()
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
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
