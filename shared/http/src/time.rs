/// Formats microseconds since the epoch as RFC 3339 UTC, e.g. `2026-11-22T15:04:05.123456Z`.
pub fn rfc3339_from_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Microseconds since the epoch of an RFC 3339 timestamp (`2026-12-01T00:00:00Z`, any offset),
/// or a date alone (`2026-12-01`, midnight UTC); `None` for anything else.
pub fn us_from_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_micros());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_dates_read_back() {
        let at = us_from_rfc3339("2026-12-01T10:00:00Z").expect("a timestamp");
        assert_eq!(rfc3339_from_us(at), "2026-12-01T10:00:00.000000Z");
        assert_eq!(us_from_rfc3339("2026-12-01T11:00:00+01:00"), Some(at));
        assert_eq!(
            us_from_rfc3339("2026-12-01"),
            Some(at - 10 * 3_600 * 1_000_000)
        );
        for bad in ["", "yesterday", "2026-13-01", "2026-12-01T25:00:00Z"] {
            assert_eq!(us_from_rfc3339(bad), None, "{bad:?}");
        }
    }
}
