//! The stored tables, `flows` and `alerts`, as Arrow schemas and the
//! builders that fill them from flow batches and alerts.
//!
//! Only what R3 lets operators view is stored in the clear: time,
//! addresses, ports, protocol, session size and classification, countries,
//! direction, and the protocol metadata the issue lists (DNS query, TLS SNI,
//! JA3, HTTP host, file hashes, sensor alert name). The conditionally
//! viewable fields are the [`ENCRYPTED`] columns. Nothing else of a record
//! is stored: no URI, no user agent, no certificate subject, no payload.
//! The institution and date are the hive partition, not columns.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    ArrayBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::batch::FlowBatch;
use crate::flow::{Micros, TextField};
use crate::triage::Alert;

/// A stored table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Every flow and protocol event in scope.
    Flows,
    /// Every alert of an institution.
    Alerts,
}

impl Table {
    /// Both tables.
    pub const ALL: [Table; 2] = [Table::Flows, Table::Alerts];

    /// Directory name under the data directory.
    pub fn name(self) -> &'static str {
        match self {
            Table::Flows => "flows",
            Table::Alerts => "alerts",
        }
    }

    /// The table for a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Flows => FLOWS.clone(),
            Table::Alerts => ALERTS.clone(),
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Text fields stored, as (column, field). Sensitive ones last.
const TEXT_COLUMNS: [(&str, TextField); 14] = [
    ("service", TextField::Service),
    ("dns_query", TextField::DnsQuery),
    ("tls_sni", TextField::TlsSni),
    ("ja3", TextField::Ja3),
    ("ja3s", TextField::Ja3s),
    ("http_host", TextField::HttpHost),
    ("file_md5", TextField::FileMd5),
    ("file_sha1", TextField::FileSha1),
    ("file_sha256", TextField::FileSha256),
    ("sensor_signature", TextField::AlertSignature),
    ("mail_from", TextField::MailFrom),
    ("mail_to", TextField::MailTo),
    ("file_name", TextField::FileName),
    ("detected_substring", TextField::DetectedSubstring),
];

/// Columns only the owning institution can decrypt (R3), in both tables.
pub const ENCRYPTED: [&str; 4] = ["mail_from", "mail_to", "file_name", "detected_substring"];

fn time_field() -> Field {
    Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

/// Columns every table takes from the flow row (nullable: an alert about
/// an entity has no row).
fn row_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("src_bytes", DataType::UInt64, true),
        Field::new("dst_bytes", DataType::UInt64, true),
        Field::new("src_pkts", DataType::UInt32, true),
        Field::new("dst_pkts", DataType::UInt32, true),
        Field::new("src_country", DataType::Utf8, true),
        Field::new("dst_country", DataType::Utf8, true),
    ];
    fields.extend(
        TEXT_COLUMNS
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Utf8, true)),
    );
    fields
}

static FLOWS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        time_field(),
        Field::new("duration_us", DataType::UInt64, false),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("src_port", DataType::UInt16, false),
        Field::new("dst_ip", DataType::Utf8, false),
        Field::new("dst_port", DataType::UInt16, false),
        Field::new("proto", DataType::UInt8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("flow_id", DataType::UInt64, true),
        Field::new("dns_qtype", DataType::UInt16, true),
        Field::new("dns_rcode", DataType::UInt16, true),
        Field::new("http_status", DataType::UInt16, true),
    ];
    fields.extend(row_fields());
    Arc::new(Schema::new(fields))
});

static ALERTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        time_field(),
        Field::new("src_ip", DataType::Utf8, true),
        Field::new("src_port", DataType::UInt16, true),
        Field::new("dst_ip", DataType::Utf8, true),
        Field::new("dst_port", DataType::UInt16, true),
        Field::new("proto", DataType::UInt8, true),
        Field::new("direction", DataType::Utf8, true),
        Field::new("flow_id", DataType::UInt64, true),
        Field::new("plugin", DataType::Utf8, false),
        Field::new("plugin_version", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("signature", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("urgency", DataType::Utf8, true),
        Field::new("confidence", DataType::UInt8, false),
        Field::new("evidence", DataType::Utf8, false),
    ];
    fields.extend(row_fields());
    Arc::new(Schema::new(fields))
});

fn append_ip(builder: &mut StringBuilder, ip: IpAddr) {
    match ip {
        // Most addresses: digits by hand, a third of `Display`'s cost.
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            // Only ASCII digits and dots were written.
            builder.append_value(std::str::from_utf8(&text[..len]).unwrap_or_default());
        }
        IpAddr::V6(_) => {
            // Formatting into the builder's buffer: no string per row.
            let _ = write!(builder, "{ip}");
            builder.append_value("");
        }
    }
}

