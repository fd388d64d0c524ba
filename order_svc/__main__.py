from order_svc.server import serve

serve()
