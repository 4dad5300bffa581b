//! Key periods: the span of days one period key covers.

use std::fmt;

use jiff::ToSpan;
use jiff::civil::{Date, date};

use super::KeyError;

/// Periods are counted from this Monday, so seven-day periods are ISO
/// weeks.
const FIRST_MONDAY: Date = date(1970, 1, 5);

/// How long a key period lasts, in days; periods start on Mondays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodLength(u16);

impl PeriodLength {
    /// One ISO week, Monday to Sunday (the default).
    pub const WEEK: Self = Self(7);

    /// Periods of `days` days (1 to 366).
    pub fn days(days: u32) -> Result<Self, KeyError> {
        match u16::try_from(days) {
            Ok(d) if (1..=366).contains(&d) => Ok(Self(d)),
            _ => Err(KeyError::PeriodLength(days)),
        }
    }

    /// Length in days.
    pub fn in_days(self) -> u16 {
        self.0
    }

    /// The period `day` falls in.
    pub fn period_of(self, day: Date) -> Period {
        let since = i64::from(day.since(FIRST_MONDAY).map_or(0, |s| s.get_days()));
        let len = i64::from(self.0);
        let start_offset = since.div_euclid(len) * len;
        let start = FIRST_MONDAY
            .checked_add(start_offset.days())
            .unwrap_or(FIRST_MONDAY);
        Period {
            start,
            days: self.0,
        }
    }
}

impl Default for PeriodLength {
    fn default() -> Self {
        Self::WEEK
    }
}

/// One key period: `days` days from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// First day.
    pub start: Date,
    /// Length in days.
    pub days: u16,
}

impl Period {
    /// The first day after the period.
    pub fn end(&self) -> Date {
        self.start
            .checked_add(i64::from(self.days).days())
            .unwrap_or(Date::MAX)
    }

    /// Whether `day` is in the period.
    pub fn contains(&self, day: Date) -> bool {
        self.start <= day && day < self.end()
    }
}

impl fmt::Display for Period {
    /// `2026-W49` for ISO weeks, `2026-11-30+3d` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days == 7 {
            let week = self.start.iso_week_date();
            write!(f, "{:04}-W{:02}", week.year(), week.week())
        } else {
            write!(f, "{}+{}d", self.start, self.days)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_are_iso_weeks() {
        let week = PeriodLength::WEEK;
        // 2026-12-04 is a Friday in ISO week 49 (Monday 2026-11-30).
        let p = week.period_of(date(2026, 12, 4));
        assert_eq!(p.start, date(2026, 11, 30));
        assert_eq!(p.end(), date(2026, 12, 7));
        assert_eq!(p.to_string(), "2026-W49");
        assert!(p.contains(date(2026, 12, 6)));
        assert!(!p.contains(date(2026, 12, 7)));
        // ISO week 1 of 2027 starts on 2027-01-04; 2027-01-01 is in 2026-W53.
        assert_eq!(week.period_of(date(2027, 1, 1)).to_string(), "2026-W53");
        assert_eq!(week.period_of(date(2027, 1, 4)).to_string(), "2027-W01");
        // Before the first Monday of the count as well.
        assert_eq!(week.period_of(date(1970, 1, 1)).start, date(1969, 12, 29));
    }

    #[test]
    fn other_lengths_tile_the_days() {
        let three = PeriodLength::days(3).unwrap();
        let p = three.period_of(date(2026, 12, 4));
        assert!(p.contains(date(2026, 12, 4)));
        assert_eq!(three.period_of(p.end()).start, p.end());
        assert_eq!(p.to_string(), format!("{}+3d", p.start));
        assert!(PeriodLength::days(0).is_err());
        assert!(PeriodLength::days(367).is_err());
    }
}
