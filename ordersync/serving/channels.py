"""The one function that opens every gRPC channel of the project (the Order service's to the
Catalog, the demo's, the stack's health checks, the tests' and the benches'), with the caller's
token when it has one. Plaintext on loopback today; TLS is added here, once, for all of them.

    channel = open_channel("127.0.0.1:50051", bearer=Bearer.fixed(token))
"""

from typing import Callable

import grpc

from ordersync.serving.auth import METADATA_KEY


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


def open_channel(address: str, bearer: Bearer | None = None, options=(),
                 connect: Callable[..., grpc.Channel] | None = None) -> grpc.Channel:
    """A channel to `address` (host:port, or a list for a client-side balancer) with `options`;
    every call carries `bearer`'s token. `connect(address, options=...)` makes the bare channel
    instead of grpc.insecure_channel (a test sees its options)."""
    channel = (connect or grpc.insecure_channel)(address, options=tuple(options))
    return channel if bearer is None else grpc.intercept_channel(channel, bearer)
