//! `portscan`: a built-in kansoku detector for port scans.
//!
//! A scanner shows up in flow data as many *unanswered* connection attempts
//! from one source: to many ports of one host (a vertical scan) or to one
//! port on many hosts (a horizontal scan). Counting only unanswered attempts
//! (no reply, rejected, reset before the handshake) keeps busy clients, which
//! legitimately reach many CDN hosts on port 443, out of it.
//!
//! State is a tumbling window per (institution, source): distinct
//! (destination, port) targets, with counts per destination and per port.
//! One finding is raised per scan kind and window, when its threshold is
//! crossed. The window, thresholds and memory caps come from the ruleset
//! (`rulesets/portscan/default.toml`).

mod rules;
mod state;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Direction, Entity, Finding, Kind, LoadReport,
    Ruleset, Severity, Timestamp,
};

pub use rules::Rules;
use state::{Crossed, Scanners};

/// The detector.
#[derive(Debug, Default)]
pub struct PortScan {
    rules: Rules,
    scanners: Scanners,
}

impl Detector for PortScan {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Vertical and horizontal port scans from unanswered connection attempts")
            .stateful()
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let rules = Rules::from_rulesets(&rulesets)?;
        let report = LoadReport {
            loaded: 2,
            skipped: Vec::new(),
            notes: vec![rules.summary()],
        };
        self.rules = rules;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let mut findings = Vec::new();
        for flow in batch.iter() {
            if flow.kind() != Kind::Connection || !(flow.is_tcp() || flow.is_udp()) {
                continue;
            }
            let unanswered = flow.conn_state().is_failed_attempt()
                || (flow.conn_state() == kansoku_plugin::ConnState::Unknown
                    && flow.dst_pkts() == 0
                    && flow.dst_bytes() == 0);
            if !unanswered {
                continue;
            }
            let key = (flow.institution(), flow.src_octets());
            let crossed = self.scanners.observe(
                &self.rules,
                key,
                flow.dst_octets(),
                flow.dst_port(),
                flow.ts(),
            );
            for crossing in crossed {
                findings.push(self.finding(&flow, crossing));
            }
        }
        findings
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.scanners.expire(&self.rules, now);
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.scanners.to_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        self.scanners = Scanners::from_bytes(state)
            .map_err(|e| ConfigError::new("snapshot", format!("unreadable state: {e}")))?;
        Ok(())
    }
}