fn country(code: u16) -> Option<[u8; 2]> {
    (code != 0).then(|| code.to_be_bytes())
}

fn append_country(builder: &mut StringBuilder, code: u16) {
    let code = country(code);
    match code.as_ref().and_then(|c| std::str::from_utf8(c).ok()) {
        Some(c) => builder.append_value(c),
        None => builder.append_null(),
    }
}

/// Columns filled from a flow row, shared by both tables.
#[derive(Debug, Default)]
struct RowColumns {
    src_bytes: UInt64Builder,
    dst_bytes: UInt64Builder,
    src_pkts: UInt32Builder,
    dst_pkts: UInt32Builder,
    src_country: StringBuilder,
    dst_country: StringBuilder,
    text: [StringBuilder; TEXT_COLUMNS.len()],
}

impl RowColumns {
    fn append(&mut self, batch: &FlowBatch, row: usize) {
        self.src_bytes.append_value(batch.src_bytes[row]);
        self.dst_bytes.append_value(batch.dst_bytes[row]);
        self.src_pkts.append_value(batch.src_pkts[row]);
        self.dst_pkts.append_value(batch.dst_pkts[row]);
        append_country(&mut self.src_country, batch.src_country[row]);
        append_country(&mut self.dst_country, batch.dst_country[row]);
        for (builder, (_, field)) in self.text.iter_mut().zip(TEXT_COLUMNS) {
            builder.append_option(batch.text(row, field));
        }
    }

    /// Appends `rows` of `batch` column by column: a field no row of the
    /// batch carries is one run of nulls.
    fn append_rows(&mut self, batch: &FlowBatch, rows: &[usize]) {
        for &row in rows {
            self.src_bytes.append_value(batch.src_bytes[row]);
            self.dst_bytes.append_value(batch.dst_bytes[row]);
            self.src_pkts.append_value(batch.src_pkts[row]);
            self.dst_pkts.append_value(batch.dst_pkts[row]);
            append_country(&mut self.src_country, batch.src_country[row]);
            append_country(&mut self.dst_country, batch.dst_country[row]);
        }
        for (builder, (_, field)) in self.text.iter_mut().zip(TEXT_COLUMNS) {
            if batch.has_text(field) {
                for &row in rows {
                    builder.append_option(batch.text(row, field));
                }
            } else {
                builder.append_nulls(rows.len());
            }
        }
    }

    fn append_null(&mut self) {
        self.src_bytes.append_null();
        self.dst_bytes.append_null();
        self.src_pkts.append_null();
        self.dst_pkts.append_null();
        self.src_country.append_null();
        self.dst_country.append_null();
        for builder in &mut self.text {
            builder.append_null();
        }
    }

