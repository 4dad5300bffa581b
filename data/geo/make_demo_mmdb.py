#!/usr/bin/env python3
"""Writes demo-country.mmdb: the country database of `kansoku demo`.

SYNTHETIC: NOT REAL GEOLOCATION. The countries below were assigned
arbitrarily, in turn from a fixed list, to the busiest external /24 (IPv4)
and /48 (IPv6) blocks of the bundled samples in ../samples/, so that the
demo's alerts carry a peer country. They say nothing about where those
addresses really are. The fictional demo institutions' prefixes
(../institutions.toml) are given JP, as members of a Japanese academic
network would be. Every other address has no country.

Layout as GeoLite2-Country (IPv6 tree, IPv4 at ::/96 and again at
::ffff:0:0/96; `continent`, `country`, `registered_country`), written with
the MaxMind DB writer from PyPI (mmdb-writer, MIT). Deterministic
(fixed build_epoch):

    python3 -m venv .venv && .venv/bin/pip install mmdb-writer netaddr
    .venv/bin/python data/geo/make_demo_mmdb.py

For real use, point kansoku at a real country database (GeoLite2-Country,
DB-IP Country Lite, ...) instead.
"""

import os

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPNetwork, IPSet

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "demo-country.mmdb")
BUILD_EPOCH = 1735689600  # 2025-01-01T00:00:00Z, fixed for reproducible output

# code: (geoname id, English name, continent)
COUNTRIES = {
    "JP": (1861060, "Japan", "AS"),
    "DE": (2921044, "Germany", "EU"),
    "US": (6252001, "United States", "NA"),
    "NL": (2750405, "Netherlands", "EU"),
    "BR": (3469034, "Brazil", "SA"),
    "KR": (1835841, "South Korea", "AS"),
    "SG": (1880251, "Singapore", "AS"),
    "FR": (3017382, "France", "EU"),
    "GB": (2635167, "United Kingdom", "EU"),
    "CA": (6251999, "Canada", "NA"),
    "AU": (2077456, "Australia", "OC"),
    "SE": (2661886, "Sweden", "EU"),
}
CONTINENTS = {
    "AS": (6255147, "Asia"),
    "EU": (6255148, "Europe"),
    "NA": (6255149, "North America"),
    "SA": (6255150, "South America"),
    "OC": (6255151, "Oceania"),
}
ROTATION = [c for c in COUNTRIES if c != "JP"]

# Prefixes of the fictional demo institutions (data/institutions.toml).
INSTITUTIONS = ["192.168.1.0/24", "10.136.0.0/16", "192.168.0.0/24",
                "147.32.83.0/24", "2001:718:2::/48"]

# The busiest external blocks of data/samples/, most flows first.
EXTERNAL = [
    "193.46.255.0/24", "216.245.221.0/24", "1.1.1.0/24", "74.120.14.0/24",
    "45.143.200.0/24", "162.142.125.0/24", "122.248.252.0/24", "45.143.203.0/24",
    "122.248.234.0/24", "80.82.77.0/24", "122.228.19.0/24", "64.62.197.0/24",
    "1.0.0.0/24", "89.248.168.0/24", "78.128.113.0/24", "45.129.137.0/24",
    "2a00:1450:4014::/48", "74.201.28.0/24", "185.193.88.0/24", "79.124.62.0/24",
    "162.62.123.0/24", "120.48.18.0/24", "2620:0:862::/48", "34.77.162.0/24",
    "45.144.225.0/24", "193.57.40.0/24", "156.87.76.0/24", "45.227.254.0/24",
]


def record(code):
    geoname_id, name, cc = COUNTRIES[code]
    continent_id, continent_name = CONTINENTS[cc]
    place = {"geoname_id": MmdbU32(geoname_id), "iso_code": code, "names": {"en": name}}
    return {
        "continent": {"code": cc, "geoname_id": MmdbU32(continent_id),
                      "names": {"en": continent_name}},
        "country": place,
        "registered_country": place,
    }


class Writer(MMDBWriter):
    def _build_meta(self):
        meta = super()._build_meta()
        meta["build_epoch"] = BUILD_EPOCH
        return meta


def insert(writer, network, data):
    net = IPNetwork(network)
    writer.insert_network(IPSet([net]), data)
    if net.version == 4:
        writer.insert_network(IPSet([net.ipv6(ipv4_compatible=False)]), data)


def main():
    writer = Writer(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-Country",
        languages=["en"],
        description={"en": "kansoku demo: SYNTHETIC countries, NOT real geolocation"},
    )
    for network in INSTITUTIONS:
        insert(writer, network, record("JP"))
    for i, network in enumerate(EXTERNAL):
        insert(writer, network, record(ROTATION[i % len(ROTATION)]))
    writer.to_db_file(OUTPUT)
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")
    for i, network in enumerate(EXTERNAL):
        print(f"  {network:22} {ROTATION[i % len(ROTATION)]}")


if __name__ == "__main__":
    main()
