"""The feature catalogue of ml-score's model slot, for training and scoring.

This mirrors plugins/ml-score/src/features.rs and must change with it: the
names, the order of FEATURES, and how each value is computed (in float64,
rounded once to float32). It also mirrors how the engine turns Suricata EVE
flow events and Zeek conn.log rows into flows (host/src/ingest/eve.rs, the
SDK's Zeek reader), because the plugin only ever sees those flows.

Command line: write the features of a log as CSV (one header line of
feature names, one row per flow, in log order):

    python features.py --eve eve.json --spec rulesets/ml-score/model.toml -o features.csv
    python features.py --zeek conn.log --spec rulesets/ml-score/model.toml -o features.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import ipaddress
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field

import numpy as np

# Catalogue order; a spec picks any of them, in any order.
FEATURES = [
    "duration", "log_duration", "src_bytes", "dst_bytes", "log_src_bytes", "log_dst_bytes",
    "src_pkts", "dst_pkts", "log_src_pkts", "log_dst_pkts", "src_bytes_per_pkt",
    "dst_bytes_per_pkt", "src_port", "dst_port", "dst_port_well_known", "proto_tcp",
    "proto_udp", "proto_icmp", "service_none", "service_dns", "service_http", "service_tls",
    "service_ssh", "service_other", "dir_inbound", "dir_outbound", "dir_internal", "state_sf",
    "state_s0", "state_rej", "state_reset", "state_other", "src_flows", "log_src_flows",
    "src_distinct_dsts", "src_distinct_dst_ports",
]
WINDOW_FEATURES = {"src_flows", "log_src_flows", "src_distinct_dsts", "src_distinct_dst_ports"}

# Zeek connection states, by the contract's code (0 = unknown).
STATES = ["", "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH",
          "SHR", "OTH"]


@dataclass
class Flow:
    """One flow as the plugin sees it."""
    ts: int  # microseconds since the Unix epoch
    src: int  # 128-bit address, IPv4 mapped into IPv6
    src_port: int
    dst: int
    dst_port: int
    proto: int
    duration_us: int = 0
    src_bytes: int = 0
    dst_bytes: int = 0
    src_pkts: int = 0
    dst_pkts: int = 0
    conn_state: str = ""  # Zeek name, "" when unknown
    service: str = ""
    direction: int = 0  # 0 unknown, 1 inbound, 2 outbound, 3 internal
    institution: int = 0
    flow_id: int = 0


def address(text: str) -> int:
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        return (0xFFFF << 32) | int(ip)
    return int(ip)


def _micros(text: str) -> int:
    t = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58, "ipv6-icmp": 58, "icmpv6": 58,
          "sctp": 132, "gre": 47}


def _proto(name) -> int:
    if name is None:
        return 0
    name = str(name)
    if name.isdigit() and int(name) < 256:
        return int(name)
    return PROTOS.get(name.lower(), 0)


def _eve_state(orig, resp) -> str:
    """host/src/ingest/eve.rs `conn_state`: a Zeek state from TCP flags."""
    try:
        o, r = int(orig, 16), int(resp, 16)
    except (TypeError, ValueError):
        return ""
    if not (0 <= o < 256 and 0 <= r < 256):
        return ""
    FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
    syn_ack = bool(r & SYN) and bool(r & ACK)
    o_syn = bool(o & SYN)
    if o_syn and syn_ack:
        if o & RST:
            return "RSTO"
        if r & RST:
            return "RSTR"
        return {(True, True): "SF", (True, False): "S2", (False, True): "S3",
                (False, False): "S1"}[(bool(o & FIN), bool(r & FIN))]
    if o_syn:
        if r == 0 and o & RST:
            return "RSTOS0"
        if r == 0 and o & FIN:
            return "SH"
        if r == 0:
            return "S0"
        if r & RST:
            return "REJ"
        return "OTH"
    if syn_ack:
        if r & RST:
            return "RSTRH"
        if r & FIN:
            return "SHR"
    return "OTH"


def _open(path):
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


def read_eve(path) -> tuple[list[Flow], set[int]]:
    """EVE flow events as flows, in file order, and the flow ids of alerts."""
    flows, alerted = [], set()
    with _open(path) as f:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            kind = e.get("event_type")
            if kind == "alert" and e.get("flow_id") is not None:
                alerted.add(e["flow_id"])
            if kind != "flow":
                continue
            fl = e.get("flow") or {}
            ts = _micros(fl.get("start") or e["timestamp"])
            proto = _proto(e.get("proto"))
            sport = e.get("src_port", e.get("icmp_type", 0)) or 0
            dport = e.get("dest_port", e.get("icmp_code", 0)) or 0
            flow = Flow(ts=ts, src=address(e["src_ip"]), src_port=sport, dst=address(e["dest_ip"]),
                        dst_port=dport, proto=proto, flow_id=e.get("flow_id", 0))
            flow.src_bytes = fl.get("bytes_toserver", 0) or 0
            flow.dst_bytes = fl.get("bytes_toclient", 0) or 0
            flow.src_pkts = min(fl.get("pkts_toserver", 0) or 0, 2**32 - 1)
            flow.dst_pkts = min(fl.get("pkts_toclient", 0) or 0, 2**32 - 1)
            if fl.get("end"):
                flow.duration_us = max(0, _micros(fl["end"]) - ts)
            tcp = e.get("tcp")
            if proto == 6 and tcp:
                flow.conn_state = _eve_state(tcp.get("tcp_flags_ts"), tcp.get("tcp_flags_tc"))
            app = e.get("app_proto")
            if isinstance(app, str) and app != "failed":
                flow.service = app
            flows.append(flow)
    return flows, alerted


def read_zeek_conn(path) -> list[Flow]:
    """Rows of a Zeek conn.log (TSV), as the SDK's reader maps them."""
    flows, names = [], []
    with _open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                parts = line[1:].split("\t")
                if parts[0] == "fields":
                    names = parts[1:]
                continue
            if not line:
                continue
            row = {n: v for n, v in zip(names, line.split("\t")) if v not in ("-", "(empty)")}
            micros = lambda v: round(float(v) * 1e6)
            flows.append(Flow(
                ts=micros(row["ts"]), src=address(row["id.orig_h"]),
                src_port=int(row.get("id.orig_p", 0)), dst=address(row["id.resp_h"]),
                dst_port=int(row.get("id.resp_p", 0)),
                proto={"tcp": 6, "udp": 17, "icmp": 1}[row.get("proto", "tcp")],
                duration_us=max(0, micros(row["duration"])) if "duration" in row else 0,
                src_bytes=int(row.get("orig_bytes", 0)), dst_bytes=int(row.get("resp_bytes", 0)),
                src_pkts=int(row.get("orig_pkts", 0)), dst_pkts=int(row.get("resp_pkts", 0)),
                conn_state=row.get("conn_state", "") if row.get("conn_state") in STATES else "",
                service=row.get("service", ""),
            ))
    return flows


