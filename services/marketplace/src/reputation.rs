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
}

/// New coinage pays only sellers rated by at least this many different buyers: one friend's
/// five stars must not open the registry's fund.
pub const MIN_SELLER_RATERS: i64 = 3;

/// What a principal's buyers said of it as a seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SellerStanding {
    pub ratings: i64,
    pub raters: i64,
    pub total: i64,
}

impl SellerStanding {
    /// Whether new coinage may pay this seller: enough different buyers, and their mean rating
    /// at least `min_hundredths` (compared exactly: total x 100 >= min x ratings).
    pub fn qualifies(&self, min_hundredths: i64) -> bool {
        self.raters >= MIN_SELLER_RATERS
            && self.ratings > 0
            && self.total * 100 >= min_hundredths * self.ratings
    }
}

#[derive(diesel::QueryableByName)]
struct StandingRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ratings: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    raters: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

/// The ratings `seller` received on deals where it sold.
pub fn as_seller(conn: &mut DbConn, seller: i64) -> Result<SellerStanding, LedgerError> {
    // Only an integer id is inlined.
    let row: StandingRow = diesel::sql_query(format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS ratings, CAST(COUNT(DISTINCT f.from_id) AS BIGINT) AS raters, \
         CAST(COALESCE(SUM(f.rating), 0) AS BIGINT) AS total FROM deal_feedback f \
         JOIN deals d ON d.id = f.deal_id WHERE f.to_id = {seller} AND d.seller_id = {seller}"
    ))
    .get_result(conn)?;
    Ok(SellerStanding {
        ratings: row.ratings,
        raters: row.raters,
        total: row.total,
    })
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
    }

    #[test]
    fn a_seller_qualifies_with_enough_buyers_rating_it_high_enough() {
        let standing = |ratings, raters, total| SellerStanding {
            ratings,
            raters,
            total,
        };
        assert!(standing(3, 3, 12).qualifies(400), "a mean of exactly 4.00");
        assert!(!standing(3, 3, 11).qualifies(400), "3.67");
        assert!(
            !standing(5, 2, 25).qualifies(400),
            "five stars from only two buyers"
        );
        assert!(!standing(0, 0, 0).qualifies(100));
        // 4.125 is not rounded up to pass 4.13.
        assert!(!standing(8, 8, 33).qualifies(413));
        assert!(standing(8, 8, 33).qualifies(412));
    }
}
