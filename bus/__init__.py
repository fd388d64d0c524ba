"""ordersync bus adapter: protobuf <-> Kafka Connect JSON envelopes over Kafka."""
