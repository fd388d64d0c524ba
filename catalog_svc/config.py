"""Catalog service settings: the shared ones (ordersync.config) that it uses."""

import os
from dataclasses import dataclass

from ordersync.config import SECONDS, ServiceSettings, Settings, listen_host, setting


@dataclass(frozen=True)
class CatalogSettings(ServiceSettings):
    catalog_db_url: str
    accepted_topic: str  # the order events the gate accepted (never the raw ORDERS_TOPIC)
    consumer_group: str
    consumer_config: dict  # librdkafka settings of its consumer over kafka_client: group membership
    auth_public_key: str  # the path of the key that callers' tokens are checked with (ordersync.config.public_key)
    applied_trim_every_s: float  # how often applied_orders is trimmed (catalog_svc/retention.py)


def load(env=None) -> CatalogSettings:
    """The Catalog's settings, each checked (SettingError names the first that is not usable)."""
    env = os.environ if env is None else env
    shared = Settings.from_env(env)
    return CatalogSettings(
        listen=f"{listen_host(env)}:{shared.catalog_port}",
        metrics_port=shared.metrics_port(shared.catalog_port, env),
        kafka_client=shared.kafka_client(),
        grpc_tls=shared.grpc_tls,
        traces=shared.trace_export,
        catalog_db_url=shared.mariadb_url(shared.catalog_db),
        accepted_topic=shared.accepted_topic,
        consumer_group=shared.catalog_group,
        # read_committed (librdkafka's default, said here because it matters): the gate writes
        # the accepted topic in transactions, and an aborted batch must never lower stock.
        consumer_config={"isolation.level": "read_committed", **_membership(env.get("CATALOG_INSTANCE"))},
        auth_public_key=shared.auth_public_key,
        applied_trim_every_s=setting(env, "APPLIED_ORDERS_TRIM_EVERY_S", SECONDS, 300.0),
    )


def _membership(instance: str | None) -> dict:
    """Several Catalogs share the group (the supervisor names each, CATALOG_INSTANCE): a rebalance
    moves only the partitions that change owner (cooperative), and a killed one's partitions move
    after session.timeout.ms: 6 s (the broker's minimum) keeps that under 10 s.

    No static membership (group.instance.id): it would spare the rebalance when an instance comes
    back, but when the group coordinator's broker dies, librdkafka (2.16) times the session out,
    rejoins as a new member of the same instance id, and its next commit is FENCED_INSTANCE_ID,
    a fatal error: seen in tests/cluster, both Catalogs stopped applying orders."""
    if not instance:
        return {}
    return {"partition.assignment.strategy": "cooperative-sticky", "client.id": instance,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 1500}
