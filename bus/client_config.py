"""librdkafka settings shared by our producers and consumers, chosen so that they recover fast.

Each can still be overridden through a client's extra_config.
"""

# Between attempts to reach a broker that went away librdkafka waits up to
# reconnect.backoff.max.ms (default 10 s); with 1 s a returning broker is used
# again about a second after it is back.
RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}

# A consumer that died is noticed after session.timeout.ms (default 45 s): with
# 10 s its partitions move to another member (or back to it, restarted) quickly.
# Heartbeats must come several times per session timeout.
CONSUMER_GROUP = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}
