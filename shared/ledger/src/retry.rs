//! One retry policy for every write transaction: `Ledger::write`, the payment committer and
//! the market writers all go through [`retry_transient`].
//!
//! Transient conflicts (serialization failures, deadlocks, a busy SQLite file) are rare,
//! because every writer locks accounts in ascending id order; the bounds exist so that a
//! pathological case fails loudly instead of spinning: at most `max_attempts` tries, and at
//! most `max_retrying` from the first failure to the start of the last try (a long unit of
//! work is still retried; only the time spent failing is bounded). [`Retry::LEDGER`] is the
//! policy of `Ledger::write`; a market's writer, whose one thread every order of the market
//! waits for, uses the tighter [`Retry::MARKET`].

use std::time::{Duration, Instant};

use rand::Rng;

/// How often, and for how long, a unit of work is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub max_attempts: u32,
    pub max_retrying: Duration,
}

impl Retry {
    /// `Ledger::write`, and so payments and clearing runs.
    pub const LEDGER: Self = Self {
        max_attempts: 64,
        max_retrying: Duration::from_secs(5),
    };
    /// A market's writer: every order of the market waits behind a retried batch.
    pub const MARKET: Self = Self {
        max_attempts: 8,
        max_retrying: Duration::from_millis(250),
    };
}

const BACKOFF_STEP_US: u64 = 200;
const BACKOFF_MAX_US: u64 = 20_000;

/// Runs `work(attempt)` (attempts count from 1) until it succeeds, fails with an error that
/// `is_transient` does not accept, or `policy`'s bounds run out; then returns the last result.
pub fn retry_transient<T, E: std::fmt::Display>(
    policy: Retry,
    is_transient: impl Fn(&E) -> bool,
    mut work: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, E> {
    let mut first_failure: Option<Instant> = None;
    let mut attempt = 1;
    loop {
        match work(attempt) {
            Err(error)
                if is_transient(&error)
                    && attempt < policy.max_attempts
                    && first_failure.get_or_insert_with(Instant::now).elapsed()
                        < policy.max_retrying =>
            {
                tracing::debug!(attempt, %error, "transient conflict, retrying");
                backoff(attempt);
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Sleeps a growing, jittered time so that retrying writers do not collide again in lockstep.
fn backoff(attempt: u32) {
    let ceiling_us = (BACKOFF_STEP_US * u64::from(attempt)).min(BACKOFF_MAX_US);
    let sleep_us = rand::rng().random_range(ceiling_us / 2..=ceiling_us);
    std::thread::sleep(Duration::from_micros(sleep_us));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_and_stops_at_the_first_other_one() {
        let mut calls = 0;
        let result: Result<u32, String> = retry_transient(
            Retry::LEDGER,
            |e: &String| e == "busy",
            |attempt| {
                calls += 1;
                if attempt < 3 {
                    Err("busy".into())
                } else {
                    Ok(attempt)
                }
            },
        );
        assert_eq!(result, Ok(3));
        assert_eq!(calls, 3);
        let refused: Result<(), String> = retry_transient(
            Retry::LEDGER,
            |e: &String| e == "busy",
            |_| Err("refused".into()),
        );
        assert_eq!(refused, Err("refused".into()));
    }

    #[test]
    fn gives_up_after_the_attempt_bound() {
        let mut calls = 0;
        let result: Result<(), String> = retry_transient(
            Retry::MARKET,
            |_: &String| true,
            |_| {
                calls += 1;
                Err("busy".into())
            },
        );
        assert!(result.is_err());
        assert!(calls <= Retry::MARKET.max_attempts);
    }
}
