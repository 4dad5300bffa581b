//! The dns-anomaly rulesets: thresholds (`default.toml`) and the DGA model
//! (`dga-model.toml`, told apart by its `[dga_model]` table).

use kansoku_plugin::{ConfigError, Ruleset};
use serde::Deserialize;

use crate::dga::Model;

/// Thresholds and limits. Every field has a default, so an empty ruleset is
/// valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Length of the counting windows, in seconds of data time.
    pub window_secs: u32,
    /// Most (institution, registered domain) entries kept.
    pub max_domains: usize,
    /// Most (institution, client) DGA windows kept.
    pub max_clients: usize,
    /// Most (client, domain) tunnelling windows kept.
    pub max_tunnels: usize,
    /// Domains (and everything under them) never reported: registered
    /// domains or public suffixes whose labels are random by design.
    pub allow: Vec<String>,
    /// Random-subdomain floods against a domain's authoritative servers.
    pub water_torture: WaterTorture,
    /// Clients resolving many generated names that do not exist.
    pub dga: Dga,
    /// Data carried in query names.
    pub tunnel: Tunnel,
}

/// When a random-subdomain attack is reported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaterTorture {
    /// Whether it is detected at all.
    pub enabled: bool,
    /// Distinct names under the domain within one window.
    pub min_unique_subdomains: u32,
    /// Share of those queries answered NXDOMAIN or SERVFAIL.
    pub min_failure_ratio: f32,
    /// The domain must also exceed its learned per-window baseline of
    /// distinct names this many times.
    pub baseline_factor: f32,
}

/// When a DGA-infected client is reported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dga {
    /// Whether it is detected at all.
    pub enabled: bool,
    /// Distinct registered domains that failed (NXDOMAIN) and scored as
    /// generated, within one window.
    pub min_failed_names: u32,
    /// Score from which a name counts as generated; 0 takes the model's own
    /// threshold.
    pub min_score: f32,
}

/// When a tunnel is reported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tunnel {
    /// Whether it is detected at all.
    pub enabled: bool,
    /// Names shorter than this below the registered domain are not
    /// tunnelling candidates (they cannot carry much).
    pub min_subdomain_len: u32,
    /// Distinct candidate names from one client under one domain.
    pub min_unique_names: u32,
    /// Mean length of their subdomain part.
    pub min_mean_len: f32,
    /// Mean Shannon entropy of their subdomain part, bits per character.
    pub min_mean_entropy: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window_secs: 60,
            max_domains: 200_000,
            max_clients: 100_000,
            max_tunnels: 100_000,
            allow: Vec::new(),
            water_torture: WaterTorture::default(),
            dga: Dga::default(),
            tunnel: Tunnel::default(),
        }
    }
}

impl Default for WaterTorture {
    fn default() -> Self {
        Self {
            enabled: true,
            min_unique_subdomains: 100,
            min_failure_ratio: 0.5,
            baseline_factor: 4.0,
        }
    }
}

impl Default for Dga {
    fn default() -> Self {
        Self {
            enabled: true,
            min_failed_names: 10,
            min_score: 0.0,
        }
    }
}

impl Default for Tunnel {
    fn default() -> Self {
        Self {
            enabled: true,
            min_subdomain_len: 20,
            min_unique_names: 30,
            min_mean_len: 24.0,
            min_mean_entropy: 3.5,
        }
    }
}

/// Everything `configure` was given.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Thresholds.
    pub thresholds: Thresholds,
    /// The DGA model; without one, DGA detection is off.
    pub model: Option<Model>,
}

fn at(ruleset: &Ruleset, text: &str, offset: Option<usize>) -> String {
    match offset {
        Some(start) => {
            let line = text[..start.min(text.len())].matches('\n').count() + 1;
            format!("{}:{line}", ruleset.name)
        }
        None => ruleset.name.clone(),
    }
}

impl Rules {
    /// Reads the rulesets: at most one of thresholds and one model.
    pub fn from_rulesets(rulesets: &[Ruleset]) -> Result<Self, ConfigError> {
        let mut thresholds = None;
        let mut model = None;
        for ruleset in rulesets {
            let text = std::str::from_utf8(&ruleset.content)
                .map_err(|e| ConfigError::new(&ruleset.name, format!("not UTF-8: {e}")))?;
            if Model::is_model_file(text) {
                if model.is_some() {
                    return Err(ConfigError::new(
                        &ruleset.name,
                        "a second DGA model: dns-anomaly takes one",
                    ));
                }
                let parsed = Model::parse(text).map_err(|(line, message)| {
                    let location = match line {
                        Some(line) => format!("{}:{line}", ruleset.name),
                        None => ruleset.name.clone(),
                    };
                    ConfigError::new(&location, message)
                })?;
                model = Some(parsed);
            } else {
                if thresholds.is_some() {
                    return Err(ConfigError::new(
                        &ruleset.name,
                        "a second thresholds file: merge them into one",
                    ));
                }
                let parsed: Thresholds = toml::from_str(text).map_err(|e| {
                    let location = at(ruleset, text, e.span().map(|s| s.start));
                    ConfigError::new(&location, e.message().to_owned())
                })?;
                parsed.validate(&ruleset.name)?;
                thresholds = Some(parsed);
            }
        }
        Ok(Self {
            thresholds: thresholds.unwrap_or_default(),
            model,
        })
    }

