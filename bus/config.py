"""Settings of the bus adapter, from environment variables with local-stack defaults."""

import os

# KAFKA_BOOTSTRAP is the name connect/settings.py uses for the same broker.
BOOTSTRAP_SERVERS = (os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                     or os.environ.get("KAFKA_BOOTSTRAP") or "127.0.0.1:9092")
ORDERS_TOPIC = os.environ.get("ORDERS_TOPIC", "orders")
# Seconds publish() waits for the broker's acknowledgement.
PUBLISH_TIMEOUT = float(os.environ.get("BUS_PUBLISH_TIMEOUT", "10"))
# Handler attempts per message before it goes to the dead-letter topic.
MAX_ATTEMPTS = int(os.environ.get("BUS_MAX_ATTEMPTS", "3"))
# Seconds before the first retry of a failed handler; doubled for each later one.
RETRY_BACKOFF = float(os.environ.get("BUS_RETRY_BACKOFF", "0.2"))
