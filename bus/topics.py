"""Creating the topics a pipeline needs before anything runs (a secured cluster creates none by itself)."""

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


class TopicError(Exception):
    """A topic could not be created."""


def create_missing(admin_config: dict, wanted: dict[str, int], timeout: float = 30,
                   configs: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Create the topics of {name: partitions} that do not exist yet, with the brokers' default
    replication factor and min.insync.replicas (1 on one broker; 3 and 2 in a cluster) and the
    topic configs of `configs` ({name: {"cleanup.policy": "compact"}}); returns the names created.
    `admin_config`: an AdminClient's configuration (bootstrap, credentials). A topic that exists
    is left as it is, even with other configs."""
    admin = AdminClient(admin_config)
    existing = admin.list_topics(timeout=timeout).topics
    missing = [NewTopic(t, num_partitions=n, replication_factor=-1, config=(configs or {}).get(t, {}))
               for t, n in wanted.items() if t not in existing]
    if not missing:
        return []
    for topic, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"could not create topic {topic}: {err}") from err
    return [t.topic for t in missing]
