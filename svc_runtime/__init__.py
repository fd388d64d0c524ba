"""What both gRPC services share: server start-up with health and reflection, and shutdown on signals."""
