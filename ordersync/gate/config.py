"""Gate settings: the shared ones (ordersync.config) that it uses, and this instance's own."""

import os
from dataclasses import dataclass

from ordersync.config import ServiceSettings, Settings, listen_host


@dataclass(frozen=True)
class GateSettings(ServiceSettings):  # listen: its gRPC health service only
    instance: str
    orders_topic: str
    accepted_topic: str
    rejected_topic: str
    group: str
    transactional_id: str
    gate_db_url: str
    catalog_db: str


def load(env=None) -> GateSettings:
    """This gate's settings, each checked (SettingError names the first that is not usable)."""
    env = os.environ if env is None else env
    shared = Settings.from_env(env)
    # GATE_PORT is this instance's port (the supervisor sets it: GATE_PORT and the next ones).
    port = shared.gate_port
    instance = env.get("GATE_INSTANCE") or "gate-1"
    return GateSettings(
        listen=f"{listen_host(env)}:{port}",
        metrics_port=shared.metrics_port(port, env),
        instance=instance,
        kafka_client=shared.kafka_client(),
        grpc_tls=shared.grpc_tls,
        traces=shared.trace_export,
        orders_topic=shared.orders_topic,
        accepted_topic=shared.accepted_topic,
        rejected_topic=shared.rejected_topic,
        group=shared.gate_group,
        # One per instance, the same across its restarts: a restarted gate fences its zombie and
        # aborts the transaction the killed one left open.
        transactional_id=f"{shared.gate_group}-{instance}",
        gate_db_url=shared.mariadb_url(shared.gate_db),
        catalog_db=shared.catalog_db,
    )