    fn finish(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(Arc::new(self.src_bytes.finish()));
        columns.push(Arc::new(self.dst_bytes.finish()));
        columns.push(Arc::new(self.src_pkts.finish()));
        columns.push(Arc::new(self.dst_pkts.finish()));
        columns.push(Arc::new(self.src_country.finish()));
        columns.push(Arc::new(self.dst_country.finish()));
        for builder in &mut self.text {
            columns.push(Arc::new(builder.finish()));
        }
    }
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// Rows of a table being gathered for the next record batch.
pub trait Rows: Default + Send {
    /// The table.
    const TABLE: Table;
    /// Rows gathered.
    fn len(&self) -> usize;
    /// Whether no row is gathered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The gathered rows as a record batch; the builder starts empty again.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
}

/// Rows of the `flows` table.
#[derive(Debug)]
pub struct FlowRows {
    ts: TimestampMicrosecondBuilder,
    duration: UInt64Builder,
    src_ip: StringBuilder,
    src_port: UInt16Builder,
    dst_ip: StringBuilder,
    dst_port: UInt16Builder,
    proto: UInt8Builder,
    kind: StringBuilder,
    direction: StringBuilder,
    flow_id: UInt64Builder,
    dns_qtype: UInt16Builder,
    dns_rcode: UInt16Builder,
    http_status: UInt16Builder,
    row: RowColumns,
}

impl Default for FlowRows {
    fn default() -> Self {
        Self {
            ts: timestamps(),
            duration: UInt64Builder::new(),
            src_ip: StringBuilder::new(),
            src_port: UInt16Builder::new(),
            dst_ip: StringBuilder::new(),
            dst_port: UInt16Builder::new(),
            proto: UInt8Builder::new(),
            kind: StringBuilder::new(),
            direction: StringBuilder::new(),
            flow_id: UInt64Builder::new(),
            dns_qtype: UInt16Builder::new(),
            dns_rcode: UInt16Builder::new(),
            http_status: UInt16Builder::new(),
            row: RowColumns::default(),
        }
    }
}

impl FlowRows {
    /// Appends `rows` of `batch`, in order.
    pub fn append_rows(&mut self, batch: &FlowBatch, rows: &[usize]) {
        for &row in rows {
            self.ts.append_value(batch.ts[row]);
            self.duration.append_value(batch.duration[row]);
            append_ip(&mut self.src_ip, batch.src(row));
            self.src_port.append_value(batch.src_port[row]);
            append_ip(&mut self.dst_ip, batch.dst(row));
            self.dst_port.append_value(batch.dst_port[row]);
            self.proto.append_value(batch.proto[row]);
            self.kind.append_value(batch.kind(row).name());
            self.direction.append_value(batch.direction(row).name());
            self.flow_id
                .append_option(Some(batch.flow_id[row]).filter(|id| *id != 0));
            self.dns_qtype
                .append_option(Some(batch.dns_qtype[row]).filter(|q| *q != 0));
            self.dns_rcode
                .append_option(Some(batch.dns_rcode[row]).filter(|r| *r != u16::MAX));
            self.http_status
                .append_option(Some(batch.http_status[row]).filter(|s| *s != 0));
        }
        self.row.append_rows(batch, rows);
    }
}

impl Rows for FlowRows {
    const TABLE: Table = Table::Flows;

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.src_port.finish()),
            Arc::new(self.dst_ip.finish()),
            Arc::new(self.dst_port.finish()),
            Arc::new(self.proto.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.direction.finish()),
            Arc::new(self.flow_id.finish()),
            Arc::new(self.dns_qtype.finish()),
            Arc::new(self.dns_rcode.finish()),
            Arc::new(self.http_status.finish()),
        ];
        self.row.finish(&mut columns);
        RecordBatch::try_new(FLOWS.clone(), columns)
    }
}

/// Rows of the `alerts` table.
#[derive(Debug)]
pub struct AlertRows {
    ts: TimestampMicrosecondBuilder,
    src_ip: StringBuilder,
    src_port: UInt16Builder,
    dst_ip: StringBuilder,
    dst_port: UInt16Builder,
    proto: UInt8Builder,
    direction: StringBuilder,
    flow_id: UInt64Builder,
    plugin: StringBuilder,
    plugin_version: StringBuilder,
    rule_id: StringBuilder,
    signature: StringBuilder,
    category: StringBuilder,
    severity: StringBuilder,
    urgency: StringBuilder,
    confidence: UInt8Builder,
    evidence: StringBuilder,
    row: RowColumns,
}

impl Default for AlertRows {
    fn default() -> Self {
        Self {
            ts: timestamps(),
            src_ip: StringBuilder::new(),
            src_port: UInt16Builder::new(),
            dst_ip: StringBuilder::new(),
            dst_port: UInt16Builder::new(),
            proto: UInt8Builder::new(),
            direction: StringBuilder::new(),
            flow_id: UInt64Builder::new(),
            plugin: StringBuilder::new(),
            plugin_version: StringBuilder::new(),
            rule_id: StringBuilder::new(),
            signature: StringBuilder::new(),
            category: StringBuilder::new(),
            severity: StringBuilder::new(),
            urgency: StringBuilder::new(),
            confidence: UInt8Builder::new(),
            evidence: StringBuilder::new(),
            row: RowColumns::default(),
        }
    }
}

impl AlertRows {
    /// Appends `alert`, with the flow row it was raised on, if any.
    pub fn append(&mut self, alert: &Alert, row: Option<(&FlowBatch, usize)>) {
        self.ts.append_value(alert.ts);
        match alert.src_ip {
            Some(ip) => append_ip(&mut self.src_ip, ip),
            None => self.src_ip.append_null(),
        }
        self.src_port.append_option(alert.src_port);
        match alert.dest_ip {
            Some(ip) => append_ip(&mut self.dst_ip, ip),
            None => self.dst_ip.append_null(),
        }
        self.dst_port.append_option(alert.dest_port);
        self.proto.append_option(alert.proto_number);
        self.direction.append_option(alert.direction);
        self.flow_id.append_option(alert.flow_id);
        let k = &alert.kansoku;
        self.plugin.append_value(&k.plugin);
        self.plugin_version.append_value(&k.plugin_version);
        self.rule_id.append_value(&k.rule_id);
        self.signature.append_value(&alert.alert.signature);
        self.category.append_value(&alert.alert.category);
        self.severity.append_value(k.severity);
        self.urgency.append_option(k.urgency);
        self.confidence.append_value(k.confidence);
        let row = row.filter(|(batch, row)| *row < batch.len());
        self.evidence.append_value(evidence(alert, row));
        match row {
            Some((batch, row)) => self.row.append(batch, row),
            None => self.row.append_null(),
        }
    }
}

