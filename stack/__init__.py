"""The local stack and its supervisor: MariaDB, Kafka, Connect and the services as plain processes."""
