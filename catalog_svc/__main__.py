from catalog_svc.server import serve

serve()
