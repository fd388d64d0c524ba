"""The key pair that callers' tokens are signed and checked with (ordersync.serving.auth).

Made once per stack, beside the other secrets (stack/accounts.py, stack/tls.py), in the git-ignored
stack dir: AUTH_PRIVATE_KEY (<stack_dir>/secrets/auth/signing-key.pem, 0600, in a 0700 folder)
stays with the stack and `ordersync-token`; the services get only AUTH_PUBLIC_KEY. Rotating is
making a new pair (delete the folder) and restarting the services: every token signed with the
old key stops working. No service holds the signing key: one that did could mint a token for
any user.
"""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ordersync.config import Settings, private_key


def ensure_key_pair(settings: Settings) -> None:
    """AUTH_PRIVATE_KEY and AUTH_PUBLIC_KEY, unless the private key exists; the public key
    written again from it when it is missing (a pair always matches)."""
    private, public = Path(settings.auth_private_key), Path(settings.auth_public_key)
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        _write_private(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
        public.unlink(missing_ok=True)
    if not public.exists():
        pem = private_key(str(private)).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        _write(public, pem, 0o644)


def _write_private(path: Path, data: bytes) -> None:
    """The signing key: 0600, in a folder of its own owner's only (0700)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    _write(path, data, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    """`data` into `path` whole (written beside it, then renamed: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(partial, mode)
    partial.replace(path)
