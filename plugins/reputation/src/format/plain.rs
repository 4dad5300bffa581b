//! Plain lists: one indicator per line, `#` comments (whole line or after
//! the value), Spamhaus DROP's `CIDR ; SBL id` (the id kept as the label),
//! and hosts-file lines (`0.0.0.0 name`).

use crate::index::Builder;
use crate::settings::ListSettings;

use super::Item;

pub fn read(name: &str, text: &str, settings: &ListSettings, builder: &mut Builder) {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let (value, label) = match line.split_once(';') {
            Some((value, label)) => (value, Some(label.trim())),
            None => (line, None),
        };
        let mut tokens = value.split_whitespace();
        let Some(first) = tokens.next() else {
            continue;
        };
        let value = match (first, tokens.next()) {
            ("0.0.0.0" | "127.0.0.1" | "::" | "::1", Some(host)) => host,
            _ => first,
        };
        let location = format!("{name}:{}", n + 1);
        match super::indicator(value, settings) {
            Ok(indicator) => builder.add(Item {
                indicator: Some(indicator),
                label: label.filter(|l| !l.is_empty()).map(str::to_owned),
                ..Item::default()
            }),
            Err(reason) => builder.skip(&location, value, reason),
        }
    }
}
