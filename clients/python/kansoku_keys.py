"""Unwrap kansoku's keys with an institution's private key.

kansoku wraps each institution's period key (KEK, 16 bytes) with RSA-OAEP
(SHA-256, MGF1-SHA-256, no label) under the institution's certificate, and
each file's data keys (DEKs) with AES-GCM under the KEK, as Parquet's PKMT1
key material with double wrapping describes them:

    wrappedDEK = base64(nonce[12] || ciphertext || tag[16]),  AAD = the KEK id

This module needs only `cryptography`; `kansoku_kms.py` plugs the same
unwrapping into pyarrow. Command line (prints the data key in hex):

    python kansoku_keys.py --private-key institution.key material.json
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def load_private_key(path: str):
    """An institution's RSA private key, PEM (PKCS#8 or PKCS#1, unencrypted)."""
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def unwrap_kek(private_key, wrapped_kek: str) -> bytes:
    """The period key from PKMT1 `wrappedKEK` (base64 RSA-OAEP ciphertext)."""
    return private_key.decrypt(base64.b64decode(wrapped_kek), OAEP)


def unwrap_dek(kek: bytes, material: dict) -> bytes:
    """A data key from its PKMT1 key material, given the period key."""
    if material.get("keyMaterialType") != "PKMT1" or material.get("doubleWrapping") is not True:
        raise ValueError("not PKMT1 key material with double wrapping")
    sealed = base64.b64decode(material["wrappedDEK"])
    aad = base64.b64decode(material["keyEncryptionKeyID"])
    return AESGCM(kek).decrypt(sealed[:12], sealed[12:], aad)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("material", help="key material JSON (a file, - for stdin)")
    p.add_argument("--private-key", required=True, help="the institution's private key (PEM)")
    args = p.parse_args()
    text = sys.stdin.read() if args.material == "-" else open(args.material).read()
    material = json.loads(text)
    try:
        kek = unwrap_kek(load_private_key(args.private_key), material["wrappedKEK"])
    except ValueError:
        print("the period key does not open with this private key "
              "(another institution's key?)", file=sys.stderr)
        return 1
    print(unwrap_dek(kek, material).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
