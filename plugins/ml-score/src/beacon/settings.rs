//! The `[beacon]` section of the ml-score configuration.
//!
//! Every field has a default (RITA v5's where RITA has one), so `[beacon]`
//! alone turns the analysis on. Values out of range are rejected while the
//! TOML is read, so the error names the file and line.

use serde::{Deserialize, Deserializer, de::Error as _};

use super::score::Params;

/// `[beacon]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Settings {
    /// Whether beacon analysis runs.
    pub enabled: bool,
    /// Distinct connection start seconds a pair needs within the window to
    /// be scored (RITA's `unique_connection_threshold`).
    pub min_connections: u32,
    /// Connections per window at which a pair counts as a strobe, not a
    /// beacon, and is not scored.
    pub max_connections: u32,
    /// Lowest score reported (RITA's lowest threat threshold, 0.5).
    pub min_score: f64,
    /// Score from which a beacon is medium severity.
    pub medium_score: f64,
    /// Score from which a beacon is high severity.
    pub high_score: f64,
    /// Weight of the timestamp score.
    pub timestamp_weight: f64,
    /// Weight of the data size score.
    pub datasize_weight: f64,
    /// Weight of the duration score.
    pub duration_weight: f64,
    /// Weight of the histogram score.
    pub histogram_weight: f64,
    /// Hours with connections needed before a duration score is given.
    pub duration_min_hours_seen: u32,
    /// Run of consecutive active hours that earns full consistency.
    pub duration_consistency_ideal_hours_seen: u32,
    /// Bar height tolerance of the bimodal histogram fit.
    pub histogram_mode_sensitivity: f64,
    /// Outlier bars forgiven by the bimodal fit.
    pub histogram_bimodal_outlier_removal: u32,
    /// Hours with connections needed before the bimodal fit counts.
    pub histogram_bimodal_min_hours_seen: u32,
    /// Seconds of data time between two reports.
    pub report_every_secs: u32,
    /// Seconds of silence in the data after which the window is reported.
    pub idle_secs: u32,
    /// How long a TLS/HTTP record waits for its connection record (and the
    /// other way round), in seconds of data time.
    pub join_secs: u32,
    /// Most pairs tracked, per kind (address pairs, name pairs).
    pub max_pairs: usize,
    /// Most connection samples held over all pairs.
    pub max_samples: usize,
    /// Samples a pair gathers before it is sampled one connection in two
    /// (then in four, …): a busy pair cannot take the whole sample budget.
    pub max_samples_per_pair: u32,
    /// Most TLS/HTTP records and connections waiting to be joined.
    pub max_pending: usize,
    /// Leave out connections to multicast and broadcast addresses (router
    /// and service discovery announcements are regular by design).
    pub skip_multicast: bool,
    /// Leave out connections from outside into the institution (RITA's
    /// `filter_external_to_internal`): beacons call out, and the Internet's
    /// one-off scanning is most of the pairs a university sees.
    pub skip_inbound: bool,
    /// Slots of the table where pairs seen once wait (32 bytes each; a
    /// power of two).
    pub probation_slots: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            min_connections: 4,
            max_connections: 86_400,
            min_score: 0.5,
            medium_score: 0.7,
            high_score: 0.9,
            timestamp_weight: 0.25,
            datasize_weight: 0.25,
            duration_weight: 0.25,
            histogram_weight: 0.25,
            duration_min_hours_seen: 6,
            duration_consistency_ideal_hours_seen: 12,
            histogram_mode_sensitivity: 0.05,
            histogram_bimodal_outlier_removal: 1,
            histogram_bimodal_min_hours_seen: 11,
            report_every_secs: 86_400,
            idle_secs: 3_600,
            join_secs: 3_600,
            max_pairs: 100_000,
            max_samples: 2_000_000,
            max_samples_per_pair: 4096,
            max_pending: 100_000,
            skip_multicast: true,
            skip_inbound: true,
            probation_slots: 1 << 18,
        }
    }
}

impl Settings {
    /// Settings that switch beacon analysis off.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// The score parameters.
    pub fn params(&self) -> Params {
        Params {
            weights: [
                self.timestamp_weight,
                self.datasize_weight,
                self.duration_weight,
                self.histogram_weight,
            ],
            duration_min_hours: self.duration_min_hours_seen,
            duration_ideal_hours: self.duration_consistency_ideal_hours_seen,
            mode_sensitivity: self.histogram_mode_sensitivity,
            bimodal_outliers: self.histogram_bimodal_outlier_removal,
            bimodal_min_hours: self.histogram_bimodal_min_hours_seen,
        }
    }
}

/// The section as written, before the checks that involve several fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    enabled: bool,
    #[serde(deserialize_with = "at_least_4")]
    min_connections: u32,
    #[serde(deserialize_with = "positive_u32")]
    max_connections: u32,
    #[serde(deserialize_with = "fraction")]
    min_score: f64,
    #[serde(deserialize_with = "fraction")]
    medium_score: f64,
    #[serde(deserialize_with = "fraction")]
    high_score: f64,
    #[serde(deserialize_with = "fraction")]
    timestamp_weight: f64,
    #[serde(deserialize_with = "fraction")]
    datasize_weight: f64,
    #[serde(deserialize_with = "fraction")]
    duration_weight: f64,
    #[serde(deserialize_with = "fraction")]
    histogram_weight: f64,
    #[serde(deserialize_with = "hours")]
    duration_min_hours_seen: u32,
    #[serde(deserialize_with = "hours")]
    duration_consistency_ideal_hours_seen: u32,
    #[serde(deserialize_with = "fraction")]
    histogram_mode_sensitivity: f64,
    #[serde(deserialize_with = "hours_or_zero")]
    histogram_bimodal_outlier_removal: u32,
    #[serde(deserialize_with = "bimodal_hours")]
    histogram_bimodal_min_hours_seen: u32,
    #[serde(deserialize_with = "positive_u32")]
    report_every_secs: u32,
    #[serde(deserialize_with = "positive_u32")]
    idle_secs: u32,
    #[serde(deserialize_with = "positive_u32")]
    join_secs: u32,
    #[serde(deserialize_with = "positive_usize")]
    max_pairs: usize,
    #[serde(deserialize_with = "positive_usize")]
    max_samples: usize,
    #[serde(deserialize_with = "per_pair")]
    max_samples_per_pair: u32,
    #[serde(deserialize_with = "positive_usize")]
    max_pending: usize,
    skip_multicast: bool,
    skip_inbound: bool,
    #[serde(deserialize_with = "slots")]
    probation_slots: usize,
}

