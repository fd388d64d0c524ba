"""What every service process (Order, Catalog, gate) runs on: its gRPC server with health and
reflection, its Prometheus exporter, and what its database's errors mean."""
