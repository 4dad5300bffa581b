//! RITA's beacon scores (RITA v5, `analysis/beacons.go`), reimplemented from
//! its published description and behaviour.
//!
//! Every sub-score is in 0..=1 and rounded to three decimals where RITA
//! rounds, so that results can be compared with RITA's to the third decimal.

/// Parameters of the scores, from `[beacon]`.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Weights of timestamp, data size, duration and histogram scores.
    pub weights: [f64; 4],
    /// Histogram hours needed before a duration score is given.
    pub duration_min_hours: u32,
    /// Longest run of hours that earns a full consistency score.
    pub duration_ideal_hours: u32,
    /// Bar height tolerance of the bimodal fit, as a fraction of the tallest.
    pub mode_sensitivity: f64,
    /// Outlier bars forgiven by the bimodal fit.
    pub bimodal_outliers: u32,
    /// Histogram hours needed before the bimodal fit counts.
    pub bimodal_min_hours: u32,
}

/// One pair's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Weighted mean of the four sub-scores.
    pub score: f64,
    /// Regularity of the intervals between connections.
    pub ts: f64,
    /// Regularity of the bytes sent per connection.
    pub ds: f64,
    /// Coverage of the window and longest run of active hours.
    pub dur: f64,
    /// Flatness (or two-level shape) of the hourly connection histogram.
    pub hist: f64,
}

/// Number of histogram bars over the window (RITA: one per hour of 24).
pub const BINS: usize = 24;

/// Scores one pair. `ts` are connection start times in whole seconds and
/// `bytes` the bytes each connection sent; both are sorted in place.
/// `window` is the dataset's (start, end) in seconds. Returns `None` when
/// there are too few distinct intervals to score, as RITA does.
pub fn score(ts: &mut [u32], bytes: &mut [f64], window: (i64, i64), p: &Params) -> Option<Scores> {
    let (start, end) = window;
    if end <= start || ts.len() < 4 || bytes.len() < 3 {
        return None;
    }
    ts.sort_unstable();
    let ts_score = timestamp_score(ts)?;
    bytes.sort_unstable_by(f64::total_cmp);
    let ds = statistical_score(bytes, 0.0);

    let histogram = histogram(start, end, ts);
    let (freq, bars, longest_run) = frequency_counts(&histogram, p.mode_sensitivity);
    let hist = cv_score(&histogram).max(bimodal_score(&freq, bars, p));
    let first = i64::from(ts[0]);
    let last = i64::from(ts[ts.len() - 1]);
    let dur = duration_score((start, end), (first, last), bars, longest_run, p);

    let [wt, wd, wu, wh] = p.weights;
    let score = round3(ts_score * wt + ds * wd + dur * wu + hist * wh);
    Some(Scores {
        score,
        ts: ts_score,
        ds,
        dur,
        hist,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ceil3(x: f64) -> f64 {
    (x * 1000.0).ceil() / 1000.0
}

/// Skew and dispersion of the non-zero intervals between sorted times.
fn timestamp_score(ts: &[u32]) -> Option<f64> {
    let mut deltas: Vec<f64> = ts
        .windows(2)
        .map(|w| f64::from(w[1] - w[0]))
        .filter(|d| *d > 0.0)
        .collect();
    if deltas.len() < 3 {
        return None;
    }
    deltas.sort_unstable_by(f64::total_cmp);
    Some(statistical_score(&deltas, 1.0))
}

/// Mean of the Bowley skewness score and the MAD score of sorted values.
fn statistical_score(sorted: &[f64], default_mad_score: f64) -> f64 {
    round3((bowley_score(sorted) + mad_score(sorted, default_mad_score)) / 2.0)
}

/// Median of a sorted slice (mean of the middle two for even lengths).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n.is_multiple_of(2) => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        _ => sorted[n / 2],
    }
}

/// Tukey's hinges: the medians of the halves, the middle value excluded
/// from both for odd lengths.
fn quartiles(sorted: &[f64]) -> (f64, f64, f64) {
    let n = sorted.len();
    let (lower_end, upper_start) = if n.is_multiple_of(2) {
        (n / 2, n / 2)
    } else {
        ((n - 1) / 2, (n - 1) / 2 + 1)
    };
    (
        median(&sorted[..lower_end]),
        median(sorted),
        median(&sorted[upper_start..]),
    )
}

/// 1 − |Bowley skewness|; a symmetric distribution scores 1. A spread
/// under 10 or a median on a quartile counts as no skew at all.
fn bowley_score(sorted: &[f64]) -> f64 {
    if sorted.len() < 3 {
        return 0.0;
    }
    let (q1, q2, q3) = quartiles(sorted);
    let spread = q3 - q1;
    let skew = if spread >= 10.0 && q2 != q1 && q2 != q3 {
        (q1 + q3 - 2.0 * q2) / spread
    } else {
        0.0
    };
    1.0 - skew.abs()
}

/// (median − MAD) / median, or `default` when the median is below 1.
fn mad_score(sorted: &[f64], default: f64) -> f64 {
    let m = median(sorted);
    let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - m).abs()).collect();
    deviations.sort_unstable_by(f64::total_cmp);
    let mad = median(&deviations);
    let score = if m >= 1.0 { (m - mad) / m } else { default };
    if score.is_nan() || score < 0.0 {
        0.0
    } else {
        score
    }
}

