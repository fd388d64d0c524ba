"""gRPC over TLS: a server's credentials and a channel's, from the files GrpcTls names
(GRPC_TLS_CA, GRPC_TLS_CERT, GRPC_TLS_KEY; the stack makes them, stack/tls.py).

A server with TLS listens on a TLS port only: a plaintext client gets no answer but a failed
handshake. A channel trusts the one CA it is given, not the system's, and checks that the
server's certificate names the host it dialled. Callers are identified by their tokens
(ordersync.serving.auth), not by client certificates.
"""

from pathlib import Path

import grpc

from ordersync.config import GrpcTls, SettingError


def _read(variable: str, path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SettingError(variable, path, f"a readable PEM file of {what} ({err.strerror}; the stack makes it: "
                                           "`make cluster-up`)") from None
    if b"-----BEGIN " not in data:
        raise SettingError(variable, path, f"a PEM file of {what}")
    return data


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials | None:
    """A server's TLS credentials (its key and certificate chain), None for plaintext."""
    if not tls.on:
        return None
    key = _read("GRPC_TLS_KEY", tls.key, "the server's private key")
    chain = _read("GRPC_TLS_CERT", tls.cert, "the server's certificate chain")
    return grpc.ssl_server_credentials([(key, chain)])


def channel_credentials(tls: GrpcTls) -> grpc.ChannelCredentials | None:
    """A client's TLS credentials: trust GRPC_TLS_CA only; None for plaintext."""
    if not tls.on:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_read("GRPC_TLS_CA", tls.ca, "a CA certificate"))
