//! STIX 2.1 bundles (and 2.0 ones, read leniently: `labels` for
//! `indicator_types`, no `pattern_type`). Each `indicator` with a STIX
//! pattern becomes one item per alternative of its pattern, valid from
//! `valid_from` to `valid_until`; a `malware` it `indicates` names it.
//! Revoked, benign, non-STIX and unsupported patterns are skipped with the
//! indicator's id and the reason.

use std::collections::HashMap;

use kansoku_plugin::ConfigError;
use serde::Deserialize;

use crate::entry::Category;
use crate::index::Builder;
use crate::time;

use super::{Item, pattern};

#[derive(Debug, Deserialize)]
struct Bundle {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    objects: Vec<Object>,
}

#[derive(Debug, Deserialize)]
struct Object {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: String,
    name: Option<String>,
    pattern: Option<String>,
    pattern_type: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    indicator_types: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    confidence: Option<u8>,
    #[serde(default)]
    revoked: bool,
    relationship_type: Option<String>,
    source_ref: Option<String>,
    target_ref: Option<String>,
    malware_types: Option<Vec<String>>,
}

pub fn read(name: &str, text: &str, builder: &mut Builder) -> Result<(), ConfigError> {
    let bundle: Bundle = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // The place goes into the location, not twice into the message.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        ConfigError::new(
            &format!("{name}:{}:{}", e.line(), e.column()),
            format!("not a STIX bundle: {message}"),
        )
    })?;
    if bundle.kind != "bundle" {
        return Err(ConfigError::new(
            name,
            format!("not a STIX bundle: its type is `{}`", bundle.kind),
        ));
    }
    let by_id: HashMap<&str, &Object> = bundle.objects.iter().map(|o| (o.id.as_str(), o)).collect();
    // indicator id -> the malware it indicates
    let mut indicates: HashMap<&str, &Object> = HashMap::new();
    for o in &bundle.objects {
        if o.kind == "relationship"
            && o.relationship_type.as_deref() == Some("indicates")
            && let (Some(source), Some(target)) = (&o.source_ref, &o.target_ref)
            && let Some(malware) = by_id.get(target.as_str())
            && malware.kind == "malware"
        {
            indicates.insert(source.as_str(), malware);
        }
    }
    let mut indicators = 0;
    for o in bundle.objects.iter().filter(|o| o.kind == "indicator") {
        indicators += 1;
        let location = format!("{name}: {}", o.id);
        let skip = |builder: &mut Builder, reason: String| {
            builder.skip(&location, o.pattern.as_deref().unwrap_or_default(), reason);
        };
        if o.revoked {
            skip(builder, "revoked".into());
            continue;
        }
        if let Some(kind) = o.pattern_type.as_deref()
            && kind != "stix"
        {
            skip(
                builder,
                format!("pattern type `{kind}` (only stix patterns are read)"),
            );
            continue;
        }
        let types = o.indicator_types.as_ref().or(o.labels.as_ref());
        if types.is_some_and(|t| t.iter().any(|t| t == "benign")) {
            skip(builder, "benign indicator".into());
            continue;
        }
        let Some(text) = &o.pattern else {
            skip(builder, "no pattern".into());
            continue;
        };
        let dnf = match pattern::parse(text) {
            Ok(dnf) => dnf,
            Err(reason) => {
                skip(builder, reason);
                continue;
            }
        };
        let stamp = |value: &Option<String>, what: &str| {
            value
                .as_deref()
                .map(|v| time::parse(v).map_err(|e| format!("{what}: {e}")))
                .transpose()
        };
        let (from, until) = match (
            stamp(&o.valid_from, "valid_from"),
            stamp(&o.valid_until, "valid_until"),
        ) {
            (Ok(from), Ok(until)) => (from, until),
            (Err(reason), _) | (_, Err(reason)) => {
                skip(builder, reason);
                continue;
            }
        };
        let malware = indicates.get(o.id.as_str());
        let category = category(
            types.map(Vec::as_slice).unwrap_or_default(),
            malware.copied(),
        );
        let label = malware
            .and_then(|m| m.name.clone())
            .or_else(|| o.name.clone());
        for mut conjunction in dnf {
            if conjunction.is_empty() {
                continue;
            }
            let first = conjunction.remove(0);
            builder.add(Item {
                indicator: Some(first),
                and: conjunction,
                category: category.clone(),
                confidence: o.confidence.filter(|&c| c <= 100),
                from,
                until,
                last_seen: None,
                label: label.clone(),
            });
        }
    }
    if indicators == 0 {
        builder.note(format!("{name}: the bundle holds no indicator"));
    }
    Ok(())
}

/// The category an indicator's types (or the malware it indicates) say.
fn category(types: &[String], malware: Option<&Object>) -> Option<Category> {
    let from_types = types
        .iter()
        .map(|t| Category::parse(t))
        .find(|c| !matches!(c, Category::Other(_)));
    let from_malware = malware.map(|m| {
        let kinds = m.malware_types.as_ref().or(m.labels.as_ref());
        if kinds.is_some_and(|k| {
            k.iter()
                .any(|k| k == "bot" || k == "remote-access-trojan" || k == "backdoor")
        }) {
            Category::C2
        } else {
            Category::Malware
        }
    });
    match (from_types, from_malware) {
        (Some(Category::Malware), Some(m)) => Some(m),
        (Some(t), _) => Some(t),
        (None, m) => m,
    }
}
