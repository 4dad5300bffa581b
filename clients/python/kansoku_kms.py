"""Read an institution's own kansoku partitions with pyarrow.

kansoku's Parquet files keep sensitive columns (mail addresses, attachment
names, detected substrings) encrypted with Parquet Modular Encryption. The
key material in each file (PKMT1, double wrapping) names the period key,
wrapped under the institution's certificate; `InstitutionKmsClient` unwraps
it with the institution's RSA private key. Everything else reads without
any key.

    import kansoku_kms
    table = kansoku_kms.read_table("part-….parquet", "institution.key")
    dataset = kansoku_kms.dataset("/srv/kansoku/alerts/institution=x", "institution.key")

Command line (rows as JSON lines):

    python kansoku_kms.py --private-key institution.key PATH [--columns a,b]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe

from kansoku_keys import load_private_key, unwrap_kek


class InstitutionKmsClient(pe.KmsClient):
    """A pyarrow KMS client whose "KMS" is the institution's private key."""

    def __init__(self, private_key):
        pe.KmsClient.__init__(self)
        self._private_key = private_key

    def wrap_key(self, key_bytes, master_key_identifier):
        raise NotImplementedError("kansoku writes the files; an institution only reads them")

    def unwrap_key(self, wrapped_key, master_key_identifier):
        return unwrap_kek(self._private_key, wrapped_key)


def _configs(private_key_path: str):
    private_key = load_private_key(private_key_path)
    factory = pe.CryptoFactory(lambda _config: InstitutionKmsClient(private_key))
    kms = pe.KmsConnectionConfig()
    decryption = pe.DecryptionConfiguration()
    # The constructor ignores cache_lifetime; the property works.
    decryption.cache_lifetime = datetime.timedelta(minutes=10)
    return factory, kms, decryption


def decryption_properties(private_key_path: str):
    """File decryption properties for `pq.ParquetFile`, with this key."""
    factory, kms, decryption = _configs(private_key_path)
    return factory.file_decryption_properties(kms, decryption)


def read_table(path: str, private_key_path: str, columns=None):
    """One file, decrypted."""
    properties = decryption_properties(private_key_path)
    return pq.ParquetFile(path, decryption_properties=properties).read(columns=columns)


def dataset(root: str, private_key_path: str):
    """A directory of partitions (hive layout), decrypted as it is read."""
    factory, kms, decryption = _configs(private_key_path)
    config = ds.ParquetDecryptionConfig(factory, kms, decryption)
    scan = ds.ParquetFragmentScanOptions(decryption_config=config)
    return ds.dataset(root, format=ds.ParquetFileFormat(default_fragment_scan_options=scan),
                      partitioning="hive")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="a kansoku Parquet file or partition directory")
    p.add_argument("--private-key", required=True, help="the institution's private key (PEM)")
    p.add_argument("--columns", help="comma-separated columns (default: all)")
    args = p.parse_args()
    columns = args.columns.split(",") if args.columns else None
    if args.path.endswith(".parquet"):
        table = read_table(args.path, args.private_key, columns)
    else:
        table = dataset(args.path, args.private_key).to_table(columns=columns)
    for row in table.to_pylist():
        print(json.dumps(row, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
