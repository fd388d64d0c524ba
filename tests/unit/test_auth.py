"""Bearer tokens and the server interceptor that requires them (ordersync.serving.auth), the call
credentials of the project's channels (ordersync.serving.channels), the key settings and the
stack's key pair: every refusal with its code and message, with fakes and no server."""

import os
import stat
import subprocess
import sys
from types import SimpleNamespace

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ordersync.config import ROOT, SettingError, Settings, private_key, public_key
from ordersync.serving import auth
from ordersync.serving.channels import Bearer
from ordersync.serving.grpc_server import build_server
from stack import keys
from tests.doubles import Aborted, ServicerContext

KEY = Ed25519PrivateKey.generate()
NOW = 1_800_000_000


def verifier(clock=lambda: NOW) -> auth.Verifier:
    return auth.Verifier(KEY.public_key(), clock=clock)


def signed(claims: dict, key=KEY, algorithm="EdDSA") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims(**changes) -> dict:
    values = {"sub": "alice", "aud": "ordersync", "iat": NOW, "exp": NOW + 60, "role": "user", **changes}
    return {name: value for name, value in values.items() if value is not None}


def altered(token: str, other: str) -> str:
    """`token` with the claims of `other` and its own signature."""
    head, _, signature = token.split(".")
    return ".".join([head, other.split(".")[1], signature])


def refusal(metadata) -> str:
    with pytest.raises(auth.Unauthenticated) as caught:
        verifier().identify(metadata)
    return str(caught.value)


def bearer(token: str):
    return [("authorization", f"Bearer {token}")]


def test_a_valid_token_names_its_subject_and_role():
    for role in auth.ROLES:
        token = auth.mint(KEY, "alice", role, 60, now=NOW)
        assert verifier().identify(bearer(token)) == auth.Identity("alice", role)
    decoded = jwt.decode(token, KEY.public_key(), algorithms=["EdDSA"], audience="ordersync",
                         options={"verify_exp": False, "verify_iat": False})
    assert decoded == {"sub": "alice", "aud": "ordersync", "iat": NOW, "exp": NOW + 60, "role": "service"}


def test_minting_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="not one of user, operator, service"):
        auth.mint(KEY, "alice", "admin", 60)


@pytest.mark.parametrize("metadata, words", [
    ((), "no token: send the metadata 'authorization: Bearer <token>'"),
    ([("x-other", "1")], "no token"),
    ([("authorization", "Basic YWxpY2U6cHc=")], "is not a Bearer token"),
    ([("authorization", "Bearer ")], "is not a Bearer token"),
    ([("authorization", "eyJhbGciOi.x.y")], "is not a Bearer token"),
    ([("authorization", "Bearer a.b.c"), ("authorization", "Bearer d.e.f")], "2 'authorization' metadata entries"),
])
def test_no_usable_authorization_metadata_is_refused(metadata, words):
    assert words in refusal(metadata)


def test_the_scheme_is_taken_in_any_case():
    assert verifier().identify([("authorization", "bearer " + signed(claims()))]).subject == "alice"


@pytest.mark.parametrize("token, words", [
    (signed(claims(), key=Ed25519PrivateKey.generate()), "signature does not verify: it was not signed by this stack's key"),
    (signed(claims(exp=NOW - 120)), "the token expired at 2027-01-15 07:58:00 UTC: get a new one"),
    (signed(claims(aud="someone-else")), "the token is not for ordersync"),
    (signed(claims(aud=None)), "the token has no 'aud' claim"),
    (signed(claims(exp=None)), "the token has no 'exp' claim"),
    (signed(claims(iat=None)), "the token has no 'iat' claim"),
    (signed(claims(sub=None)), "the token has no 'sub' claim"),
    (signed(claims(sub="")), "the token has no subject (sub, a string)"),
    (signed(claims(sub=7)), "the token has no subject (sub, a string)"),
    (signed(claims(role=None)), "the token's role None is not one of user, operator, service"),
    (signed(claims(role="admin")), "the token's role 'admin' is not one of user, operator, service"),
    (signed(claims(), key="a shared secret of 32 bytes, or so", algorithm="HS256"), "not signed with EdDSA"),
    (signed(claims(iat=NOW + 3600, exp=NOW + 7200)), "issued in the future (iat 1800003600, now 1800000000)"),
    (signed(claims(exp="tomorrow")), "exp and iat are not times"),
    ("not-a-jwt", "the token is not a JWT"),
    (altered(signed(claims()), signed(claims(sub="mallory"))), "signature does not verify"),
])
def test_each_bad_token_is_refused_with_its_reason(token, words):
    assert words in refusal(bearer(token))


