//! Time as ordo reads and shows it: Unix milliseconds, and their local or zoned text.

/// Now, in Unix milliseconds (how every time is stored).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds as local `HH:MM:SS.mmm` (the live log's prefix).
pub fn time_of_day(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_default()
}

/// Unix milliseconds as local `YYYY-MM-DD HH:MM:SS` (empty when out of range).
pub fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS ZONE` in `tz` (empty when out of range).
pub fn zoned_time(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_default()
}
