"""Tokens for the tests, signed with a private stack's own key (its AUTH_PRIVATE_KEY).

The tests call the services for many user ids. `Tokens.per_request()` gives a channel the call
credentials that act for whoever a request names: a token of the request's own `user_id`, and an
operator's where it names none (GetOrder, the Catalog's calls, an empty user_id). Tests of the
refusals themselves open channels with a token of their choosing (`channel(address, token)`),
or none.

    tokens = Tokens(settings)
    stub = OrderServiceStub(tokens.channel(address))            # per request
    stub = OrderServiceStub(tokens.channel(address, tokens.user("alice")))
"""

import threading
import time

import grpc

from ordersync.config import Settings, private_key
from ordersync.serving import auth
from ordersync.serving.channels import Bearer, open_channel

OPERATOR = "test-operator"
TTL_S = 3600


class Tokens:
    def __init__(self, settings: Settings):
        self._key = private_key(settings.auth_private_key)
        self._tls = settings.grpc_tls
        self._minted: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def mint(self, subject: str, role: str = auth.USER, ttl_s: float = TTL_S, now: float | None = None) -> str:
        """A new token (`now`: when it was issued, for an expired one)."""
        return auth.mint(self._key, subject, role, ttl_s, now)

    def user(self, user_id: str) -> str:
        return self._kept(user_id, auth.USER)

    def operator(self, name: str = OPERATOR) -> str:
        return self._kept(name, auth.OPERATOR)

    def _kept(self, subject: str, role: str) -> str:
        """One token per subject and role, minted again when half its life is gone."""
        now = time.time()
        with self._lock:
            minted = self._minted.get((subject, role))
            if minted is None or now - minted[0] > TTL_S / 2:
                minted = self._minted[(subject, role)] = (now, self.mint(subject, role, now=now))
        return minted[1]

    def for_request(self, request) -> str:
        """A token of the request's own user_id, or an operator's when it names none."""
        user_id = getattr(request, "user_id", "")
        return self.user(user_id) if user_id else self.operator()

    def per_request(self) -> Bearer:
        return Bearer(self.for_request)

    def channel(self, address: str, token: str | None = None) -> grpc.Channel:
        """A channel whose calls carry `token`, or act for whoever each request names (no token given)."""
        return open_channel(address, self.per_request() if token is None else Bearer.fixed(token), tls=self._tls)