impl Rows for AlertRows {
    const TABLE: Table = Table::Alerts;

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.src_port.finish()),
            Arc::new(self.dst_ip.finish()),
            Arc::new(self.dst_port.finish()),
            Arc::new(self.proto.finish()),
            Arc::new(self.direction.finish()),
            Arc::new(self.flow_id.finish()),
            Arc::new(self.plugin.finish()),
            Arc::new(self.plugin_version.finish()),
            Arc::new(self.rule_id.finish()),
            Arc::new(self.signature.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.urgency.finish()),
            Arc::new(self.confidence.finish()),
            Arc::new(self.evidence.finish()),
        ];
        self.row.finish(&mut columns);
        RecordBatch::try_new(ALERTS.clone(), columns)
    }
}

/// The alert's evidence as JSON, with any value that quotes a sensitive
/// field of its flow redacted: a plugin granted a field may cite it, but
/// the evidence column is stored in the clear.
fn evidence(alert: &Alert, row: Option<(&FlowBatch, usize)>) -> String {
    let sensitive: Vec<&str> = row
        .map(|(batch, row)| {
            TEXT_COLUMNS
                .iter()
                .filter(|(_, field)| field.is_sensitive())
                .filter_map(|(_, field)| batch.text(row, *field))
                .collect()
        })
        .unwrap_or_default();
    let mut evidence = alert.kansoku.evidence.clone();
    for value in evidence.values_mut() {
        if let serde_json::Value::String(s) = value
            && sensitive.iter().any(|secret| s.contains(secret))
        {
            *s = "<redacted: conditionally viewable>".into();
        }
    }
    // A map of strings always serialises.
    serde_json::to_string(&evidence).unwrap_or_default()
}

/// The UTC date of a time.
pub fn day_of(ts: Micros) -> jiff::civil::Date {
    jiff::Timestamp::from_microsecond(ts)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap_or_default()
}

/// The UTC day of a time, as days since 1970-01-01.
pub fn epoch_day(ts: Micros) -> i32 {
    i32::try_from(ts.div_euclid(86_400_000_000)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Placement;
    use crate::flow::FlowRecord;
    use crate::scope::Direction;

    #[test]
    fn schemas_hold_the_sensitive_columns_and_no_payload() {
        for table in Table::ALL {
            let schema = table.schema();
            for column in ENCRYPTED {
                assert!(schema.field_with_name(column).is_ok(), "{table}: {column}");
            }
            for forbidden in ["payload", "http_uri", "http_user_agent", "dns_answers"] {
                assert!(schema.field_with_name(forbidden).is_err(), "{forbidden}");
            }
            assert_eq!(Table::from_name(table.name()), Some(table));
        }
    }

    #[test]
    fn flow_rows_carry_what_the_batch_holds() {
        let mut record = FlowRecord::new(
            1_764_806_400_000_000,
            "192.0.2.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        record.src_port = 25;
        record.text.set(TextField::MailFrom, "a@example.org");
        record.text.set(TextField::HttpUri, "/secret");
        let placement = Placement {
            institution: 0,
            peer_institution: None,
            direction: Direction::Inbound,
            src_country: Some(*b"JP"),
            dst_country: None,
            input: 0,
            line: 1,
        };
        let mut batch = FlowBatch::default();
        batch.push(&record, &placement);
        let mut rows = FlowRows::default();
        rows.append_rows(&batch, &[0]);
        let out = rows.finish().unwrap();
        assert_eq!(out.num_rows(), 1);
        let text = |name: &str| {
            out.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .iter()
                .next()
                .flatten()
                .map(str::to_owned)
        };
        assert_eq!(text("src_ip").as_deref(), Some("192.0.2.1"));
        assert_eq!(text("dst_ip").as_deref(), Some("2001:db8::1"));
        assert_eq!(text("mail_from").as_deref(), Some("a@example.org"));
        assert_eq!(text("src_country").as_deref(), Some("JP"));
        assert_eq!(text("dst_country"), None);
        assert_eq!(text("direction").as_deref(), Some("inbound"));
        assert!(rows.is_empty());
        assert_eq!(epoch_day(1_764_806_400_000_000), 20_426);
        assert_eq!(epoch_day(-1), -1);
    }
}
