use serde::{Deserialize, Serialize};

use crate::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// `?limit=&cursor=`. The cursor is opaque to clients; here it is the last id seen.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Items per page: 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            n @ 1..=MAX_LIMIT => Ok(i64::from(n)),
            _ => Err(ApiError::unprocessable(
                "bad_limit",
                "limit must be between 1 and 500",
            )),
        }
    }

    /// The id to continue after in a list newest first: the next page is below this id.
    pub fn before_id(&self) -> Result<Option<i64>, ApiError> {
        self.cursor_id()
    }

    /// The id to continue after in a list oldest first: the next page is above this id.
    pub fn after_id(&self) -> Result<Option<i64>, ApiError> {
        self.cursor_id()
    }

    fn cursor_id(&self) -> Result<Option<i64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().ok().filter(|&id| id > 0).ok_or_else(|| {
                    ApiError::unprocessable("bad_cursor", "the cursor is not one this API gave out")
                })
            })
            .transpose()
    }
}

/// `{items, next_cursor}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` loaded items: the extra one only says there is more.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items.last().map(|last| id_of(last).to_string())
        } else {
            None
        };
        Self { items, next_cursor }
    }
}