# Window sketches: 256-bit linear counting, Fibonacci hashing (features.rs).
MIX = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1
SKETCH_BITS = 256
DISTINCT = [float(round(SKETCH_BITS * math.log(SKETCH_BITS / max(z, 1))))
            for z in range(SKETCH_BITS + 1)]


def _address_slot(a: int) -> int:
    folded = (a >> 64) ^ (a & M64)
    return ((folded * MIX) & M64) >> 56


def _port_slot(p: int) -> int:
    return ((p * MIX) & M64) >> 56


@dataclass
class Window:
    start: int
    flows: int = 0
    dsts: int = 0  # 256-bit sketch as a Python int
    ports: int = 0


@dataclass
class Windows:
    """Per-source windows (institution, source); no cap here: training sets
    are small enough, and a capped plugin differs only after evictions."""
    window_us: int
    hosts: dict = field(default_factory=dict)

    def observe(self, flow: Flow) -> Window:
        key = (flow.institution, flow.src)
        w = self.hosts.get(key)
        if w is None or flow.ts >= w.start + self.window_us:
            w = self.hosts[key] = Window(start=flow.ts)
        w.flows = min(w.flows + 1, 2**32 - 1)
        w.dsts |= 1 << _address_slot(flow.dst)
        w.ports |= 1 << _port_slot(flow.dst_port)
        return w


