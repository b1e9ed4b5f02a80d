//! Reputation: the mean of the ratings a principal received for paid deals, and how many.

use std::collections::HashMap;

use diesel::dsl::{count_star, sum};
use diesel::prelude::*;
use scrip_ledger::LedgerError;
use scrip_store::DbConn;
use scrip_store::schema::deal_feedback;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reputation {
    /// The mean rating, 1.00 to 5.00, to two decimals rounded half up; none before the first.
    pub score: Option<String>,
    pub ratings: i64,
}

impl Reputation {
    /// From the sum and count of ratings (integers, so the mean is exact before rounding).
    pub fn from_sum(sum: i64, ratings: i64) -> Self {
        if ratings <= 0 {
            return Self::default();
        }
        let hundredths = (sum * 100 * 2 + ratings) / (ratings * 2);
        Self {
            score: Some(format!("{}.{:02}", hundredths / 100, hundredths % 100)),
            ratings,
        }
    }

    /// The score in hundredths (0 before the first rating), to compare with a threshold.
    pub fn hundredths(&self) -> i64 {
        self.score
            .as_deref()
            .and_then(|s| s.replace('.', "").parse().ok())
            .unwrap_or(0)
    }
}

/// The reputations of `principals` (those never rated are absent).
pub fn of_many(
    conn: &mut DbConn,
    principals: &[i64],
) -> Result<HashMap<i64, Reputation>, LedgerError> {
    let rows: Vec<(i64, Option<i64>, i64)> = deal_feedback::table
        .filter(deal_feedback::to_id.eq_any(principals))
        .group_by(deal_feedback::to_id)
        .select((
            deal_feedback::to_id,
            sum(deal_feedback::rating),
            count_star(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, total, n)| (id, Reputation::from_sum(total.unwrap_or(0), n)))
        .collect())
}

pub fn of(conn: &mut DbConn, principal: i64) -> Result<Reputation, LedgerError> {
    Ok(of_many(conn, &[principal])?
        .remove(&principal)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_mean_rounded_half_up() {
        assert_eq!(Reputation::from_sum(0, 0), Reputation::default());
        assert_eq!(Reputation::from_sum(5, 1).score.as_deref(), Some("5.00"));
        assert_eq!(Reputation::from_sum(14, 3).score.as_deref(), Some("4.67"));
        assert_eq!(Reputation::from_sum(13, 3).score.as_deref(), Some("4.33"));
        // 4.125 rounds up to 4.13.
        assert_eq!(Reputation::from_sum(33, 8).score.as_deref(), Some("4.13"));
        assert_eq!(Reputation::from_sum(33, 8).hundredths(), 413);
        assert_eq!(Reputation::default().hundredths(), 0);
    }
}
