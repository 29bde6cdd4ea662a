//! Which fires a schedule owes at a given instant: the pure part of the scheduler, tested
//! on an injected clock (exact instants, DST gaps and folds, grace, first sight).

/// What a schedule owes between `from` (the last decided fire, or first sight) and `now`.
#[derive(Debug, PartialEq)]
pub(super) struct Owed {
    /// Fires more than `grace` late: the latest and how many (counted up to 100 000).
    pub(super) missed: Option<(i64, usize)>,
    /// Fires to decide now, oldest first (at most 100 a tick).
    pub(super) due: Vec<i64>,
    /// Where the next tick starts.
    pub(super) next_from: i64,
}

pub(super) fn owed(
    s: &ordo_jobs::Schedule,
    from: i64,
    now: i64,
    grace_ms: i64,
    tz: chrono_tz::Tz,
) -> Owed {
    let mut from = from;
    let mut missed = None;
    let boundary = now - grace_ms;
    if from < boundary {
        if let Some(latest) = s.latest_at_or_before(boundary, tz).filter(|t| *t > from) {
            missed = Some((latest, s.count_between(from, boundary, 100_000, tz)));
        }
        from = boundary;
    }
    let due = s.fires_between(from, now, 100, tz);
    let next_from = due.last().copied().unwrap_or(from);
    Owed {
        missed,
        due,
        next_from,
    }
}

#[cfg(test)]
mod tests {
    //! The scheduling decisions on an injected clock: no waiting, exact instants.

    use chrono::TimeZone;
    use ordo_jobs::schedule::{CronExpr, Schedule, Syntax};
    use ordo_jobs::{Missed, Overlap};

    use super::*;

    fn sched(expr: &str) -> Schedule {
        Schedule {
            crons: vec![CronExpr::parse(expr, Syntax::Cron).unwrap()],
            syntax: Syntax::Cron,
            timezone: None,
            options: Default::default(),
            overlap: Overlap::Skip,
            missed: Missed::Skip,
            enabled: true,
        }
    }

    fn at(tz: chrono_tz::Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, s)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_fire_a_little_late_runs_late() {
        // The leader died just before 02:00; its successor looks at 02:00:05.
        let tz = chrono_tz::UTC;
        let s = sched("0 2 * * *");
        let from = at(tz, 2026, 11, 23, 2, 0, 0);
        let now = at(tz, 2026, 11, 24, 2, 0, 5);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.missed, None);
        assert_eq!(o.due, [at(tz, 2026, 11, 24, 2, 0, 0)]);
        assert_eq!(o.next_from, o.due[0]);
    }

    #[test]
    fn fires_older_than_the_grace_are_missed_and_counted() {
        // Down from Friday to Monday 09:00: three 02:00 fires missed, none due.
        let tz = chrono_tz::UTC;
        let s = sched("0 2 * * *");
        let from = at(tz, 2026, 11, 20, 2, 0, 0);
        let now = at(tz, 2026, 11, 23, 9, 0, 0);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.missed, Some((at(tz, 2026, 11, 23, 2, 0, 0), 3)));
        assert!(o.due.is_empty());
        assert_eq!(o.next_from, now - MIN);
        // The next tick owes nothing more.
        let again = owed(&s, o.next_from, now + 250, MIN, tz);
        assert_eq!((again.missed, again.due.len()), (None, 0));
    }

    #[test]
    fn nothing_is_owed_before_first_sight_and_each_fire_once() {
        let tz = chrono_tz::UTC;
        let s = sched("*/5 * * * *");
        let first_sight = at(tz, 2026, 11, 24, 10, 2, 0);
        let o = owed(&s, first_sight, at(tz, 2026, 11, 24, 10, 4, 59), MIN, tz);
        assert!(o.due.is_empty() && o.missed.is_none());
        let o = owed(&s, o.next_from, at(tz, 2026, 11, 24, 10, 5, 0), MIN, tz);
        assert_eq!(o.due, [at(tz, 2026, 11, 24, 10, 5, 0)]);
        let o = owed(
            &s,
            o.next_from,
            at(tz, 2026, 11, 24, 10, 5, 0) + 250,
            MIN,
            tz,
        );
        assert!(o.due.is_empty(), "decided once");
    }

    #[test]
    fn a_dst_gap_fire_is_owed_once_at_the_first_valid_time() {
        // Europe/Paris, 29 March 2026: 02:30 does not exist; it is owed at 03:00 CEST.
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let s = sched("30 2 * * *");
        let from = at(tz, 2026, 3, 28, 2, 30, 0);
        let now = at(tz, 2026, 3, 29, 3, 0, 10);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.due, [at(tz, 2026, 3, 29, 3, 0, 0)]);
        assert_eq!(o.missed, None);
    }

    #[test]
    fn a_fall_back_fixed_time_is_owed_once() {
        // Europe/Paris, 25 October 2026: 02:30 happens twice; one fire over the night.
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let s = sched("30 2 * * *");
        let from = at(tz, 2026, 10, 25, 0, 0, 0);
        let mut t = from;
        let mut fired = Vec::new();
        // A tick every minute through the night.
        for minute in 1..=(6 * 60) {
            let now = from + minute * MIN;
            let o = owed(&s, t, now, MIN, tz);
            fired.extend(o.due);
            t = o.next_from;
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
    }
}