impl Default for Raw {
    fn default() -> Self {
        let d = Settings::default();
        Self {
            enabled: d.enabled,
            min_connections: d.min_connections,
            max_connections: d.max_connections,
            min_score: d.min_score,
            medium_score: d.medium_score,
            high_score: d.high_score,
            timestamp_weight: d.timestamp_weight,
            datasize_weight: d.datasize_weight,
            duration_weight: d.duration_weight,
            histogram_weight: d.histogram_weight,
            duration_min_hours_seen: d.duration_min_hours_seen,
            duration_consistency_ideal_hours_seen: d.duration_consistency_ideal_hours_seen,
            histogram_mode_sensitivity: d.histogram_mode_sensitivity,
            histogram_bimodal_outlier_removal: d.histogram_bimodal_outlier_removal,
            histogram_bimodal_min_hours_seen: d.histogram_bimodal_min_hours_seen,
            report_every_secs: d.report_every_secs,
            idle_secs: d.idle_secs,
            join_secs: d.join_secs,
            max_pairs: d.max_pairs,
            max_samples: d.max_samples,
            max_samples_per_pair: d.max_samples_per_pair,
            max_pending: d.max_pending,
            skip_multicast: d.skip_multicast,
            skip_inbound: d.skip_inbound,
            probation_slots: d.probation_slots,
        }
    }
}

impl TryFrom<Raw> for Settings {
    type Error = String;

    fn try_from(r: Raw) -> Result<Self, String> {
        let sum = r.timestamp_weight + r.datasize_weight + r.duration_weight + r.histogram_weight;
        if (sum - 1.0).abs() > 1e-9 {
            return Err(format!(
                "[beacon] timestamp_weight + datasize_weight + duration_weight + histogram_weight must be 1, not {sum}"
            ));
        }
        if !(r.min_score <= r.medium_score && r.medium_score <= r.high_score) {
            return Err(format!(
                "[beacon] min_score ({}) <= medium_score ({}) <= high_score ({}) does not hold",
                r.min_score, r.medium_score, r.high_score
            ));
        }
        if r.max_connections <= r.min_connections {
            return Err(format!(
                "[beacon] max_connections ({}) must be above min_connections ({})",
                r.max_connections, r.min_connections
            ));
        }
        Ok(Self {
            enabled: r.enabled,
            min_connections: r.min_connections,
            max_connections: r.max_connections,
            min_score: r.min_score,
            medium_score: r.medium_score,
            high_score: r.high_score,
            timestamp_weight: r.timestamp_weight,
            datasize_weight: r.datasize_weight,
            duration_weight: r.duration_weight,
            histogram_weight: r.histogram_weight,
            duration_min_hours_seen: r.duration_min_hours_seen,
            duration_consistency_ideal_hours_seen: r.duration_consistency_ideal_hours_seen,
            histogram_mode_sensitivity: r.histogram_mode_sensitivity,
            histogram_bimodal_outlier_removal: r.histogram_bimodal_outlier_removal,
            histogram_bimodal_min_hours_seen: r.histogram_bimodal_min_hours_seen,
            report_every_secs: r.report_every_secs,
            idle_secs: r.idle_secs,
            join_secs: r.join_secs,
            max_pairs: r.max_pairs,
            max_samples: r.max_samples,
            max_samples_per_pair: r.max_samples_per_pair,
            max_pending: r.max_pending,
            skip_multicast: r.skip_multicast,
            skip_inbound: r.skip_inbound,
            probation_slots: r.probation_slots,
        })
    }
}

fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("{v} is not between 0 and 1")))
    }
}

fn at_least_4<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    // Three non-zero intervals need four distinct times.
    let v = u32::deserialize(d)?;
    if v >= 4 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is too few: scoring needs at least 4 distinct connection times"
        )))
    }
}

fn per_pair<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    // Thinned samples must still show the shape of a day.
    let v = u32::deserialize(d)?;
    if v >= MIN_PER_PAIR {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is too few: a pair keeps at least {MIN_PER_PAIR} samples"
        )))
    }
}

/// Fewest samples a pair is thinned down to.
pub const MIN_PER_PAIR: u32 = 64;

fn positive_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > 0 {
        Ok(v)
    } else {
        Err(D::Error::custom("must be above 0"))
    }
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if v > 0 {
        Ok(v)
    } else {
        Err(D::Error::custom("must be above 0"))
    }
}

fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if (1..=24).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is not between 1 and 24 hours"
        )))
    }
}

fn hours_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v <= 24 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is not between 0 and 24 hours"
        )))
    }
}

fn bimodal_hours<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    // Fewer than 6 bars always look bimodal (RITA enforces the same).
    let v = u32::deserialize(d)?;
    if (6..=24).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is not between 6 and 24 hours"
        )))
    }
}

fn slots<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if v.is_power_of_two() && (1 << 10..=1 << 26).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "{v} is not a power of two between 1024 and 67108864"
        )))
    }
}
