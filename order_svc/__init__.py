"""Order service: places orders by publishing events; reads them from the shared orders table."""
