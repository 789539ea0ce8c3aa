//! Timestamps in storage: `BIGINT` milliseconds since the Unix epoch, always UTC.
//!
//! Both backends compare and index integers the same way, so ordering, ranges and bucketing
//! stay portable SQL. Conversion to a person's time zone happens at the edges.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch for `at`.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The instant stored as `millis`; out-of-range values (never written by Duecall) clamp to the epoch.
pub fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The current time as stored.
pub fn now_millis() -> i64 {
    to_millis(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_millisecond() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 15).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(from_millis(to_millis(at)), at);
    }
}
