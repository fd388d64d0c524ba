"""The one function that opens every gRPC channel of the project (the Order service's to the
Catalog, the demo's, the stack's health checks, the tests' and the benches'), with the caller's
token when it has one, over TLS when the settings say so (GRPC_TLS_CA: ordersync.serving.tls).

    channel = open_channel("127.0.0.1:50051", bearer=Bearer.fixed(token), tls=settings.grpc_tls)
"""

from typing import Callable

import grpc

from ordersync.config import PLAINTEXT, GrpcTls
from ordersync.serving.auth import METADATA_KEY
from ordersync.serving.tls import channel_credentials


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
             grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Call credentials: `authorization: Bearer <token>` on every call, the token given by
    `token_for(request)` (None: the call goes without one). A call that sets its own
    `authorization` metadata keeps it."""

    def __init__(self, token_for: Callable[[object], str | None]):
        self._token_for = token_for

    @classmethod
    def fixed(cls, token: str) -> "Bearer":
        """One token for every call (a user's, or a service's own)."""
        return cls(lambda _request: token)

    def _with_token(self, details, request):
        metadata = list(details.metadata or ())
        if any(key == METADATA_KEY for key, _ in metadata):
            return details
        token = self._token_for(request)
        if token is None:
            return details
        return _Details(details, [*metadata, (METADATA_KEY, f"Bearer {token}")])

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details, request), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details, request), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details, None), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details, None), request_iterator)


class _Details(grpc.ClientCallDetails):
    """The details of a call, with other metadata."""

    def __init__(self, details, metadata):
        self.method, self.timeout, self.metadata = details.method, details.timeout, metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


def _checked_name(address: str, options: tuple) -> tuple:
    """`options` with the name a server's certificate must carry. For one host:port gRPC checks
    that host; for a list (ipv4:h1:p1,h2:p2) it would check the whole list, which no certificate
    names: the first host is checked instead (the stack's servers share one certificate)."""
    if not address.startswith(("ipv4:", "ipv6:")) or any(name == "grpc.default_authority" for name, _ in options):
        return options
    first = address.split(":", 1)[1].split(",")[0]
    host = first.rsplit(":", 1)[0] if first.count(":") == 1 or first.startswith("[") else first
    return (*options, ("grpc.default_authority", host.strip("[]")))


def bare_channel(address: str, credentials: grpc.ChannelCredentials | None, options) -> grpc.Channel:
    """A channel over TLS with `credentials`, or plaintext without."""
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def open_channel(address: str, bearer: Bearer | None = None, options=(), connect: Callable[..., grpc.Channel] = bare_channel,
                 tls: GrpcTls = PLAINTEXT, traced: Callable[[grpc.Channel], grpc.Channel] | None = None) -> grpc.Channel:
    """A channel to `address` (host:port, or a list for a client-side balancer) with `options`,
    over TLS trusting `tls.ca` (PLAINTEXT: none); every call carries `bearer`'s token, and with
    `traced` (ordersync.serving.tracing.traced_channel) a span and its trace context.
    `connect(address, credentials, options)` makes the bare channel (a test sees its options)."""
    credentials = channel_credentials(tls)
    if credentials is not None:
        options = _checked_name(address, tuple(options))
    channel = connect(address, credentials, tuple(options))
    if bearer is not None:
        channel = grpc.intercept_channel(channel, bearer)
    return channel if traced is None else traced(channel)
