//! Building findings.

use std::fmt::Display;

use crate::batch::Flow;
use crate::{Address, Entity, Finding, Severity, Subject, Timestamp};

impl From<Flow<'_>> for Subject {
    fn from(flow: Flow<'_>) -> Self {
        Subject::Row(flow.row())
    }
}

impl From<&Flow<'_>> for Subject {
    fn from(flow: &Flow<'_>) -> Self {
        Subject::Row(flow.row())
    }
}

impl From<Entity> for Subject {
    fn from(entity: Entity) -> Self {
        Subject::Entity(entity)
    }
}

impl Entity {
    /// An entity of `institution` acting from `src`, seen once at `ts`.
    pub fn new(institution: u16, src: Address, ts: Timestamp) -> Self {
        Self {
            institution,
            src,
            dst: None,
            dst_port: None,
            proto: 0,
            first_seen: ts,
            last_seen: ts,
            flows: 1,
        }
    }
}

impl Finding {
    /// A finding about `subject` (a [`Flow`] or an [`Entity`]) raised by
    /// rule `rule_id`, with medium severity and confidence 50 until set.
    pub fn new(subject: impl Into<Subject>, rule_id: &str, title: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            rule_id: rule_id.to_owned(),
            title: title.into(),
            category: String::new(),
            severity: Severity::Medium,
            confidence: 50,
            // Room for a typical finding's evidence without regrowing: a
            // noisy rule makes thousands of findings a second.
            evidence: Vec::with_capacity(8),
        }
    }

    /// Sets the category (`attempted-recon`, `c2`…).
    #[must_use]
    pub fn category(mut self, category: &str) -> Self {
        self.category = category.to_owned();
        self
    }

    /// Sets the severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets the confidence in percent (values above 100 become 100).
    #[must_use]
    pub fn confidence(mut self, percent: u8) -> Self {
        self.confidence = percent.min(100);
        self
    }

    /// Adds one evidence pair. Evidence explains the finding to an analyst;
    /// it must never carry payload.
    #[must_use]
    pub fn evidence(mut self, key: &str, value: impl Display) -> Self {
        self.evidence.push((key.to_owned(), value.to_string()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    #[test]
    fn a_finding_about_a_flow_names_its_row() {
        let mut builder = BatchBuilder::new();
        builder.flow(
            "192.0.2.1".parse().unwrap(),
            1,
            "192.0.2.2".parse().unwrap(),
            2,
        );
        builder.flow(
            "192.0.2.1".parse().unwrap(),
            1,
            "192.0.2.2".parse().unwrap(),
            3,
        );
        let batch = builder.build();
        let flow = batch.get(1).unwrap();
        let finding = Finding::new(flow, "r1", "title")
            .severity(Severity::High)
            .confidence(250)
            .evidence("port", flow.dst_port());
        assert_eq!(finding.subject, Subject::Row(1));
        assert_eq!(finding.confidence, 100);
        assert_eq!(finding.evidence, [("port".to_owned(), "3".to_owned())]);
    }
}
