//! HTTP plumbing every Scrip service shares: the one error type and its problem+json form,
//! extractor configuration that turns bad input into clear 4xx answers, paging,
//! idempotency keys, rate limits, and the bridge from async handlers to blocking diesel.

mod blocking;
mod body;
mod csv;
mod error;
mod extract;
mod idempotency;
mod limit;
mod paging;
mod streams;
mod text;
mod time;

pub use blocking::blocking;
pub use body::Json;
pub use csv::csv_row;
pub use error::{ApiError, Problem};
pub use extract::{OptionalJson, configure_extractors, double_option};
pub use idempotency::{
    IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotency_key, idempotent_response, request_hash,
};
pub use limit::{RateLimiter, TrustedProxies, client_ip};
pub use paging::{Page, PageQuery};
pub use streams::{StreamGate, StreamLimits, StreamSlot};
pub use text::memo;
pub use time::{now_us, rfc3339_from_us, us_from_rfc3339};
