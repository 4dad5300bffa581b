//! Feed timestamps to data time (µs since the Unix epoch, UTC). Feeds write
//! RFC 3339 (STIX), `YYYY-MM-DD HH:MM:SS` in UTC (abuse.ch) or a bare date.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use kansoku_plugin::Timestamp;

pub fn parse(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let at = if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        ts
    } else if let Ok(dt) = text.parse::<DateTime>() {
        TimeZone::UTC
            .to_timestamp(dt)
            .map_err(|e| format!("`{text}`: {e}"))?
    } else if let Ok(date) = text.parse::<Date>() {
        TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| format!("`{text}`: {e}"))?
    } else {
        return Err(format!(
            "`{}` is not a time (RFC 3339, `YYYY-MM-DD HH:MM:SS` UTC or a date)",
            crate::indicator::shown(text)
        ));
    };
    Ok(at.as_microsecond())
}

pub const DAY: Timestamp = 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_time_forms() {
        assert_eq!(parse("1970-01-02"), Ok(DAY));
        assert_eq!(parse("1970-01-02 00:00:01"), Ok(DAY + 1_000_000));
        assert_eq!(parse("1970-01-02T00:00:01.5Z"), Ok(DAY + 1_500_000));
        assert_eq!(parse("1970-01-02T09:00:00+09:00"), Ok(DAY));
        assert!(parse("yesterday").is_err());
    }
}
