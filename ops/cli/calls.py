"""The calls of one command: one token, one deadline for the whole command, retries of what may
pass, and the exit code of what did not."""

import time
from collections.abc import Callable, Sequence

import grpc

from ordersync.config import GrpcTls
from ordersync.serving.channels import Bearer, open_channel

# What may pass by itself (an instance down, Kafka slow): tried again. Anything else is the
# service's answer, and asking again would get the same one.
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
ATTEMPTS = 4
FIRST_PAUSE_S = 0.2  # doubled after each attempt: 0.2, 0.4, 0.8
EXIT_REFUSED, EXIT_UNREACHED = 1, 3  # (ops.cli's docstring)


def exit_code(code: grpc.StatusCode) -> int:
    """3 for a service that could not be reached in time, 1 for any answer that refused."""
    return EXIT_UNREACHED if code in RETRIED else EXIT_REFUSED


class CallFailed(Exception):
    """A call that ended with `code`; str(): "CODE: details" on one line."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(code, details)
        self.code, self.details = code, " ".join(details.split())

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"


class Caller:
    """Calls `stub`'s methods on `addresses` (host:port each) with `token`, all within `deadline_s`
    from now. After UNAVAILABLE the next address is tried (and kept for the next calls)."""

    def __init__(self, stub: Callable[[grpc.Channel], object], addresses: Sequence[str], token: str, tls: GrpcTls,
                 deadline_s: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 traced: Callable[[grpc.Channel], grpc.Channel] | None = None):
        """`traced`: what makes its channels traced (ordersync.serving.tracing.traced_channel)."""
        self._make_stub, self._addresses, self._token, self._tls = stub, list(addresses), token, tls
        self._traced = traced
        self._clock, self._sleep = clock, sleep
        self._deadline = clock() + deadline_s
        self._at = 0  # the index of the address in use
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, object] = {}

    def call(self, method: str, request):
        """The reply of `method`(request), or CallFailed once the attempts or the deadline are spent.
        The same `request` goes with every attempt (a CreateOrder keeps its request_id)."""
        for attempt in range(ATTEMPTS):
            # What is left, shared among the attempts left: a hung instance cannot take it all.
            timeout = max(self._deadline - self._clock(), 0.0) / (ATTEMPTS - attempt)
            try:
                return getattr(self._stub(), method)(request, timeout=timeout)
            except grpc.RpcError as err:
                failed = CallFailed(err.code(), err.details() or "")
            pause = FIRST_PAUSE_S * 2 ** attempt
            last = attempt == ATTEMPTS - 1 or self._clock() + pause >= self._deadline
            if failed.code not in RETRIED or last:
                raise failed
            if failed.code == grpc.StatusCode.UNAVAILABLE:
                self._at = (self._at + 1) % len(self._addresses)
            self._sleep(pause)
        raise AssertionError("the last attempt raises")

    def _stub(self):
        address = self._addresses[self._at]
        if address not in self._stubs:
            self._channels[address] = open_channel(address, bearer=Bearer.fixed(self._token), tls=self._tls,
                                                   traced=self._traced)
            self._stubs[address] = self._make_stub(self._channels[address])
        return self._stubs[address]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
