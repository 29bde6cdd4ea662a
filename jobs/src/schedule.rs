//! Cron schedules: 5-field cron, or Quartz style with seconds (and years), in a time zone.
//!
//! Daylight saving time follows croner (OCPS / Vixie cron): a fixed time that falls in
//! the spring-forward gap runs at the first valid time after the gap, the same day; a
//! fixed time repeated by the fall-back overlap runs once, at its first occurrence.
//! Wildcard and step fields (`*/15`) fire for every wall-clock match that exists.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// What to do when a fire comes while the previous run of the job is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Do not start; the fire is recorded as skipped (the default).
    Skip,
    /// Start it when the running one ends, in fire order.
    Queue,
    /// Start it anyway.
    Concurrent,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Concurrent => "concurrent",
        }
    }
}

/// What to do with fires missed while no controller was firing schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Record them as missed (the default).
    Skip,
    /// Run once for the latest missed fire.
    CatchUp,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::Skip => "skip",
            Missed::CatchUp => "catch-up",
        }
    }
}

/// Which cron dialect an expression is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// 5 fields (minute hour day month weekday), or 6 with seconds first; POSIX weekdays
    /// (0 or 7 = Sunday).
    Cron,
    /// Quartz: seconds first, an optional year last, weekdays 1 = Sunday ... 7 = Saturday.
    Quartz,
}

#[derive(Debug, Clone)]
pub struct CronExpr {
    pub text: String,
    pub cron: Cron,
}

