//! The portscan ruleset: a small TOML file of thresholds.

use kansoku_plugin::{ConfigError, Ruleset};
use serde::Deserialize;

/// Thresholds and limits. Every field has a default, so an empty ruleset is
/// valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Length of the counting window, in seconds of data time.
    pub window_secs: u32,
    /// Most sources tracked at once; beyond it the least recently active
    /// are evicted.
    pub max_sources: usize,
    /// Most distinct (host, port) targets remembered per source.
    pub max_targets: usize,
    /// One source, one destination host, many ports.
    pub vertical: Threshold,
    /// One source, one port, many destination hosts.
    pub horizontal: Threshold,
}

/// When a scan kind fires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threshold {
    /// Whether this kind is detected at all.
    pub enabled: bool,
    /// Distinct ports (vertical) or hosts (horizontal) within one window.
    #[serde(alias = "min_ports", alias = "min_hosts")]
    pub min_distinct: u32,
}

impl Default for Threshold {
    fn default() -> Self {
        Self {
            enabled: true,
            min_distinct: 25,
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            window_secs: 21600,
            max_sources: 100_000,
            max_targets: 4096,
            vertical: Threshold::default(),
            horizontal: Threshold::default(),
        }
    }
}

impl Rules {
    /// Whether no scan can be reported on a source's first attempt (every
    /// enabled threshold needs two distinct ports or hosts).
    pub fn needs_two_attempts(&self) -> bool {
        [&self.vertical, &self.horizontal]
            .iter()
            .all(|t| !t.enabled || t.min_distinct >= 2)
    }

    /// Reads the single ruleset the plugin takes; none means defaults.
    pub fn from_rulesets(rulesets: &[Ruleset]) -> Result<Self, ConfigError> {
        let ruleset = match rulesets {
            [] => return Ok(Self::default()),
            [one] => one,
            [_, second, ..] => {
                return Err(ConfigError::new(
                    &second.name,
                    "portscan takes one ruleset; merge the thresholds into one file",
                ));
            }
        };
        let text = std::str::from_utf8(&ruleset.content)
            .map_err(|e| ConfigError::new(&ruleset.name, format!("not UTF-8: {e}")))?;
        let rules: Rules = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!("{}:{line}", ruleset.name)
                }
                None => ruleset.name.clone(),
            };
            ConfigError::new(&location, e.message().to_owned())
        })?;
        rules.validate(&ruleset.name)?;
        Ok(rules)
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.window_secs == 0 {
            return Err(ConfigError::new(name, "window_secs must be at least 1"));
        }
        for (kind, t) in [
            ("vertical", &self.vertical),
            ("horizontal", &self.horizontal),
        ] {
            if t.enabled && t.min_distinct < 2 {
                return Err(ConfigError::new(
                    name,
                    format!("{kind}: threshold must be at least 2"),
                ));
            }
        }
        if self.max_sources == 0 || self.max_targets == 0 {
            return Err(ConfigError::new(
                name,
                "max_sources and max_targets must be positive",
            ));
        }
        Ok(())
    }

    /// One line for the load report.
    pub fn summary(&self) -> String {
        format!(
            "window {}s; vertical {} ports ({}); horizontal {} hosts ({})",
            self.window_secs,
            self.vertical.min_distinct,
            on_off(self.vertical.enabled),
            self.horizontal.min_distinct,
            on_off(self.horizontal.enabled),
        )
    }
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(text: &str) -> Vec<Ruleset> {
        vec![Ruleset {
            name: "r.toml".into(),
            content: text.as_bytes().to_vec(),
        }]
    }

    #[test]
    fn the_shipped_default_parses() {
        let text = include_str!("../../../rulesets/portscan/default.toml");
        let rules = Rules::from_rulesets(&ruleset(text)).unwrap();
        assert!(rules.vertical.enabled && rules.horizontal.enabled);
    }

    #[test]
    fn errors_name_the_line() {
        let err = Rules::from_rulesets(&ruleset("window_secs = 5\n\nbogus = 1\n")).unwrap_err();
        assert_eq!(err.location, "r.toml:3");
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }

    #[test]
    fn a_zero_window_is_refused() {
        let err = Rules::from_rulesets(&ruleset("window_secs = 0\n")).unwrap_err();
        assert!(err.message.contains("window_secs"));
    }
}
