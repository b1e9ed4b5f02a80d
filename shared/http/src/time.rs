/// Formats microseconds since the epoch as RFC 3339 UTC, e.g. `2026-11-22T15:04:05.123456Z`.
pub fn rfc3339_from_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