def test_clock_differences_within_the_leeway_are_allowed():
    assert verifier().verify(signed(claims(exp=NOW - auth.LEEWAY_S + 1))).subject == "alice"
    assert verifier().verify(signed(claims(iat=NOW + auth.LEEWAY_S - 1))).subject == "alice"


def test_a_remembered_token_still_expires():
    clock = [NOW]
    checker = verifier(clock=lambda: clock[0])
    token = signed(claims(exp=NOW + 60))
    assert checker.verify(token).subject == "alice"
    clock[0] = NOW + 60 + auth.LEEWAY_S + 1
    with pytest.raises(auth.Unauthenticated, match="expired"):
        checker.verify(token)


def test_a_token_that_failed_is_not_remembered_and_memory_is_bounded():
    checker = auth.Verifier(KEY.public_key(), clock=lambda: NOW, remember=2)
    forged = signed(claims(), key=Ed25519PrivateKey.generate())
    for _ in range(2):
        with pytest.raises(auth.Unauthenticated):
            checker.verify(forged)
    for user in ("a", "b", "c"):
        checker.verify(signed(claims(sub=user)))
    assert len(checker._verified) == 2


# ---------------------------------------------------------------- the interceptor

def served(method="/ordersync.order.v1.OrderService/CreateOrder", kind=grpc.unary_unary_rpc_method_handler):
    """A server's handler for `method` through RequireToken; what its servicer saw."""
    seen = []

    def behavior(request, context):
        seen.append((request, auth.caller(context)))
        return "answer"
    interceptor = auth.RequireToken(verifier())
    handler = interceptor.intercept_service(lambda details: kind(behavior), SimpleNamespace(method=method))
    return handler, seen


def test_the_interceptor_gives_the_servicer_the_caller():
    handler, seen = served()
    token = auth.mint(KEY, "alice", auth.USER, 60, now=NOW)
    assert handler.unary_unary("request", ServicerContext(caller=None, metadata=bearer(token))) == "answer"
    assert seen == [("request", auth.Identity("alice", "user"))]


