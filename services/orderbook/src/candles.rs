//! OHLCV candles from trades (pure): trades are bucketed by interval start.

use scrip_matching::{Lots, Ticks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    OneMinute,
    FiveMinutes,
    OneHour,
    OneDay,
}

impl Interval {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "1m" => Some(Self::OneMinute),
            "5m" => Some(Self::FiveMinutes),
            "1h" => Some(Self::OneHour),
            "1d" => Some(Self::OneDay),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OneMinute => "1m",
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
        }
    }

    pub const fn length_us(self) -> i64 {
        const MINUTE_US: i64 = 60_000_000;
        match self {
            Self::OneMinute => MINUTE_US,
            Self::FiveMinutes => 5 * MINUTE_US,
            Self::OneHour => 60 * MINUTE_US,
            Self::OneDay => 24 * 60 * MINUTE_US,
        }
    }
}

/// One interval's prices in ticks and volume in lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start_us: i64,
    pub open: Ticks,
    pub high: Ticks,
    pub low: Ticks,
    pub close: Ticks,
    /// Summed in i128: many trades of large lots cannot overflow it.
    pub volume: i128,
    pub trades: u64,
}

/// Buckets `(price, quantity, at_us)` trades given oldest first; empty intervals are skipped.
pub fn aggregate(trades: &[(Ticks, Lots, i64)], interval: Interval) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = Vec::new();
    for &(price, quantity, at_us) in trades {
        let start_us = at_us - at_us.rem_euclid(interval.length_us());
        match buckets.last_mut() {
            Some(bucket) if bucket.start_us == start_us => {
                bucket.high = bucket.high.max(price);
                bucket.low = bucket.low.min(price);
                bucket.close = price;
                bucket.volume += i128::from(quantity);
                bucket.trades += 1;
            }
            _ => buckets.push(Bucket {
                start_us,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: i128::from(quantity),
                trades: 1,
            }),
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_open_high_low_close_volume() {
        let minute = Interval::OneMinute.length_us();
        let trades = [
            (10, 1, 0),
            (12, 2, 10),
            (9, 1, minute - 1),
            (11, 5, minute),
            (11, 1, 3 * minute + 5),
        ];
        let buckets = aggregate(&trades, Interval::OneMinute);
        assert_eq!(buckets.len(), 3);
        assert_eq!(
            buckets[0],
            Bucket {
                start_us: 0,
                open: 10,
                high: 12,
                low: 9,
                close: 9,
                volume: 4,
                trades: 3
            }
        );
        assert_eq!(buckets[1].start_us, minute);
        assert_eq!(buckets[2].start_us, 3 * minute);
        assert_eq!(buckets[2].volume, 1);
    }
}
