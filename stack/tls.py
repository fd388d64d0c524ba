"""TLS for a secured cluster's listeners: a private CA and one broker certificate, made with openssl.

Generated once per stack under <stack_dir>/secrets/tls/ (0600 files in a 0700 dir, git-ignored):
- ca.pem: the CA certificate every client trusts (KAFKA_SSL_CA);
- broker.p12: the brokers' key and certificate (SAN IP:127.0.0.1 and DNS:localhost, so that
  clients verify the host name), in a PKCS12 keystore whose password is `tls.keystore` in
  SECRETS_FILE. The CA's key stays beside it to sign more (a real CA keeps it elsewhere).
All the brokers share one certificate: they all listen on 127.0.0.1. Across machines each gets
its own, with its host name in the SAN.
"""

import os
import shutil
import subprocess
from pathlib import Path

from ordersync.config import Settings
from stack.process import StackError

DAYS = 825
SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost"


def tls_dir(stack_dir: Path) -> Path:
    return Path(stack_dir) / "secrets" / "tls"


def keystore(settings: Settings) -> Path:
    return tls_dir(settings.stack_dir) / "broker.p12"


def ensure_certificates(settings: Settings) -> None:
    """The CA and the brokers' keystore, unless they exist."""
    folder = tls_dir(settings.stack_dir)
    if keystore(settings).exists() and Path(settings.kafka_ssl_ca).exists():
        return
    openssl = shutil.which("openssl")
    if not openssl:
        raise StackError("openssl not found: it makes the cluster's TLS certificates (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca-key.pem", "ca.pem", "broker-key.pem",
                                                        "broker.csr", "broker.pem"))
    password = settings.secret("tls.keystore")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", str(DAYS),
         "-subj", "/CN=ordersync local CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", str(DAYS), "-extfile", "/dev/stdin"],
        ["pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", ca, "-name", "broker",
         "-out", keystore(settings), "-passout", "env:KEYSTORE_PASSWORD"],  # not on a command line
    ]
    for step in steps:
        result = subprocess.run([openssl, *map(str, step)], input=SAN + "\n", capture_output=True, text=True,
                                timeout=60, env={**os.environ, "KEYSTORE_PASSWORD": password})
        if result.returncode != 0:
            raise StackError(f"openssl {step[0]} failed: {result.stderr}")
    for path in folder.iterdir():
        path.chmod(0o600)
    csr.unlink()
    if Path(settings.kafka_ssl_ca) != ca:
        shutil.copyfile(ca, settings.kafka_ssl_ca)