def _service(value: str) -> str:
    first = value.split(",")[0]
    if first in ("", "-"):
        return "none"
    if first in ("ssl", "tls"):
        return "tls"
    if first in ("dns", "http", "ssh"):
        return first
    return "other"


def flow_values(flow: Flow, w: Window | None) -> dict[str, float]:
    """Every catalogue feature of one flow, as float64."""
    d = flow.duration_us / 1e6
    sb, db, sp, dp = float(flow.src_bytes), float(flow.dst_bytes), float(flow.src_pkts), float(
        flow.dst_pkts)
    svc = _service(flow.service)
    st = flow.conn_state
    v = {
        "duration": d, "log_duration": math.log1p(d),
        "src_bytes": sb, "dst_bytes": db, "log_src_bytes": math.log1p(sb),
        "log_dst_bytes": math.log1p(db), "src_pkts": sp, "dst_pkts": dp,
        "log_src_pkts": math.log1p(sp), "log_dst_pkts": math.log1p(dp),
        "src_bytes_per_pkt": sb / max(sp, 1.0), "dst_bytes_per_pkt": db / max(dp, 1.0),
        "src_port": float(flow.src_port), "dst_port": float(flow.dst_port),
        "dst_port_well_known": float(flow.dst_port < 1024),
        "proto_tcp": float(flow.proto == 6), "proto_udp": float(flow.proto == 17),
        "proto_icmp": float(flow.proto in (1, 58)),
        "dir_inbound": float(flow.direction == 1), "dir_outbound": float(flow.direction == 2),
        "dir_internal": float(flow.direction == 3),
        "state_sf": float(st == "SF"), "state_s0": float(st == "S0"),
        "state_rej": float(st == "REJ"),
        "state_reset": float(st in ("RSTO", "RSTR", "RSTOS0", "RSTRH")),
        "state_other": float(st in ("S1", "S2", "S3", "SH", "SHR", "OTH")),
    }
    for s in ("none", "dns", "http", "tls", "ssh", "other"):
        v["service_" + s] = float(svc == s)
    if w is not None:
        v["src_flows"] = float(w.flows)
        v["log_src_flows"] = math.log1p(float(w.flows))
        v["src_distinct_dsts"] = DISTINCT[SKETCH_BITS - bin(w.dsts).count("1")]
        v["src_distinct_dst_ports"] = DISTINCT[SKETCH_BITS - bin(w.ports).count("1")]
    return v


def extract(flows: list[Flow], features: list[str], window_secs: int) -> np.ndarray:
    """The feature matrix (rows × features, float32) of flows, in order."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features: {unknown}")
    windows = Windows(window_us=window_secs * 1_000_000)
    needs_window = any(f in WINDOW_FEATURES for f in features)
    out = np.empty((len(flows), len(features)), dtype=np.float64)
    for i, flow in enumerate(flows):
        v = flow_values(flow, windows.observe(flow) if needs_window else None)
        out[i] = [v[f] for f in features]
    return out.astype(np.float32)


def read_spec(path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)["model"]


def write_csv(path, features: list[str], matrix: np.ndarray) -> None:
    with (sys.stdout if path == "-" else open(path, "w", newline="")) as f:
        w = csv.writer(f)
        w.writerow(features)
        # repr of a float32 round-trips exactly through float32 parsing
        w.writerows([[repr(float(x)) for x in row] for row in matrix])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--eve", help="Suricata EVE JSON (flow events are used)")
    src.add_argument("--zeek", help="Zeek conn.log, TSV (optionally .gz)")
    p.add_argument("--spec", required=True, help="model spec (a ruleset with [model])")
    p.add_argument("-o", "--out", default="-", help="CSV output (default stdout)")
    a = p.parse_args()
    spec = read_spec(a.spec)
    flows = read_eve(a.eve)[0] if a.eve else read_zeek_conn(a.zeek)
    matrix = extract(flows, spec["features"], spec.get("window_secs", 300))
    write_csv(a.out, spec["features"], matrix)


if __name__ == "__main__":
    main()
