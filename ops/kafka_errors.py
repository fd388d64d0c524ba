"""What an operator tool says when Kafka refuses it: librdkafka's error, then what to set.

librdkafka's own words name a code (TOPIC_AUTHORIZATION_FAILED) or a transport failure, not the
settings behind it; an operator who ran a tool as the wrong principal, or plaintext against the
cluster's SASL_SSL listeners, is told which variable to change.
"""

from confluent_kafka import KafkaError, KafkaException

from ordersync.config import Settings

REFUSED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
           KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
UNREACHED = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._SSL,
             KafkaError._RESOLVE}
AS_ADMIN = "run it as the admin: KAFKA_USER=admin with SECRETS_FILE, or `make <tool> CLUSTER=1` on the cluster"


def explain(error: KafkaException, settings: Settings) -> str:
    """`error` as librdkafka gave it, followed by the settings that decide it."""
    kafka_error = error.args[0] if error.args and isinstance(error.args[0], KafkaError) else None
    said = kafka_error.str() if kafka_error is not None else str(error)
    code = kafka_error.code() if kafka_error is not None else None
    who = f"KAFKA_USER={settings.kafka_user}" if settings.kafka_user else "an anonymous client"
    if kafka_error is not None and code in REFUSED:
        return f"{kafka_error.name()}: Kafka does not let {who} do this ({said}); {AS_ADMIN}"
    if code == KafkaError._AUTHENTICATION:
        return (f"the brokers refused the login of {who} ({said}): check its password, kafka.{settings.kafka_user} "
                f"in SECRETS_FILE={settings.secrets_file or '(unset)'}")
    if code in UNREACHED:
        return (f"no broker answered at {settings.kafka_bootstrap} over {settings.kafka_security_protocol} ({said}): "
                "check KAFKA_BOOTSTRAP, and KAFKA_SECURITY_PROTOCOL: the cluster listens on SASL_SSL only "
                "(with KAFKA_SSL_CA, KAFKA_USER and SECRETS_FILE; `make <tool> CLUSTER=1` sets them)")
    return said
