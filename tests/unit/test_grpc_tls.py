"""gRPC over TLS (ordersync.serving.tls): a server with the stack's certificate answers a client
that trusts the stack's CA, and nobody else; each refusal beside the call that succeeds."""

import dataclasses

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordersync.config import PLAINTEXT, SettingError, Settings
from ordersync.serving.channels import open_channel
from ordersync.serving.grpc_server import build_server
from ordersync.serving.tls import server_credentials
from stack import tls
from stack.topology import free_port


def stack_with_tls(folder) -> Settings:
    settings = Settings(stack_dir=folder, grpc_tls_ca=str(tls.tls_dir(folder) / "ca.pem"))
    tls.ensure_grpc_certificate(settings)
    return settings


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A server on TLS with the certificate of one stack; (its address, that stack's settings)."""
    settings = stack_with_tls(tmp_path_factory.mktemp("stack"))
    address = f"127.0.0.1:{free_port()}"
    server, _ = build_server(lambda s: None, [], address, tls=settings.grpc_tls)
    yield address, settings
    server.stop(0)


def health(address, tls_of=PLAINTEXT, target_name=None):
    options = [("grpc.ssl_target_name_override", target_name)] if target_name else []
    with open_channel(address, options=options, tls=tls_of) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def refused(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def test_a_client_that_trusts_the_stack_ca_is_answered(secured):
    address, settings = secured
    assert health(address, settings.grpc_tls) == health_pb2.HealthCheckResponse.SERVING


def test_a_plaintext_client_is_refused(secured):
    address, settings = secured
    assert refused(lambda: health(address)) == grpc.StatusCode.UNAVAILABLE
    assert health(address, settings.grpc_tls) == health_pb2.HealthCheckResponse.SERVING  # positive control


def test_a_client_that_trusts_another_ca_is_refused(secured, tmp_path):
    address, settings = secured
    other = stack_with_tls(tmp_path)  # a CA of its own, that never signed the server's certificate
    assert refused(lambda: health(address, other.grpc_tls)) == grpc.StatusCode.UNAVAILABLE
    assert health(address, settings.grpc_tls) == health_pb2.HealthCheckResponse.SERVING


def test_a_server_under_another_name_is_refused(secured):
    """The certificate names 127.0.0.1 and localhost: a client that dialled another name refuses it."""
    address, settings = secured
    assert refused(lambda: health(address, settings.grpc_tls, "orders.example.com")) == grpc.StatusCode.UNAVAILABLE
    assert health(address, settings.grpc_tls, "localhost") == health_pb2.HealthCheckResponse.SERVING


def test_the_certificates_are_made_once_and_kept_private(tmp_path):
    settings = stack_with_tls(tmp_path)
    before = {path: (path.read_bytes(), path.stat().st_mode & 0o777) for path in tls.tls_dir(tmp_path).iterdir()}
    tls.ensure_grpc_certificate(settings)
    after = {path: (path.read_bytes(), path.stat().st_mode & 0o777) for path in tls.tls_dir(tmp_path).iterdir()}
    assert after == before
    assert {mode for _, mode in after.values()} == {0o600}
    assert tls.tls_dir(tmp_path).stat().st_mode & 0o777 == 0o700


def test_without_a_ca_gRPC_is_plaintext_and_no_certificate_is_made(tmp_path):
    settings = Settings(stack_dir=tmp_path)
    tls.ensure_grpc_certificate(settings)
    assert not settings.grpc_tls.on and server_credentials(settings.grpc_tls) is None
    assert not tls.tls_dir(tmp_path).exists()


@pytest.mark.parametrize("missing", ["key", "cert", "ca"])
def test_a_missing_file_names_its_variable(tmp_path, missing):
    settings = stack_with_tls(tmp_path)
    broken = dataclasses.replace(settings.grpc_tls, **{missing: str(tmp_path / "nowhere.pem")})
    with pytest.raises(SettingError) as err:
        server_credentials(broken) if missing != "ca" else open_channel("127.0.0.1:1", tls=broken)
    assert err.value.variable == f"GRPC_TLS_{missing.upper()}" and "nowhere.pem" in str(err.value)


def test_a_file_that_is_no_pem_names_its_variable(tmp_path):
    settings = stack_with_tls(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(SettingError) as err:
        server_credentials(dataclasses.replace(settings.grpc_tls, cert=str(tmp_path / "junk.pem")))
    assert err.value.variable == "GRPC_TLS_CERT" and "a PEM file" in str(err.value)


def test_a_list_of_servers_is_checked_under_the_first_host_s_name(secured):
    """A client of several servers (ipv4:h1:p1,h2:p2, a client-side balancer's target): each
    server's certificate is checked against the first host, not against the whole list."""
    address, settings = secured
    assert health(f"ipv4:{address},{address}", settings.grpc_tls) == health_pb2.HealthCheckResponse.SERVING
    assert refused(lambda: health(f"ipv4:{address}", settings.grpc_tls, "orders.example.com")) == \
        grpc.StatusCode.UNAVAILABLE
