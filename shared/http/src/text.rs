use crate::ApiError;

/// Longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 200;

/// A free-text memo as the API accepts it: trimmed, blank is none, at most
/// [`MAX_MEMO_CHARS`] printable characters (`bad_memo` otherwise).
pub fn memo(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(memo) = raw.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if memo.chars().count() > MAX_MEMO_CHARS || memo.chars().any(scrip_domain::is_invisible) {
        return Err(ApiError::unprocessable(
            "bad_memo",
            "a memo is at most 200 printable characters",
        ));
    }
    Ok(Some(memo.to_owned()))
}
