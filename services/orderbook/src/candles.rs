//! OHLCV candles from trades: trades are bucketed by interval start (by the database), and
//! each market keeps its candles between requests ([`CandleCache`]).
//!
//! Candles are public and a window of 500 days may cover every trade a market ever had, so a
//! request must not read them all: the database aggregates (one row per interval, never the
//! trades), a bucket that can no longer change is read once and kept, and the few recent
//! buckets that still change are read again only when the market's data moved on (its feed's
//! sequence), however many clients ask. Memory is bounded: per market, four intervals of at
//! most [`MAX_CANDLES`].

use std::sync::Mutex;

use scrip_matching::Ticks;

/// Most intervals a request may cover (and a cache keeps).
pub const MAX_CANDLES: i64 = 500;
/// A trade is stamped when its batch starts and visible when it commits; a bucket that ended
/// longer ago than this cannot gain a trade any more (batches, retries included, take far
/// less).
const SETTLE_MARGIN_US: i64 = 30_000_000;

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

    const ALL: [Self; 4] = [
        Self::OneMinute,
        Self::FiveMinutes,
        Self::OneHour,
        Self::OneDay,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|&i| i == self).unwrap_or(0)
    }

    /// The start of the interval that contains `at_us`.
    pub const fn start_of(self, at_us: i64) -> i64 {
        at_us - at_us.rem_euclid(self.length_us())
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

/// Reads the buckets of trades stamped in `[from_us, to_us)` (`None`: no end), oldest first,
/// aggregated by the database.
pub trait BucketSource {
    type Error;
    fn buckets(
        &mut self,
        interval: Interval,
        from_us: i64,
        to_us: Option<i64>,
    ) -> Result<Vec<Bucket>, Self::Error>;
}

/// One market's candles between requests, per interval.
#[derive(Debug, Default)]
pub struct CandleCache {
    /// One lock per interval: concurrent requests for one interval wait for the first one's
    /// read instead of each reading (so a burst costs one query), other intervals go on.
    intervals: [Mutex<Option<Cached>>; 4],
}

#[derive(Debug)]
struct Cached {
    /// Buckets that start before `settled_until_us`: final.
    settled: Vec<Bucket>,
    settled_until_us: i64,
    /// Buckets from `settled_until_us` on, as read when the market's feed was at `sequence`.
    recent: Vec<Bucket>,
    sequence: u64,
}

impl CandleCache {
    /// The non-empty buckets of the `limit` intervals up to the one containing `now_us`;
    /// `sequence` is the market feed's now (a trade moves it on, so the recent buckets are
    /// read again).
    pub fn candles<S: BucketSource>(
        &self,
        source: &mut S,
        (interval, limit): (Interval, i64),
        now_us: i64,
        sequence: u64,
    ) -> Result<Vec<Bucket>, S::Error> {
        assert!(
            (1..=MAX_CANDLES).contains(&limit),
            "limit checked by the caller"
        );
        let length_us = interval.length_us();
        let current_start_us = interval.start_of(now_us);
        let window_start_us = current_start_us - (MAX_CANDLES - 1) * length_us;
        let settled_until_us = interval.start_of(now_us - SETTLE_MARGIN_US);
        let mut slot = self.intervals[interval.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let fresh = slot.as_ref().is_some_and(|cached| {
            cached.settled_until_us == settled_until_us && cached.sequence == sequence
        });
        if !fresh {
            *slot = Some(Self::refresh(
                source,
                interval,
                slot.take(),
                (window_start_us, settled_until_us),
                sequence,
            )?);
        }
        let cached = slot.as_ref().expect("just filled");
        let from_us = current_start_us - (limit - 1) * length_us;
        Ok(cached
            .settled
            .iter()
            .chain(&cached.recent)
            .filter(|b| b.start_us >= from_us)
            .copied()
            .collect())
    }

    /// Reads what is not known yet: the newly settled buckets (all of the window the first
    /// time) and the recent ones.
    fn refresh<S: BucketSource>(
        source: &mut S,
        interval: Interval,
        previous: Option<Cached>,
        (window_start_us, settled_until_us): (i64, i64),
        sequence: u64,
    ) -> Result<Cached, S::Error> {
        let (mut settled, known_until_us) = match previous {
            Some(p) if p.settled_until_us <= settled_until_us => (p.settled, p.settled_until_us),
            _ => (Vec::new(), window_start_us),
        };
        let known_until_us = known_until_us.max(window_start_us);
        if known_until_us < settled_until_us {
            settled.extend(source.buckets(interval, known_until_us, Some(settled_until_us))?);
        }
        settled.retain(|b| b.start_us >= window_start_us);
        let recent = source.buckets(interval, settled_until_us, None)?;
        Ok(Cached {
            settled,
            settled_until_us,
            recent,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrip_matching::Lots;

    /// The model the database's aggregation must equal: buckets `(price, quantity, at_us)`
    /// trades given oldest first; empty intervals are skipped.
    pub fn aggregate(trades: &[(Ticks, Lots, i64)], interval: Interval) -> Vec<Bucket> {
        let mut buckets: Vec<Bucket> = Vec::new();
        for &(price, quantity, at_us) in trades {
            let start_us = interval.start_of(at_us);
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

    /// Trades in memory, aggregated as the database would; counts its reads.
    struct Trades {
        trades: Vec<(Ticks, Lots, i64)>,
        reads: usize,
    }

    impl BucketSource for Trades {
        type Error = ();
        fn buckets(
            &mut self,
            interval: Interval,
            from_us: i64,
            to_us: Option<i64>,
        ) -> Result<Vec<Bucket>, ()> {
            self.reads += 1;
            let inside: Vec<_> = self
                .trades
                .iter()
                .copied()
                .filter(|&(_, _, at)| at >= from_us && to_us.is_none_or(|to| at < to))
                .collect();
            Ok(aggregate(&inside, interval))
        }
    }

    #[test]
    fn cached_candles_equal_the_trades_aggregated_afresh() {
        let minute = Interval::OneMinute.length_us();
        let mut source = Trades {
            trades: (0..600)
                .map(|i| (100 + i % 7, 1 + i % 3, i * minute / 2))
                .collect(),
            reads: 0,
        };
        let cache = CandleCache::default();
        // Time goes on and trades keep coming; each answer equals a fresh aggregation.
        for step in 0..40 {
            let now_us = 300 * minute + step * 17 * minute / 10;
            source.trades.push((120 + step, 2, now_us - 1));
            for limit in [1, 3, 100, MAX_CANDLES] {
                // Each step's trade moves the feed on.
                let sequence = u64::try_from(step).expect("small");
                let cached = cache
                    .candles(&mut source, (Interval::OneMinute, limit), now_us, sequence)
                    .expect("candles");
                let from_us = Interval::OneMinute.start_of(now_us) - (limit - 1) * minute;
                let mut afresh = Trades {
                    trades: source.trades.clone(),
                    reads: 0,
                };
                let expected = afresh
                    .buckets(Interval::OneMinute, from_us, None)
                    .expect("buckets");
                assert_eq!(cached, expected, "step {step}, limit {limit}");
            }
        }
    }

    #[test]
    fn a_burst_of_requests_reads_the_database_once() {
        let hour = Interval::OneHour.length_us();
        let mut source = Trades {
            trades: (0..10_000).map(|i| (50, 1, i * hour / 100)).collect(),
            reads: 0,
        };
        let cache = CandleCache::default();
        let now_us = 100 * hour + 5;
        for _ in 0..64 {
            cache
                .candles(&mut source, (Interval::OneHour, MAX_CANDLES), now_us, 7)
                .expect("candles");
        }
        // One read of the settled window and one of the recent buckets.
        assert_eq!(source.reads, 2);
        // A trade moves the feed on: the next request sees it, reading only the recent ones.
        source.trades.push((60, 4, now_us - 1));
        let after = cache
            .candles(&mut source, (Interval::OneHour, 1), now_us, 8)
            .expect("candles");
        assert_eq!(source.reads, 3);
        assert_eq!((after.len(), after[0].close, after[0].volume), (1, 60, 4));
    }
}