impl PortScan {
    fn finding(&self, flow: &kansoku_plugin::Flow<'_>, crossing: Crossed) -> Finding {
        // Who is scanning decides how much it matters: the Internet scans
        // every university all day, while an internal host scanning out is
        // most likely infected.
        let (severity, confidence) = match flow.direction() {
            Direction::Outbound => (Severity::High, 80),
            Direction::Internal => (Severity::Medium, 70),
            Direction::Inbound | Direction::Unknown => (Severity::Low, 60),
        };
        let window = self.rules.window_secs;
        let mut entity = Entity::new(flow.institution(), flow.src_address(), crossing.first_seen);
        entity.last_seen = flow.ts();
        entity.proto = flow.proto();
        entity.flows = crossing.attempts;
        match crossing.scan {
            state::Scan::Vertical { dst, ports, sample } => {
                entity.dst = Some(dst.into());
                Finding::new(entity, "vertical-scan", "Port scan of one host")
                    .category("attempted-recon")
                    .severity(severity)
                    .confidence(confidence)
                    .evidence("distinct_ports", ports)
                    .evidence("sample_ports", join(&sample))
                    .evidence("window_secs", window)
            }
            state::Scan::Horizontal {
                port,
                hosts,
                sample,
            } => {
                entity.dst_port = Some(port);
                Finding::new(entity, "horizontal-scan", "Sweep of one port across hosts")
                    .category("attempted-recon")
                    .severity(severity)
                    .confidence(confidence)
                    .evidence("port", port)
                    .evidence("distinct_hosts", hosts)
                    .evidence("sample_hosts", join(&sample))
                    .evidence("window_secs", window)
            }
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

kansoku_plugin::export!(PortScan);

#[cfg(test)]
mod tests {
    use super::*;
    use kansoku_plugin::Subject;
    use kansoku_plugin::testing::BatchBuilder;

    const SECOND: i64 = 1_000_000;

    fn configured(ruleset: &str) -> PortScan {
        let mut detector = PortScan::default();
        detector
            .configure(vec![Ruleset {
                name: "test.toml".into(),
                content: ruleset.as_bytes().to_vec(),
            }])
            .unwrap();
        detector
    }

    fn attempts(builder: &mut BatchBuilder, src: &str, targets: &[(&str, u16)], state: u8) {
        for (i, (dst, port)) in targets.iter().enumerate() {
            builder
                .flow(src.parse().unwrap(), 40000, dst.parse().unwrap(), *port)
                .ts(i as i64 * SECOND)
                .direction(1)
                .conn_state(state);
        }
    }

    #[test]
    fn a_vertical_scan_is_reported_once_per_window() {
        let mut detector = configured("window_secs = 60\n[vertical]\nmin_ports = 10\n");
        let targets: Vec<(&str, u16)> = (1..=30).map(|p| ("192.0.2.5", p)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "203.0.113.9", &targets, 1);
        let findings = detector.process(&builder.build());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].rule_id, "vertical-scan");
        assert_eq!(findings[0].severity, Severity::Low);
        let Subject::Entity(entity) = &findings[0].subject else {
            panic!("expected an entity");
        };
        assert_eq!(entity.flows, 10);
        assert!(
            findings[0]
                .evidence
                .contains(&("distinct_ports".into(), "10".into()))
        );
    }

    #[test]
    fn answered_connections_are_not_a_scan() {
        let mut detector = configured("[vertical]\nmin_ports = 10\n[horizontal]\nmin_hosts = 5\n");
        let targets: Vec<(&str, u16)> = (1..=30).map(|p| ("192.0.2.5", p)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "203.0.113.9", &targets, 3); // SF
        assert!(detector.process(&builder.build()).is_empty());
    }

    #[test]
    fn a_horizontal_sweep_is_reported_with_its_port() {
        let mut detector = configured("[horizontal]\nmin_hosts = 5\n");
        let hosts: Vec<String> = (1..=8).map(|h| format!("192.0.2.{h}")).collect();
        let targets: Vec<(&str, u16)> = hosts.iter().map(|h| (h.as_str(), 23)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "10.1.1.1", &targets, 4); // REJ
        let mut batch = builder.build().raw().clone();
        batch.direction.iter_mut().for_each(|d| *d = 2);
        let findings = detector.process(&Batch::new(batch));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule_id, "horizontal-scan");
        assert_eq!(findings[0].severity, Severity::High);
    }

    #[test]
    fn state_survives_snapshot_and_restore() {
        let rules = "window_secs = 600\n[vertical]\nmin_ports = 10\n";
        let mut first = configured(rules);
        let targets: Vec<(&str, u16)> = (1..=6).map(|p| ("192.0.2.5", p)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "203.0.113.9", &targets, 1);
        assert!(first.process(&builder.build()).is_empty());

        let mut second = configured(rules);
        second.restore(&first.snapshot()).unwrap();
        let targets: Vec<(&str, u16)> = (7..=12).map(|p| ("192.0.2.5", p)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "203.0.113.9", &targets, 1);
        assert_eq!(second.process(&builder.build()).len(), 1);
    }

    #[test]
    fn a_corrupt_snapshot_is_refused() {
        let mut detector = PortScan::default();
        assert!(detector.restore(&[0xff; 7]).is_err());
    }

    #[test]
    fn windows_expire() {
        let mut detector = configured("window_secs = 10\n[vertical]\nmin_ports = 10\n");
        let targets: Vec<(&str, u16)> = (1..=6).map(|p| ("192.0.2.5", p)).collect();
        let mut builder = BatchBuilder::new();
        attempts(&mut builder, "203.0.113.9", &targets, 1);
        detector.process(&builder.build());
        assert_eq!(detector.scanners.len(), 1);
        detector.tick(100 * SECOND);
        assert_eq!(detector.scanners.len(), 0);
    }
}
