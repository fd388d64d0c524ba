"""The `make run` demo: start the services and place a few orders through gRPC."""