/// Connections per bin over `BINS` equal bins from `start` to `end`. Times
/// before the first edge count in the first bin and times at or past the
/// last edge in the last, as in RITA.
fn histogram(start: i64, end: i64, sorted_ts: &[u32]) -> [u32; BINS] {
    let step = (end - start) as f64 / BINS as f64;
    let mut edges = [0.0f64; BINS + 1];
    for (i, edge) in edges.iter_mut().enumerate() {
        *edge = start as f64 + i as f64 * step;
    }
    edges[BINS] = end as f64;
    let mut bars = [0u32; BINS];
    let mut bin = 0;
    for &t in sorted_ts {
        let t = f64::from(t);
        while bin < BINS - 1 && t >= edges[bin + 1] {
            bin += 1;
        }
        bars[bin] += 1;
    }
    bars
}

/// Bar heights grouped into buckets of `sensitivity` × the tallest bar
/// (bucket floor → number of bars), the number of non-empty bars, and the
/// longest run of non-empty bars, wrapping around the end of the window.
fn frequency_counts(bars: &[u32; BINS], sensitivity: f64) -> (Vec<(u32, u32)>, u32, u32) {
    let tallest = bars.iter().copied().max().unwrap_or(0);
    let bucket = (f64::from(tallest) * sensitivity).ceil();
    let mut freq: Vec<(u32, u32)> = Vec::new();
    let mut total = 0;
    for &bar in bars.iter().filter(|b| **b > 0) {
        total += 1;
        let key = if bucket > 0.0 {
            ((f64::from(bar) / bucket).floor() * bucket) as u32
        } else {
            bar
        };
        match freq.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => freq.push((key, 1)),
        }
    }
    let mut longest = 0;
    let mut run = 0;
    for i in 0..BINS * 2 {
        if bars[i % BINS] > 0 {
            run += 1;
        } else {
            longest = longest.max(run);
            run = 0;
        }
    }
    longest = longest.max(run).min(BINS as u32);
    (freq, total, longest)
}

/// 1 − coefficient of variation of the bar heights (0 past a CV of 1).
fn cv_score(bars: &[u32; BINS]) -> f64 {
    let total: u32 = bars.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mean = f64::from(total) / BINS as f64;
    let var = bars
        .iter()
        .map(|b| (f64::from(*b) - mean).powi(2))
        .sum::<f64>()
        / BINS as f64;
    let cv = var.sqrt() / mean;
    if cv > 1.0 {
        0.0
    } else {
        round3(1.0 - cv).min(1.0)
    }
}

/// Share of bars that fall in the two most common height buckets, once
/// enough hours are seen: a beacon that alternates between two rates.
fn bimodal_score(freq: &[(u32, u32)], bars: u32, p: &Params) -> f64 {
    let min_hours = if p.bimodal_min_hours < 6 {
        11
    } else {
        p.bimodal_min_hours
    };
    if bars == 0 || bars < min_hours {
        return 0.0;
    }
    let (mut largest, mut second) = (0, 0);
    for &(_, n) in freq {
        if n > largest {
            second = largest;
            largest = n;
        } else if n > second {
            second = n;
        }
    }
    let adjusted = (f64::from(bars) - f64::from(p.bimodal_outliers)).max(1.0);
    round3(f64::from(largest + second) / adjusted).min(1.0)
}

/// Larger of window coverage (first to last connection over the window)
/// and consistency (longest run over the ideal run), once enough hours
/// are seen.
fn duration_score(
    window: (i64, i64),
    seen: (i64, i64),
    bars: u32,
    longest_run: u32,
    p: &Params,
) -> f64 {
    let (start, end) = window;
    let (first, last) = seen;
    if bars < p.duration_min_hours.max(1) || last <= first || end <= start {
        return 0.0;
    }
    let coverage = ceil3((last - first) as f64 / (end - start) as f64).min(1.0);
    let consistency =
        ceil3(f64::from(longest_run) / f64::from(p.duration_ideal_hours.max(1))).min(1.0);
    coverage.max(consistency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            weights: [0.25; 4],
            duration_min_hours: 6,
            duration_ideal_hours: 12,
            mode_sensitivity: 0.05,
            bimodal_outliers: 1,
            bimodal_min_hours: 11,
        }
    }

    #[test]
    fn hinges_follow_tukey() {
        assert_eq!(quartiles(&[1.0, 2.0, 3.0, 4.0]), (1.5, 2.5, 3.5));
        assert_eq!(quartiles(&[1.0, 2.0, 3.0, 4.0, 5.0]), (1.5, 3.0, 4.5));
    }

    #[test]
    fn a_perfect_beacon_scores_one() {
        let start = 1_700_000_000i64;
        let mut ts: Vec<u32> = (0..24 * 12).map(|i| (start + i * 300) as u32).collect();
        let mut bytes = vec![500.0; ts.len()];
        let s = score(&mut ts, &mut bytes, (start, start + 86_400), &params()).unwrap();
        assert_eq!(
            (s.ts, s.ds, s.dur, s.hist, s.score),
            (1.0, 1.0, 1.0, 1.0, 1.0)
        );
    }

    #[test]
    fn skewed_intervals_score_lower() {
        let start = 1_700_000_000u32;
        let gaps = [10, 10, 12, 15, 200, 900, 5000, 7, 30, 3000];
        let mut t = start;
        let mut ts = vec![t];
        for g in gaps {
            t += g;
            ts.push(t);
        }
        let mut bytes: Vec<f64> = (0..ts.len()).map(|i| 100.0 + (i * i * 37) as f64).collect();
        let s = score(
            &mut ts,
            &mut bytes,
            (i64::from(start), i64::from(start) + 86_400),
            &params(),
        )
        .unwrap();
        assert!(s.ts < 0.5, "{s:?}");
        assert!(s.score < 0.5, "{s:?}");
    }

    #[test]
    fn too_few_distinct_intervals_are_not_scored() {
        let mut ts = vec![10, 10, 10, 20, 30];
        let mut bytes = vec![1.0; 5];
        assert_eq!(score(&mut ts, &mut bytes, (0, 100), &params()), None);
    }
}
