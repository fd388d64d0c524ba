from gate.server import serve

serve()
