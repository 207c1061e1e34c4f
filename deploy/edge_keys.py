"""The edge's assertion signing key (TR02, TR07), for container deployments.

    python -m deploy.edge_keys --private DIR_OR_FILE --public DIR_OR_FILE [--rotate]

Writes the edge's private JWK (mode 0600) where only the edge can read it, and the public key
set (JWKS) the services verify with. Run by a one-shot job (docker-compose.yml `edge-keys`)
that mounts the edge's own volume and the public one; no service mounts the private one.
Idempotent: an existing private key is kept and its public set rewritten; `--rotate` makes a new
key and publishes the new and the previous public keys together, so assertions signed just
before the rotation still verify. Prints the key id only, never the key.

For Kubernetes, create the Secret and the ConfigMap from the same two files:
    python -m deploy.edge_keys --private ./edge-key --public ./assertion-keys
    kubectl create secret generic casework-edge-signing-key \\
        --from-file=signing-key.jwk=./edge-key/signing-key.jwk
    kubectl create configmap casework-assertion-keys \\
        --from-file=assertion-keys.json=./assertion-keys/assertion-keys.json
(then delete ./edge-key)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from services.shared.auth import SigningKey, key_set

PRIVATE_NAME = "signing-key.jwk"
PUBLIC_NAME = "assertion-keys.json"


def _file(path: Path, name: str) -> Path:
    return path / name if path.is_dir() or not path.suffix else path


def _write_private(path: Path, key: SigningKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.dumps())
    tmp.replace(path)


def write_keys(private: Path, public: Path, *, rotate: bool = False) -> SigningKey:
    """Ensure a signing key at `private` and its public key set at `public`; returns the key."""
    private, public = _file(private, PRIVATE_NAME), _file(public, PUBLIC_NAME)
    previous = SigningKey.load(private.read_text()) if private.exists() else None
    key = previous if previous and not rotate else SigningKey.generate()
    if key is not previous:
        _write_private(private, key)
    published = json.loads(key_set(key))
    if previous and key is not previous:
        published["keys"] += json.loads(key_set(previous))["keys"]
    public.parent.mkdir(parents=True, exist_ok=True)
    public.write_text(json.dumps(published))
    public.chmod(0o644)
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.edge_keys", description=__doc__)
    parser.add_argument("--private", type=Path, required=True, help="the edge's key (dir/file)")
    parser.add_argument("--public", type=Path, required=True, help="the public JWKS (dir/file)")
    parser.add_argument("--rotate", action="store_true", help="make a new key, keep the old one")
    args = parser.parse_args(argv)
    key = write_keys(args.private, args.public, rotate=args.rotate)
    print(f"edge signing key {key.kid}; public key set at {_file(args.public, PUBLIC_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
