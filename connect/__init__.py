"""Kafka Connect: the sink connector as data (orders-sink.json), its registration (register), the
worker's REST API (rest) and the watchdog that restarts a failed task (watchdog)."""
