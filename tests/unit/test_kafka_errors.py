"""What the operator tools say when Kafka refuses them (ops.kafka_errors): librdkafka's error and
the setting to change."""

from confluent_kafka import KafkaError, KafkaException

from ops.kafka_errors import explain
from ordersync.config import Settings

SECURED = Settings(kafka_security_protocol="SASL_SSL", kafka_user="order", secrets_file="/etc/ordersync/credentials")


def test_an_acl_refusal_names_the_principal_and_the_admin():
    said = explain(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), SECURED)
    assert said.startswith("TOPIC_AUTHORIZATION_FAILED: Kafka does not let KAFKA_USER=order")
    assert "KAFKA_USER=admin" in said and "CLUSTER=1" in said


def test_no_broker_answering_names_the_protocol_to_check():
    said = explain(KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata")), Settings())
    assert said.startswith("no broker answered at 127.0.0.1:9092 over PLAINTEXT (Failed to get metadata)")
    assert "KAFKA_SECURITY_PROTOCOL" in said and "SASL_SSL" in said


def test_a_refused_login_names_the_password_s_key():
    said = explain(KafkaException(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication failed")), SECURED)
    assert "kafka.order in SECRETS_FILE=/etc/ordersync/credentials" in said


def test_anything_else_is_librdkafka_s_own_words():
    assert explain(KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "no such topic")), Settings()) == \
        "no such topic"
