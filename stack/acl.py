"""A secured cluster's Kafka principals and what each may do, applied through the Admin API.

The admin's SCRAM credential is bootstrapped when the brokers' storage is formatted
(stack/infra.py); once they are up, the admin creates the other principals'
credentials, the ACLs and the topics. Idempotent: a restarted stack applies it again.
"""

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from connect import register
from ordersync.config import Settings
from stack import accounts
from stack.infra import CONNECT_GROUP
from stack.process import StackError

SCRAM_ITERATIONS = 8192
LITERAL, PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
TOPIC, GROUP, TRANSACTIONAL_ID = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
READ, WRITE, DESCRIBE, ALL = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.ALL
DESCRIBE_CONFIGS = AclOperation.DESCRIBE_CONFIGS


def products_source(settings: Settings) -> list[tuple]:
    """What the products source (connect/products-source.json), running in the workers as their
    principal, needs beyond the workers' own grants; the names are read from its configuration.
    The stack creates both its topics as the admin (Topology.products_source_up), so it may
    create none."""
    name, config = register.load(register.PRODUCTS_SOURCE, settings)
    topic, history = register.PRODUCTS_TOPIC, config["schema.history.internal.kafka.topic"]
    # Debezium's default group of the schema history's consumer (it subscribes, commits nothing):
    # schema.history.internal.name, which is <topic.prefix>-schemahistory.
    history_group = config["topic.prefix"] + "-schemahistory"
    return [
        (TOPIC, topic, LITERAL, WRITE),
        (TOPIC, topic, LITERAL, DESCRIBE),              # the worker looks it up before its first write
        (TOPIC, history, LITERAL, READ),                # the DDL it saw, read back at each start
        (TOPIC, history, LITERAL, WRITE),
        (TOPIC, history, LITERAL, DESCRIBE),
        (TOPIC, history, LITERAL, DESCRIBE_CONFIGS),    # Debezium checks its cleanup.policy is delete
        (GROUP, history_group, LITERAL, READ),
        # Exactly-once sources (KIP-618): each task writes its records and offsets (the workers'
        # offsets topic, already theirs) in transactions of id <group.id>-<connector>-<task>;
        # the leader fences the tasks' older producers through the same ids. Transactional
        # producers need no IdempotentWrite on the cluster (brokers 2.8+).
        (TRANSACTIONAL_ID, f"{CONNECT_GROUP}-{name}-", PREFIXED, WRITE),
        (TRANSACTIONAL_ID, f"{CONNECT_GROUP}-{name}-", PREFIXED, DESCRIBE),
    ]


def grants(settings: Settings) -> dict[str, list[tuple]]:
    """Kafka user -> (resource type, name, pattern, operation) it is allowed; nothing else is."""
    connect_prefix = CONNECT_GROUP + "-"  # the worker's internal topics: ordersync-connect-configs, ...
    return {
        accounts.ORDER.kafka_user: [
            (TOPIC, settings.orders_topic, LITERAL, WRITE),
            (TOPIC, settings.orders_topic, LITERAL, DESCRIBE),
            # Its product view reads catalog.products with assign(): no group, nothing committed.
            (TOPIC, register.PRODUCTS_TOPIC, LITERAL, READ),
            (TOPIC, register.PRODUCTS_TOPIC, LITERAL, DESCRIBE),
        ],
        accounts.GATE.kafka_user: [
            (TOPIC, settings.orders_topic, LITERAL, READ),
            (GROUP, settings.gate_group, LITERAL, READ),
            (TOPIC, settings.accepted_topic, LITERAL, WRITE),
            (TOPIC, settings.accepted_topic, LITERAL, DESCRIBE),
            (TOPIC, settings.rejected_topic, LITERAL, WRITE),
            (TOPIC, settings.rejected_topic, LITERAL, DESCRIBE),
            # Its transactional ids are <group>-<instance> (gate.config).
            (TRANSACTIONAL_ID, settings.gate_group + "-", PREFIXED, WRITE),
            (TRANSACTIONAL_ID, settings.gate_group + "-", PREFIXED, DESCRIBE),
        ],
        accounts.CATALOG.kafka_user: [
            (TOPIC, settings.accepted_topic, LITERAL, READ),
            (GROUP, settings.catalog_group, LITERAL, READ),
            (TOPIC, settings.catalog_dlq_topic, LITERAL, WRITE),
            (TOPIC, settings.catalog_dlq_topic, LITERAL, DESCRIBE),
        ],
        accounts.SINK.kafka_user: [
            (GROUP, CONNECT_GROUP, LITERAL, READ),            # the workers' group
            (TOPIC, connect_prefix, PREFIXED, ALL),           # their config, offset and status topics
            (GROUP, "connect-", PREFIXED, READ),              # each sink connector's consumer group
            (TOPIC, settings.accepted_topic, LITERAL, READ),
            (TOPIC, settings.sink_dlq_topic, LITERAL, WRITE),
            (TOPIC, settings.sink_dlq_topic, LITERAL, DESCRIBE),
            # With exactly-once sources the leader writes the config topic in transactions of this
            # id (Kafka's DistributedConfig: connect-cluster-<group.id>).
            (TRANSACTIONAL_ID, f"connect-cluster-{CONNECT_GROUP}", LITERAL, WRITE),
            (TRANSACTIONAL_ID, f"connect-cluster-{CONNECT_GROUP}", LITERAL, DESCRIBE),
            # The watchdog (this principal too) exports the under-replicated partitions of every topic
            # (connect/exporter.py): their metadata only, no record.
            (TOPIC, "*", LITERAL, DESCRIBE),
            *products_source(settings),
        ],
    }


def provision(settings: Settings, timeout: float = 30) -> None:
    """SCRAM credentials of the services' principals and their ACLs."""
    admin = AdminClient(settings.kafka_client())
    users = list(grants(settings))
    upserts: list[UserScramCredentialAlteration] = [UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism[settings.kafka_sasl_mechanism.replace("-", "_")],
                                  SCRAM_ITERATIONS),
        settings.secret(f"kafka.{user}").encode()) for user in users]
    _wait("SCRAM credentials", admin.alter_user_scram_credentials(upserts), timeout)
    bindings = [AclBinding(kind, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)
                for user, allowed in grants(settings).items() for kind, name, pattern, op in allowed]
    _wait("ACLs", dict(enumerate(admin.create_acls(bindings, request_timeout=timeout).values())), timeout)


def _wait(what: str, futures: dict, timeout: float) -> None:
    for key, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as err:
            raise StackError(f"could not apply the {what} ({key}): {err}") from err
