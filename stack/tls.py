"""TLS for a secured cluster: a private CA and the certificates it signs, made with openssl.

Generated once per stack under <stack_dir>/secrets/tls/ (0600 files in a 0700 dir, git-ignored):
- ca.pem: the CA certificate every client trusts (KAFKA_SSL_CA, GRPC_TLS_CA);
- broker.p12: the brokers' key and certificate, in a PKCS12 keystore whose password is
  `tls.keystore` in SECRETS_FILE;
- grpc-server.pem, grpc-server-key.pem: the gRPC servers' certificate and key (GRPC_TLS_CERT,
  GRPC_TLS_KEY), when GRPC_TLS_CA is set.
Each certificate names every host of the stack (Settings.all_hosts: 127.0.0.1 and the *_HOSTS;
IP: or DNS: entries) and localhost (SAN), so that clients verify the host they dialled. The CA's
key stays beside them to sign more (a real CA keeps it elsewhere). All the brokers share one
certificate, all the gRPC servers another, made when the stack first starts: a host added to the
settings later needs them made again (delete them; the next start signs new ones). Across
machines each server would get its own, with only its host names in the SAN.
"""

import os
import shutil
import subprocess
from pathlib import Path

from ordersync.config import Settings, is_ipv4
from stack.process import StackError

DAYS = 825


def server_extensions(hosts: list[str]) -> str:
    """The X.509 extensions of a server certificate for `hosts` (openssl's -extfile)."""
    names = [f"IP:{h}" if is_ipv4(h) else f"DNS:{h}" for h in hosts] + ["DNS:localhost"]
    return f"subjectAltName={','.join(dict.fromkeys(names))}\nextendedKeyUsage=serverAuth\n"


def tls_dir(stack_dir: Path) -> Path:
    return Path(stack_dir) / "secrets" / "tls"


def keystore(settings: Settings) -> Path:
    return tls_dir(settings.stack_dir) / "broker.p12"


def _openssl(*steps: list, env: dict | None = None, extensions: str = "") -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        raise StackError("openssl not found: it makes the cluster's TLS certificates (apt-get install openssl)")
    for step in steps:
        result = subprocess.run([openssl, *map(str, step)], input=extensions, capture_output=True, text=True,
                                timeout=60, env={**os.environ, **(env or {})})
        if result.returncode != 0:
            raise StackError(f"openssl {step[0]} failed: {result.stderr}")


def _ensure_ca(folder: Path) -> tuple[Path, Path]:
    """The stack's CA certificate and key, made unless they exist."""
    ca_key, ca = folder / "ca-key.pem", folder / "ca.pem"
    if not (ca.exists() and ca_key.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        _openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", DAYS,
                  "-subj", "/CN=ordersync local CA"])
        ca_key.chmod(0o600)
        ca.chmod(0o600)
    return ca, ca_key


def _sign(folder: Path, name: str, common_name: str, hosts: list[str]) -> tuple[Path, Path]:
    """A new key and a certificate for a server on `hosts`, signed by the stack's CA: (certificate, key)."""
    ca, ca_key = _ensure_ca(folder)
    key, csr, cert = folder / f"{name}-key.pem", folder / f"{name}.csr", folder / f"{name}.pem"
    _openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}"],
             ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
              "-days", DAYS, "-extfile", "/dev/stdin"], extensions=server_extensions(hosts))
    csr.unlink()
    for path in folder.iterdir():
        path.chmod(0o600)
    return cert, key


def _publish_ca(folder: Path, where: str) -> None:
    """The CA certificate at the path a setting names too, when that is elsewhere."""
    if where and Path(where) != folder / "ca.pem":
        shutil.copyfile(folder / "ca.pem", where)


def ensure_certificates(settings: Settings) -> None:
    """The CA and the brokers' keystore, unless they exist."""
    folder = tls_dir(settings.stack_dir)
    if keystore(settings).exists() and Path(settings.kafka_ssl_ca).exists():
        return
    cert, key = _sign(folder, "broker", "ordersync Kafka", settings.all_hosts)
    _openssl(["pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", folder / "ca.pem", "-name", "broker",
              "-out", keystore(settings), "-passout", "env:KEYSTORE_PASSWORD"],  # not on a command line
             env={"KEYSTORE_PASSWORD": settings.secret("tls.keystore")})
    keystore(settings).chmod(0o600)
    _publish_ca(folder, settings.kafka_ssl_ca)


def ensure_grpc_certificate(settings: Settings) -> None:
    """The gRPC servers' certificate and key (GRPC_TLS_CERT, GRPC_TLS_KEY) and the CA that signed
    them (GRPC_TLS_CA), unless they exist; nothing when gRPC is plaintext."""
    tls = settings.grpc_tls
    if not tls.on or all(Path(path).exists() for path in (tls.ca, tls.cert, tls.key)):
        return
    folder = tls_dir(settings.stack_dir)
    cert, key = _sign(folder, "grpc-server", "ordersync gRPC", settings.all_hosts)
    for made, wanted in ((cert, tls.cert), (key, tls.key)):
        if Path(wanted) != made:
            shutil.copyfile(made, wanted)
    _publish_ca(folder, tls.ca)
