//! Timestamps to microseconds since the Unix epoch, UTC.
//!
//! Epoch seconds are parsed as decimal text, not through `f64`, so
//! `1672843056.913119` becomes exactly `1672843056913119`. Date-times follow
//! ISO 8601 / RFC 3339 as the sensors write them, including Suricata's offset
//! without a colon (`+0200`). Digits past the sixth decimal are truncated.

use crate::flow::Micros;

const MICROS_PER_SEC: i64 = 1_000_000;

/// Epoch seconds (`1672843056.913119`, `17`, `-1.5`) or a date-time.
pub(crate) fn parse_timestamp(s: &str) -> Option<Micros> {
    parse_epoch(s).or_else(|| parse_datetime(s))
}

/// Decimal epoch seconds, optionally negative.
pub(crate) fn parse_epoch(s: &str) -> Option<Micros> {
    let (negative, digits) = match s.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s.as_bytes()),
    };
    let micros = i64::try_from(decimal_micros(digits)?).ok()?;
    Some(if negative { -micros } else { micros })
}

/// A non-negative decimal number of seconds (a Zeek `interval`).
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    decimal_micros(s.as_bytes())
}

/// Seconds as a JSON float, rounded to the nearest microsecond. Exact for
/// epoch times before 2106 with six decimals: an `f64` near 2^32 s still
/// resolves 0.5 µs.
pub(crate) fn micros_from_secs_f64(secs: f64) -> Option<Micros> {
    let micros = (secs * 1e6).round();
    // The casts saturate; the range check keeps only exact conversions.
    (micros.is_finite() && micros.abs() < 9.0e18).then_some(micros as i64)
}

/// `digits[.digits]` to microseconds, in one pass (every Zeek line has two).
fn decimal_micros(b: &[u8]) -> Option<u64> {
    const SCALE: [u64; 7] = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
    let (mut secs, mut frac, mut frac_digits) = (0u64, 0u64, 0usize);
    let (mut dot, mut digits) = (false, 0);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                let d = u64::from(c - b'0');
                if !dot {
                    secs = secs.checked_mul(10)?.checked_add(d)?;
                } else if frac_digits < 6 {
                    frac = frac * 10 + d;
                    frac_digits += 1;
                }
                digits += 1;
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let micros = frac * SCALE.get(frac_digits).copied().unwrap_or(1);
    secs.checked_mul(MICROS_PER_SEC as u64)?.checked_add(micros)
}

/// Fractional digits to microseconds: `5` is 500000, `1234567` is 123456.
fn fraction_micros(b: &[u8]) -> Option<u64> {
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut micros = 0;
    for i in 0..6 {
        micros = micros * 10 + b.get(i).map_or(0, |&c| u64::from(c - b'0'));
    }
    Some(micros)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH|±HHMM|±HH:MM]`, also with `/` in
/// the date. Without an offset the time is UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    let year = two_digit_pairs(b.get(0..4)?)?;
    let sep = *b.get(4)?;
    if !matches!(sep, b'-' | b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let month = two_digit_pairs(b.get(5..7)?)?;
    let day = two_digit_pairs(b.get(8..10)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = two_digit_pairs(b.get(11..13)?)?;
    let minute = two_digit_pairs(b.get(14..16)?)?;
    let second = two_digit_pairs(b.get(17..19)?)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut micros = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        micros = fraction_micros(fraction.get(..n)?)?;
        rest = fraction.get(n..)?;
    }
    let offset_secs = parse_offset(rest)?;
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        // 60 is a leap second.
        && second <= 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    Some(secs * MICROS_PER_SEC + micros as i64)
}

/// `Z`, `±HH`, `±HHMM`, `±HH:MM` or nothing, in seconds east of UTC.
fn parse_offset(b: &[u8]) -> Option<i64> {
    let (sign, rest) = match b {
        [] | [b'Z' | b'z'] => return Some(0),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest {
        [h1, h2] => ([*h1, *h2], [b'0', b'0']),
        [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => ([*h1, *h2], [*m1, *m2]),
        _ => return None,
    };
    let hours = two_digit_pairs(&hours)?;
    let minutes = two_digit_pairs(&minutes)?;
    (hours < 24 && minutes < 60).then_some(sign * i64::from(hours * 3600 + minutes * 60))
}

/// A short run of decimal digits (2 or 4) to a number.
fn two_digit_pairs(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_micros(s: &str) -> i64 {
        let ts: jiff::Timestamp = s.parse().expect("jiff parses RFC 3339");
        ts.as_microsecond()
    }

    #[test]
    fn epoch_seconds_are_parsed_exactly() {
        assert_eq!(
            parse_epoch("1672843056.913119"),
            Some(1_672_843_056_913_119)
        );
        assert_eq!(parse_epoch("17"), Some(17_000_000));
        assert_eq!(parse_epoch("22.335172"), Some(22_335_172));
        assert_eq!(parse_epoch("0.5"), Some(500_000));
        assert_eq!(parse_epoch("-1.5"), Some(-1_500_000));
        assert_eq!(parse_epoch("1.1234567"), Some(1_123_456));
        assert_eq!(parse_epoch(".5"), Some(500_000));
        for bad in [
            "",
            ".",
            "-",
            "1.2.3",
            "1e9",
            "12a",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_epoch(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("0.084044"), Some(84_044));
        assert_eq!(parse_duration("-0.1"), None);
    }

    #[test]
    fn json_floats_round_to_the_microsecond() {
        assert_eq!(
            micros_from_secs_f64(1_641_918_754.936_11),
            Some(1_641_918_754_936_110)
        );
        assert_eq!(micros_from_secs_f64(0.096_281_999_999_998_65), Some(96_282));
        assert_eq!(micros_from_secs_f64(f64::NAN), None);
        assert_eq!(micros_from_secs_f64(1e300), None);
    }

    #[test]
    fn date_times_agree_with_jiff() {
        for s in [
            "2021-06-06T15:57:37.272281+02:00",
            "2018-03-24T17:15:20.865716Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "2000-02-29T12:00:00-09:30",
            "2100-12-31T23:59:59.5+14:00",
        ] {
            assert_eq!(parse_datetime(s), Some(jiff_micros(s)), "{s}");
        }
    }

    #[test]
    fn offsets_without_colon_and_other_spellings_are_accepted() {
        let want = jiff_micros("2021-06-06T15:57:37.272281+02:00");
        assert_eq!(
            parse_datetime("2021-06-06T15:57:37.272281+0200"),
            Some(want)
        );
        assert_eq!(parse_datetime("2021-06-06T15:57:37.272281+02"), Some(want));
        let utc = jiff_micros("2021-06-06T13:57:37Z");
        assert_eq!(parse_datetime("2021-06-06 13:57:37"), Some(utc));
        assert_eq!(parse_datetime("2021/06/06 13:57:37"), Some(utc));
        assert_eq!(parse_timestamp("2021-06-06 13:57:37"), Some(utc));
        assert_eq!(parse_timestamp("1622987857"), Some(utc));
    }

    #[test]
    fn impossible_date_times_are_rejected() {
        for s in [
            "2021-02-29T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-06-06T24:00:00Z",
            "2021-06-06T12:60:00Z",
            "2021-06-06T12:00:00+2400",
            "2021-06-06T12:00:00.Z",
            "2021-06-06T12:00:00 UTC",
            "2021-06/06T12:00:00Z",
            "2021-06-06X12:00:00Z",
            "2021-06-06",
            "",
        ] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
    }
}