impl CronExpr {
    pub fn parse(text: &str, syntax: Syntax) -> Result<CronExpr, String> {
        let parser = match syntax {
            Syntax::Cron => CronParser::builder().seconds(Seconds::Optional).build(),
            Syntax::Quartz => CronParser::builder()
                .seconds(Seconds::Required)
                .alternative_weekdays(true)
                .build(),
        };
        let cron = parser.parse(text).map_err(|e| e.to_string())?;
        Ok(CronExpr {
            text: text.to_string(),
            cron,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub crons: Vec<CronExpr>,
    pub syntax: Syntax,
    /// None: the controller's time zone.
    pub timezone: Option<Tz>,
    /// Option values for scheduled runs (checked against the job's options at load).
    pub options: BTreeMap<String, String>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub enabled: bool,
}

impl Schedule {
    /// The first fire strictly after `after` (Unix ms), in `tz` unless the schedule names
    /// its own zone.
    pub fn next_after(&self, after_ms: i64, default_tz: Tz) -> Option<i64> {
        let tz = self.timezone.unwrap_or(default_tz);
        let start =
            tz.from_utc_datetime(&DateTime::<Utc>::from_timestamp_millis(after_ms)?.naive_utc());
        self.crons
            .iter()
            .filter_map(|c| c.cron.find_next_occurrence(&start, false).ok())
            .map(|t| t.timestamp_millis())
            .filter(|t| *t > after_ms)
            .min()
    }

    /// The latest fire at or before `at` (Unix ms).
    pub fn latest_at_or_before(&self, at_ms: i64, default_tz: Tz) -> Option<i64> {
        let tz = self.timezone.unwrap_or(default_tz);
        let start =
            tz.from_utc_datetime(&DateTime::<Utc>::from_timestamp_millis(at_ms)?.naive_utc());
        self.crons
            .iter()
            .filter_map(|c| c.cron.find_previous_occurrence(&start, true).ok())
            .map(|t| t.timestamp_millis())
            .filter(|t| *t <= at_ms)
            .max()
    }

    /// Every fire in `(after, until]`, at most `cap` of them (the earliest).
    pub fn fires_between(&self, after_ms: i64, until_ms: i64, cap: usize, tz: Tz) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = after_ms;
        while out.len() < cap {
            match self.next_after(t, tz) {
                Some(n) if n <= until_ms => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }

    /// How many fires in `(after, until]`, counting up to `cap`.
    pub fn count_between(&self, after_ms: i64, until_ms: i64, cap: usize, tz: Tz) -> usize {
        self.fires_between(after_ms, until_ms, cap, tz).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(expr: &str, tz: &str) -> Schedule {
        Schedule {
            crons: vec![CronExpr::parse(expr, Syntax::Cron).unwrap()],
            syntax: Syntax::Cron,
            timezone: Some(tz.parse().unwrap()),
            options: BTreeMap::new(),
            overlap: Overlap::Skip,
            missed: Missed::Skip,
            enabled: true,
        }
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn show(t: i64, tz: Tz) -> String {
        tz.timestamp_millis_opt(t)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    #[test]
    fn spring_forward_gap_runs_once_right_after_the_gap() {
        // Europe/Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = sched("30 2 * * *", "Europe/Paris");
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let fires = s.fires_between(
            ms("2026-03-28T00:00:00Z"),
            ms("2026-03-31T00:00:00Z"),
            10,
            tz,
        );
        let shown: Vec<String> = fires.iter().map(|t| show(*t, tz)).collect();
        assert_eq!(
            shown,
            [
                "2026-03-28 02:30:00 CET",
                "2026-03-29 03:00:00 CEST",
                "2026-03-30 02:30:00 CEST"
            ]
        );
    }

    #[test]
    fn fall_back_overlap_runs_a_fixed_time_once() {
        // Europe/Paris, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = sched("30 2 * * *", "Europe/Paris");
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let fires = s.fires_between(
            ms("2026-10-24T12:00:00Z"),
            ms("2026-10-26T12:00:00Z"),
            10,
            tz,
        );
        let shown: Vec<String> = fires.iter().map(|t| show(*t, tz)).collect();
        assert_eq!(
            shown,
            ["2026-10-25 02:30:00 CEST", "2026-10-26 02:30:00 CET"]
        );
    }

    #[test]
    fn quartz_with_seconds_and_weekday_numbers() {
        // Quartz: 2 = Monday. 2026-11-23 is a Monday.
        let s = Schedule {
            crons: vec![CronExpr::parse("15 0 6 ? * 2", Syntax::Quartz).unwrap()],
            syntax: Syntax::Quartz,
            ..sched("* * * * *", "UTC")
        };
        let tz: Tz = "UTC".parse().unwrap();
        let next = s.next_after(ms("2026-11-20T00:00:00Z"), tz).unwrap();
        assert_eq!(show(next, tz), "2026-11-23 06:00:15 UTC");
    }

    #[test]
    fn several_expressions_merge_in_time_order() {
        let mut s = sched("0 6 * * *", "UTC");
        s.crons
            .push(CronExpr::parse("0 18 * * *", Syntax::Cron).unwrap());
        let tz: Tz = "UTC".parse().unwrap();
        let f = s.fires_between(
            ms("2026-11-24T00:00:00Z"),
            ms("2026-11-25T12:00:00Z"),
            10,
            tz,
        );
        assert_eq!(f.len(), 3);
        assert!(f.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn latest_fire_before_a_time() {
        let s = sched("0 */2 * * *", "UTC");
        let tz: Tz = "UTC".parse().unwrap();
        let t = s
            .latest_at_or_before(ms("2026-11-24T05:30:00Z"), tz)
            .unwrap();
        assert_eq!(show(t, tz), "2026-11-24 04:00:00 UTC");
        let t = s
            .latest_at_or_before(ms("2026-11-24T04:00:00Z"), tz)
            .unwrap();
        assert_eq!(show(t, tz), "2026-11-24 04:00:00 UTC");
    }

    #[test]
    fn the_schedule_zone_wins_over_the_controller_zone() {
        let s = sched("0 9 * * *", "America/New_York");
        let utc: Tz = "UTC".parse().unwrap();
        let next = s.next_after(ms("2026-11-24T00:00:00Z"), utc).unwrap();
        assert_eq!(show(next, utc), "2026-11-24 14:00:00 UTC");
    }
}
