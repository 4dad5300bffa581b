//! Building batches in native unit tests of a plugin, without a host.
//!
//! ```
//! use kansoku_plugin::testing::BatchBuilder;
//!
//! let mut builder = BatchBuilder::new();
//! builder
//!     .flow("10.0.0.1".parse().unwrap(), 40000, "192.0.2.9".parse().unwrap(), 22)
//!     .proto(6)
//!     .direction(2);
//! let batch = builder.build();
//! assert_eq!(batch.get(0).unwrap().dst_port(), 22);
//! ```

use std::net::IpAddr;

mod rng;
mod zeek;
pub use rng::SplitMix64;
pub use zeek::{ZeekRow, read_tsv};

use crate::bindings::kansoku::detector::types::{FlowBatch, TextColumn, TextField};
use crate::{Address, Batch, Timestamp};

/// Accumulates rows for a [`Batch`]. Every setter applies to the last row
/// added with [`BatchBuilder::flow`].
#[derive(Debug)]
pub struct BatchBuilder {
    raw: FlowBatch,
    text: Vec<(TextField, Vec<String>)>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new() -> Self {
        Self {
            raw: FlowBatch {
                rows: 0,
                ts: Vec::new(),
                duration: Vec::new(),
                src_addr: Vec::new(),
                dst_addr: Vec::new(),
                src_port: Vec::new(),
                dst_port: Vec::new(),
                proto: Vec::new(),
                kind: Vec::new(),
                direction: Vec::new(),
                institution: Vec::new(),
                src_bytes: Vec::new(),
                dst_bytes: Vec::new(),
                src_pkts: Vec::new(),
                dst_pkts: Vec::new(),
                conn_state: Vec::new(),
                src_country: Vec::new(),
                dst_country: Vec::new(),
                dns_qtype: Vec::new(),
                dns_rcode: Vec::new(),
                http_status: Vec::new(),
                text: Vec::new(),
            },
            text: Vec::new(),
        }
    }

    /// Adds a TCP connection row `src:sport -> dst:dport` at time 0; the
    /// other setters adjust it.
    pub fn flow(&mut self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> &mut Self {
        let raw = &mut self.raw;
        raw.rows += 1;
        raw.ts.push(0);
        raw.duration.push(0);
        raw.src_addr.extend_from_slice(&octets(src));
        raw.dst_addr.extend_from_slice(&octets(dst));
        raw.src_port.push(sport);
        raw.dst_port.push(dport);
        raw.proto.push(6);
        raw.kind.push(0);
        raw.direction.push(0);
        raw.institution.push(0);
        raw.src_bytes.push(0);
        raw.dst_bytes.push(0);
        raw.src_pkts.push(0);
        raw.dst_pkts.push(0);
        raw.conn_state.push(0);
        raw.src_country.push(0);
        raw.dst_country.push(0);
        raw.dns_qtype.push(0);
        raw.dns_rcode.push(u16::MAX);
        raw.http_status.push(0);
        for (_, values) in &mut self.text {
            values.push(String::new());
        }
        self
    }

    fn last(&self) -> usize {
        (self.raw.rows as usize).saturating_sub(1)
    }

    /// Sets the start time.
    pub fn ts(&mut self, ts: Timestamp) -> &mut Self {
        let i = self.last();
        self.raw.ts[i] = ts;
        self
    }

    /// Sets the protocol number.
    pub fn proto(&mut self, proto: u8) -> &mut Self {
        let i = self.last();
        self.raw.proto[i] = proto;
        self
    }

    /// Sets the record kind code.
    pub fn kind(&mut self, kind: u8) -> &mut Self {
        let i = self.last();
        self.raw.kind[i] = kind;
        self
    }

    /// Sets the direction code.
    pub fn direction(&mut self, direction: u8) -> &mut Self {
        let i = self.last();
        self.raw.direction[i] = direction;
        self
    }

    /// Sets the institution index.
    pub fn institution(&mut self, institution: u16) -> &mut Self {
        let i = self.last();
        self.raw.institution[i] = institution;
        self
    }

    /// Sets the connection state code.
    pub fn conn_state(&mut self, state: u8) -> &mut Self {
        let i = self.last();
        self.raw.conn_state[i] = state;
        self
    }

    /// Sets the duration, in microseconds.
    pub fn duration(&mut self, micros: u64) -> &mut Self {
        let i = self.last();
        self.raw.duration[i] = micros;
        self
    }

    /// Sets packets sent by each side.
    pub fn pkts(&mut self, src: u32, dst: u32) -> &mut Self {
        let i = self.last();
        self.raw.src_pkts[i] = src;
        self.raw.dst_pkts[i] = dst;
        self
    }

    /// Sets bytes sent by each side.
    pub fn bytes(&mut self, src: u64, dst: u64) -> &mut Self {
        let i = self.last();
        self.raw.src_bytes[i] = src;
        self.raw.dst_bytes[i] = dst;
        self
    }

    /// Makes the row a DNS transaction.
    pub fn dns(&mut self, query: &str, qtype: u16, rcode: Option<u16>) -> &mut Self {
        let i = self.last();
        self.raw.kind[i] = 1;
        self.raw.dns_qtype[i] = qtype;
        self.raw.dns_rcode[i] = rcode.unwrap_or(u16::MAX);
        self.text(TextField::DnsQuery, query)
    }

    /// Sets a text field.
    pub fn text(&mut self, field: TextField, value: &str) -> &mut Self {
        let rows = self.raw.rows as usize;
        let i = self.last();
        let column = match self.text.iter().position(|(f, _)| *f == field) {
            Some(pos) => pos,
            None => {
                self.text.push((field, vec![String::new(); rows]));
                self.text.len() - 1
            }
        };
        self.text[column].1[i] = value.to_owned();
        self
    }

    /// Finishes the batch.
    pub fn build(self) -> Batch {
        let mut raw = self.raw;
        raw.text = self
            .text
            .into_iter()
            .map(|(field, values)| {
                let mut offsets = vec![0u32];
                let mut bytes = Vec::new();
                for value in values {
                    bytes.extend_from_slice(value.as_bytes());
                    offsets.push(bytes.len() as u32);
                }
                TextColumn {
                    field,
                    offsets,
                    bytes,
                }
            })
            .collect();
        Batch::new(raw)
    }
}

fn octets(ip: IpAddr) -> [u8; 16] {
    let a = Address::from(ip);
    ((u128::from(a.hi) << 64) | u128::from(a.lo)).to_be_bytes()
}
