from ordersync.gate.server import serve

serve()
