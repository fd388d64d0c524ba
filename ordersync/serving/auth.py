"""Who is calling: bearer tokens (JWT, EdDSA over Ed25519), minted and verified, and the one server
interceptor that lets no call of a service's own methods through without a valid one.

A client sends `authorization: Bearer <token>` in its metadata. The token is signed with the
stack's private key (stack/keys.py makes the pair; `ordersync-token` and the stack mint with it)
and verified with the public key only, which is all a service gets. Claims: `sub` (a user id, or a
service's name), `aud` ("ordersync", checked), `exp` (checked) and `iat`, and `role`:

- `user`: acts as `sub`, for their own orders only;
- `operator`: reads any user's orders, places none;
- `service`: another ordersync service (the Order service asking the Catalog).

What each role may do is the services' rule (order_svc/access.py); here only whether the token is
valid, and who it names. Health and reflection stay public (PUBLIC_SERVICES): a load balancer, the
stack's health checks and grpcurl's `list` need no token, and neither tells anything of the data.
"""

import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

AUDIENCE = "ordersync"
ALGORITHM = "EdDSA"
USER, OPERATOR, SERVICE = "user", "operator", "service"
ROLES = (USER, OPERATOR, SERVICE)
# Seconds of clock difference allowed between the minting and the verifying machine (exp, iat).
LEEWAY_S = 30
METADATA_KEY = "authorization"
PUBLIC_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                             "grpc.reflection.v1.ServerReflection"})
_REQUIRED = ["sub", "aud", "exp", "iat"]


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a valid token names: `subject` (a user id or a service's name) in one of ROLES."""
    subject: str
    role: str

    def __str__(self) -> str:
        return f"{self.role} {self.subject}"


class Unauthenticated(Exception):
    """A call without a usable token; the message says which (no token, not Bearer, a bad signature,
    expired, another audience, no subject, an unknown role) and what to do."""


def mint(key: Ed25519PrivateKey, subject: str, role: str, ttl_s: float, now: float | None = None) -> str:
    """A token for `subject` in `role`, valid `ttl_s` seconds from `now` (default: the clock)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "aud": AUDIENCE, "iat": issued, "exp": issued + int(ttl_s), "role": role}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


class Verifier:
    """Checks tokens against the stack's public key.

    A token verified once is remembered (at most `remember` of them, by its whole text, signature
    included) until it expires: a client sends the same token with every call for its lifetime, and
    checking an Ed25519 signature costs about 0.1 ms of CPU per call, about a tenth of what the Order
    service spends on an order. A token that fails is never remembered."""

    def __init__(self, public_key: Ed25519PublicKey, clock: Callable[[], float] = time.time, remember: int = 10_000):
        self._key, self._clock, self._remember = public_key, clock, remember
        self._verified: OrderedDict[str, tuple[Identity, int]] = OrderedDict()
        self._lock = threading.Lock()

    def identify(self, metadata) -> Identity:
        """The caller named by the `authorization` entry of `metadata` ((key, value) pairs), or Unauthenticated."""
        values = [value for key, value in metadata or () if key == METADATA_KEY]
        if not values:
            raise Unauthenticated(f"no token: send the metadata '{METADATA_KEY}: Bearer <token>' "
                                  "(ordersync-token --user NAME issues one)")
        if len(values) > 1:
            raise Unauthenticated(f"{len(values)} '{METADATA_KEY}' metadata entries: send one")
        scheme, _, token = str(values[0]).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(f"the '{METADATA_KEY}' metadata is not a Bearer token: send 'Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Identity:
        """The identity of a valid `token`, or Unauthenticated saying what is wrong with it."""
        now = self._clock()
        with self._lock:
            known = self._verified.get(token)
        if known is not None:
            identity, expires = known
            if now <= expires + LEEWAY_S:
                return identity
            self._forget(token)
            raise Unauthenticated(_expired(expires))
        claims = self._decode(token, now)
        identity = Identity(_subject(claims), _role(claims))
        with self._lock:
            self._verified[token] = (identity, claims["exp"])
            while len(self._verified) > self._remember:
                self._verified.popitem(last=False)
        return identity

    def _forget(self, token: str) -> None:
        with self._lock:
            self._verified.pop(token, None)

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        # The times are checked here, against this verifier's clock; PyJWT checks the signature,
        # the audience and that every claim is there.
        options: Any = {"require": _REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False,
                        "verify_sub": False}  # the subject too: _subject()
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE, options=options)
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify: it was not signed by this stack's key "
                                  "(or it was altered); get a new one") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the token is not for {AUDIENCE} (its audience, aud, is another): "
                                  "get one of this stack") from None
        except jwt.MissingRequiredClaimError as err:
            raise Unauthenticated(f"the token has no '{err.claim}' claim: a token of ordersync has "
                                  f"{', '.join(_REQUIRED)} and role") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(f"the token is not signed with {ALGORITHM}: get one of this stack") from None
        except jwt.InvalidTokenError as err:
            raise Unauthenticated(f"the token is not a JWT ({err})") from None
        expires, issued = claims["exp"], claims["iat"]
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (expires, issued)):
            raise Unauthenticated("the token's exp and iat are not times (seconds since 1970)")
        if now > expires + LEEWAY_S:
            raise Unauthenticated(_expired(expires))
        if issued > now + LEEWAY_S:
            raise Unauthenticated(f"the token was issued in the future (iat {int(issued)}, now {int(now)}): "
                                  "the clocks of its issuer and of this service differ")
        return claims


def _expired(expires: float) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
    return f"the token expired at {when}: get a new one"


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("the token has no subject (sub, a string): it names no user or service")
    return subject


def _role(claims: dict[str, Any]) -> str:
    role = claims.get("role")
    if role not in ROLES:
        raise Unauthenticated(f"the token's role {role!r} is not one of {', '.join(ROLES)}")
    return role


# ---------------------------------------------------------------- the server's side

class _Authenticated:
    """The servicer context of a call whose token was valid: the context, and its `caller`."""

    def __init__(self, context, caller: Identity):
        self._context = context
        self.caller = caller

    def __getattr__(self, name):
        return getattr(self._context, name)


def caller(context) -> Identity:
    """Who makes the call served with `context`, as the interceptor found it."""
    found = getattr(context, "caller", None)
    if isinstance(found, Identity):
        return found
    # A servicer served without RequireToken: refuse, never assume.
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "no caller identity: this server checks no tokens")
    raise AssertionError("context.abort() returned")


_KINDS = {(False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
          (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
          (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
          (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler)}


class RequireToken(grpc.ServerInterceptor):
    """Every method but those of PUBLIC_SERVICES answers UNAUTHENTICATED without a valid token; the
    servicer finds the caller with caller(context).

    The token is checked inside the call (on the server's worker threads), not in intercept_service,
    which grpcio runs on the one thread that accepts every call."""

    def __init__(self, verifier: Verifier):
        self._verifier = verifier
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.lstrip("/").partition("/")[0] in PUBLIC_SERVICES:
            return continuation(handler_call_details)
        wrapped = self._wrapped.get(method)  # a server's handler of a method never changes
        if wrapped is None:
            handler = continuation(handler_call_details)
            if handler is None:
                return None  # no such method: UNIMPLEMENTED, as without the interceptor
            wrapped = self._wrapped[method] = self._wrap(handler)
        return wrapped

    def _wrap(self, handler) -> grpc.RpcMethodHandler:
        attribute, make = _KINDS[(handler.request_streaming, handler.response_streaming)]
        behavior = getattr(handler, attribute)
        verifier = self._verifier

        def checked(request, context):
            try:
                identity = verifier.identify(context.invocation_metadata())
            except Unauthenticated as refused:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, str(refused))
            return behavior(request, _Authenticated(context, identity))
        return make(checked, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
