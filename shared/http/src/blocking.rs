use crate::ApiError;

/// Runs blocking work (diesel, argon2) on tokio's blocking pool so the async executor threads
/// never wait on a database or a hash.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(ApiError::Internal(format!("blocking task failed: {join}"))),
    }
}