    /// The score from which a failing name counts as generated.
    pub fn dga_threshold(&self) -> Option<f32> {
        let model = self.model.as_ref()?;
        let t = self.thresholds.dga.min_score;
        Some(if t > 0.0 { t } else { model.threshold })
    }

    /// One line for the load report.
    pub fn summary(&self) -> String {
        let t = &self.thresholds;
        format!(
            "window {}s; water torture {} names at {:.0}% failures ({}); DGA {} failed names ({}{}); \
             tunnel {} names of mean length {} ({}); {} allow-listed domains",
            t.window_secs,
            t.water_torture.min_unique_subdomains,
            t.water_torture.min_failure_ratio * 100.0,
            on_off(t.water_torture.enabled),
            t.dga.min_failed_names,
            on_off(t.dga.enabled && self.model.is_some()),
            if self.model.is_none() {
                ", no model"
            } else {
                ""
            },
            t.tunnel.min_unique_names,
            t.tunnel.min_mean_len,
            on_off(t.tunnel.enabled),
            t.allow.len(),
        )
    }
}

impl Thresholds {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError::new(name, msg));
        if self.window_secs == 0 {
            return fail("window_secs must be at least 1");
        }
        if self.max_domains == 0 || self.max_clients == 0 || self.max_tunnels == 0 {
            return fail("max_domains, max_clients and max_tunnels must be positive");
        }
        if !(0.0..=1.0).contains(&self.water_torture.min_failure_ratio) {
            return fail("water_torture.min_failure_ratio must be within 0..=1");
        }
        if self.water_torture.min_unique_subdomains < 2
            || self.dga.min_failed_names < 2
            || self.tunnel.min_unique_names < 2
        {
            return fail("distinct-name thresholds must be at least 2");
        }
        if !(0.0..=1.0).contains(&self.dga.min_score) {
            return fail("dga.min_score must be within 0..=1");
        }
        if let Some(bad) = self.allow.iter().find(|d| {
            d.is_empty() || d.starts_with('.') || d.bytes().any(|b| b.is_ascii_uppercase())
        }) {
            return Err(ConfigError::new(
                name,
                format!("allow: {bad:?} must be a lower-case domain without a leading dot"),
            ));
        }
        Ok(())
    }
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(name: &str, text: &str) -> Ruleset {
        Ruleset {
            name: name.into(),
            content: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_shipped_rulesets_parse() {
        let rules = Rules::from_rulesets(&[
            ruleset(
                "default.toml",
                include_str!("../../../rulesets/dns-anomaly/default.toml"),
            ),
            ruleset(
                "dga-model.toml",
                include_str!("../../../rulesets/dns-anomaly/dga-model.toml"),
            ),
        ])
        .unwrap();
        assert!(rules.model.is_some());
        assert!(rules.thresholds.allow.iter().any(|d| d == "in-addr.arpa"));
        assert_eq!(rules.thresholds.water_torture.min_unique_subdomains, 100);
    }

    #[test]
    fn errors_name_the_line() {
        let err = Rules::from_rulesets(&[ruleset("r.toml", "window_secs = 5\n\nbogus = 1\n")])
            .unwrap_err();
        assert_eq!(err.location, "r.toml:3");
        assert!(err.message.contains("unknown field"), "{}", err.message);
        let err = Rules::from_rulesets(&[ruleset("m.toml", "[dga_model]\nformat = \"x\"\n")])
            .unwrap_err();
        assert_eq!(err.location, "m.toml:2");
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "window_secs = 0\n",
            "[water_torture]\nmin_failure_ratio = 2.0\n",
            "allow = [\"Example.COM\"]\n",
            "[dga]\nmin_failed_names = 1\n",
        ] {
            assert!(
                Rules::from_rulesets(&[ruleset("r.toml", text)]).is_err(),
                "{text}"
            );
        }
        assert!(Rules::from_rulesets(&[ruleset("a", ""), ruleset("b", "")]).is_err());
    }
}