@pytest.mark.parametrize("metadata, words", [
    ((), "no token"), ([("authorization", "Token x")], "not a Bearer token"),
    (bearer(signed(claims(), key=Ed25519PrivateKey.generate())), "signature does not verify"),
    (bearer(signed(claims(exp=NOW - 3600))), "expired"), (bearer(signed(claims(aud="x"))), "not for ordersync"),
    (bearer(signed(claims(sub=""))), "no subject"), (bearer(signed(claims(role="root"))), "role 'root'"),
])
def test_the_interceptor_answers_unauthenticated_and_never_calls_the_servicer(metadata, words):
    handler, seen = served()
    context = ServicerContext(caller=None, metadata=metadata)
    with pytest.raises(Aborted):
        handler.unary_unary("request", context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED and words in context.details
    assert seen == []


@pytest.mark.parametrize("kind", [grpc.unary_stream_rpc_method_handler, grpc.stream_unary_rpc_method_handler,
                                  grpc.stream_stream_rpc_method_handler])
def test_streaming_methods_need_a_token_too(kind):
    handler, seen = served(kind=kind)
    behavior = handler.unary_stream or handler.stream_unary or handler.stream_stream
    context = ServicerContext(caller=None)
    with pytest.raises(Aborted):
        behavior("request", context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED and seen == []


@pytest.mark.parametrize("method", ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"])
def test_health_and_reflection_are_public(method):
    original = grpc.unary_unary_rpc_method_handler(lambda request, context: "public")
    handler = auth.RequireToken(verifier()).intercept_service(lambda details: original,
                                                              SimpleNamespace(method=method))
    assert handler is original


def test_an_unknown_method_stays_unimplemented():
    interceptor = auth.RequireToken(verifier())
    assert interceptor.intercept_service(lambda details: None, SimpleNamespace(method="/x.Y/Z")) is None


def test_a_servicer_reached_without_the_interceptor_refuses():
    context = ServicerContext(caller=None)
    with pytest.raises(Aborted):
        auth.caller(context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_server_with_services_of_its_own_needs_a_verifier():
    with pytest.raises(ValueError, match="needs a token verifier"):
        build_server(lambda server: None, ["ordersync.order.v1.OrderService"], "127.0.0.1:0")


# ---------------------------------------------------------------- the client's side

def details(metadata=None):
    return SimpleNamespace(method="/m", timeout=1.0, metadata=metadata, credentials=None, wait_for_ready=None,
                           compression=None)


def test_bearer_adds_the_token_of_each_request():
    sent = []
    credentials = Bearer(lambda request: f"token-of-{request}")
    credentials.intercept_unary_unary(lambda d, request: sent.append(d.metadata), details([("x", "1")]), "alice")
    assert sent == [[("x", "1"), ("authorization", "Bearer token-of-alice")]]


def test_bearer_keeps_a_call_s_own_authorization_and_sends_none_when_it_has_none():
    sent = []
    Bearer.fixed("t").intercept_unary_unary(lambda d, r: sent.append(d.metadata),
                                            details([("authorization", "Bearer mine")]), None)
    Bearer(lambda request: None).intercept_unary_unary(lambda d, r: sent.append(d.metadata), details(), None)
    assert sent == [[("authorization", "Bearer mine")], None]


# ---------------------------------------------------------------- the keys

def test_the_stack_makes_one_key_pair_private_to_its_owner(tmp_path):
    s = Settings(stack_dir=tmp_path)
    assert s.auth_private_key == str(tmp_path / "secrets" / "auth" / "signing-key.pem")
    keys.ensure_key_pair(s)
    private, public = tmp_path / "secrets" / "auth" / "signing-key.pem", tmp_path / "secrets" / "auth" / "public-key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    first = private.read_bytes()
    keys.ensure_key_pair(s)  # made once
    assert private.read_bytes() == first
    public.unlink()  # written again from the private key
    keys.ensure_key_pair(s)
    token = auth.mint(private_key(s.auth_private_key), "alice", auth.USER, 60)
    assert auth.Verifier(public_key(s.auth_public_key)).verify(token).subject == "alice"


def test_a_missing_or_wrong_key_file_is_a_bad_setting(tmp_path):
    with pytest.raises(SettingError, match=r"^AUTH_PUBLIC_KEY='.*none.pem': expected a readable PEM file of an "
                                           r"Ed25519 public key \(No such file or directory; the stack makes it"):
        public_key(str(tmp_path / "none.pem"))
    s = Settings(stack_dir=tmp_path)
    keys.ensure_key_pair(s)
    with pytest.raises(SettingError, match="AUTH_PUBLIC_KEY=.*: expected a PEM file of an Ed25519 public key"):
        public_key(s.auth_private_key)  # the private one
    with pytest.raises(SettingError, match="AUTH_PRIVATE_KEY=.*: expected a PEM file of an Ed25519 private key"):
        private_key(s.auth_public_key)


# ---------------------------------------------------------------- ordersync-token

def token_command(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.token", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "STACK_DIR": str(tmp_path)})


def test_ordersync_token_prints_a_token_of_the_stack_s_key(tmp_path):
    s = Settings(stack_dir=tmp_path)
    keys.ensure_key_pair(s)
    made = token_command(tmp_path, "--user", "alice", "--role", "operator", "--ttl", "600")
    assert made.returncode == 0, made.stderr
    identity = auth.Verifier(public_key(s.auth_public_key)).verify(made.stdout.strip())
    assert identity == auth.Identity("alice", "operator") and made.stdout.count("\n") == 1


@pytest.mark.parametrize("args, words", [
    (["--user", "bad user"], "--user 'bad user' may only contain"), (["--user", "a", "--ttl", "0"], "from 1 to"),
    (["--user", "a", "--role", "root"], "invalid choice: 'root'"), ([], "--user"),
])
def test_ordersync_token_refuses_bad_arguments(tmp_path, args, words):
    keys.ensure_key_pair(Settings(stack_dir=tmp_path))
    made = token_command(tmp_path, *args)
    assert made.returncode == 2 and words in made.stderr and made.stdout == ""


def test_ordersync_token_without_the_stack_s_key_says_where_it_looked(tmp_path):
    made = token_command(tmp_path, "--user", "alice")
    assert made.returncode == 2 and made.stdout == ""
    assert made.stderr.startswith(f"bad setting: AUTH_PRIVATE_KEY='{tmp_path}/secrets/auth/signing-key.pem': "
                                  "expected a readable PEM file of an Ed25519 private key"), made.stderr


def test_make_token_wants_a_user_on_its_command_line():
    made = subprocess.run(["make", "--no-print-directory", "-s", "token"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "USER": "root"})
    assert made.returncode != 0 and "say whose token: make token USER=NAME" in made.stderr
