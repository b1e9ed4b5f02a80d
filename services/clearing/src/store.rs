//! Obligations as stored: a typed row with a status enum, and every query on the table.
//!
//! Two columns hold the status (migrations `clearing` and `obligation_decisions`): `status` is
//! `proposed` or `accepted`, and `closed` is set (`rejected` or `withdrawn`) when a proposed
//! obligation was declined. [`ObligationStatus`] is the one place that maps between them.

use diesel::prelude::*;
use scrip_domain::PrincipalId;
use scrip_http::ApiError;
use scrip_ledger::{Currency, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{memberships, obligations};

/// The currency a request names in `field`; an unknown one is refused under that field
/// (`Ok(Err(..))`, before anything is written).
pub fn currency_named(
    conn: &mut DbConn,
    raw: &str,
    field: &str,
) -> Result<Result<Currency, ApiError>, LedgerError> {
    let unknown = || ApiError::invalid_field(field, format!("there is no currency {raw:?}"));
    let Ok(code) = scrip_domain::CurrencyCode::parse(raw) else {
        return Ok(Err(unknown()));
    };
    match scrip_ledger::currency_by_code(conn, &code) {
        Ok(currency) => Ok(Ok(currency)),
        Err(LedgerError::UnknownCurrency) => Ok(Err(unknown())),
        Err(e) => Err(e),
    }
}

/// Where an obligation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObligationStatus {
    /// Recorded by the creditor, waiting for the debtor.
    Proposed,
    /// Accepted by the debtor: clearing counts it.
    Accepted,
    /// Declined by the debtor: closed for good.
    Rejected,
    /// Taken back by the creditor while proposed: closed for good.
    Withdrawn,
}

impl ObligationStatus {
    pub const ALL: [Self; 4] = [
        Self::Proposed,
        Self::Accepted,
        Self::Rejected,
        Self::Withdrawn,
    ];

    /// The word API.md uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The `(status, closed)` columns of this status.
    const fn stored(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Proposed => ("proposed", None),
            Self::Accepted => ("accepted", None),
            Self::Rejected => ("proposed", Some("rejected")),
            Self::Withdrawn => ("proposed", Some("withdrawn")),
        }
    }

    fn from_stored(status: &str, closed: Option<&str>) -> Result<Self, LedgerError> {
        Self::ALL
            .into_iter()
            .find(|s| s.stored() == (status, closed))
            .ok_or_else(|| {
                LedgerError::Invariant(format!("obligation status {status:?}, closed {closed:?}"))
            })
    }
}

/// A row as [`columns`] reads it.
#[derive(Queryable)]
struct ObligationRow {
    id: i64,
    debtor_id: i64,
    creditor_id: i64,
    unit: String,
    amount_atoms: i64,
    remaining_atoms: i64,
    memo: Option<String>,
    status: String,
    created_at_us: i64,
    closed: Option<String>,
    related: i32,
}

/// The columns of [`ObligationRow`], in its order (a tuple: `RETURNING` on diesel's
/// multi-backend connection takes columns, not `Selectable`).
type Columns = (
    obligations::id,
    obligations::debtor_id,
    obligations::creditor_id,
    obligations::unit,
    obligations::amount_atoms,
    obligations::remaining_atoms,
    obligations::memo,
    obligations::status,
    obligations::created_at_us,
    obligations::closed,
    obligations::related,
);

const COLUMNS: Columns = (
    obligations::id,
    obligations::debtor_id,
    obligations::creditor_id,
    obligations::unit,
    obligations::amount_atoms,
    obligations::remaining_atoms,
    obligations::memo,
    obligations::status,
    obligations::created_at_us,
    obligations::closed,
    obligations::related,
);

/// A debt recorded outside the ledger, in atoms of its unit of account (8 decimals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obligation {
    pub id: i64,
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub unit: String,
    pub amount_atoms: i64,
    pub remaining_atoms: i64,
    pub memo: Option<String>,
    pub status: ObligationStatus,
    pub created_at_us: i64,
    /// Debtor and creditor shared an owner when it was proposed: shown apart, since one
    /// person can record any sum between their own businesses.
    pub related: bool,
}

impl TryFrom<ObligationRow> for Obligation {
    type Error = LedgerError;
    fn try_from(row: ObligationRow) -> Result<Self, LedgerError> {
        Ok(Self {
            status: ObligationStatus::from_stored(&row.status, row.closed.as_deref())?,
            id: row.id,
            debtor: PrincipalId::new(row.debtor_id),
            creditor: PrincipalId::new(row.creditor_id),
            unit: row.unit,
            amount_atoms: row.amount_atoms,
            remaining_atoms: row.remaining_atoms,
            memo: row.memo,
            created_at_us: row.created_at_us,
            related: row.related != 0,
        })
    }
}

/// What a creditor records.
#[derive(Debug, Clone)]
pub struct NewObligation<'a> {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub unit: &'a str,
    pub amount_atoms: i64,
    pub memo: Option<&'a str>,
    pub related: bool,
}

pub fn load(conn: &mut DbConn, id: i64) -> Result<Option<Obligation>, LedgerError> {
    obligations::table
        .find(id)
        .select(COLUMNS)
        .first::<ObligationRow>(conn)
        .optional()?
        .map(Obligation::try_from)
        .transpose()
}

/// Records a proposed obligation.
pub fn insert(conn: &mut DbConn, new: &NewObligation<'_>) -> Result<Obligation, LedgerError> {
    let (status, _) = ObligationStatus::Proposed.stored();
    let row: ObligationRow = diesel::insert_into(obligations::table)
        .values((
            obligations::debtor_id.eq(new.debtor.get()),
            obligations::creditor_id.eq(new.creditor.get()),
            obligations::unit.eq(new.unit),
            obligations::amount_atoms.eq(new.amount_atoms),
            obligations::remaining_atoms.eq(new.amount_atoms),
            obligations::memo.eq(new.memo),
            obligations::related.eq(i32::from(new.related)),
            obligations::status.eq(status),
            obligations::created_at_us.eq(scrip_http::now_us()),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    row.try_into()
}

/// How many proposals wait for `debtor`'s answer: in all, and from `creditor`.
pub fn open_proposals(
    conn: &mut DbConn,
    debtor: PrincipalId,
    creditor: PrincipalId,
) -> Result<(i64, i64), LedgerError> {
    let waiting = || {
        obligations::table
            .filter(obligations::debtor_id.eq(debtor.get()))
            .filter(obligations::status.eq(ObligationStatus::Proposed.stored().0))
            .filter(obligations::closed.is_null())
    };
    let all = waiting().count().get_result(conn)?;
    let from_creditor = waiting()
        .filter(obligations::creditor_id.eq(creditor.get()))
        .count()
        .get_result(conn)?;
    Ok((all, from_creditor))
}

/// The ids of the accepted, open obligations in `unit` between businesses that shared an owner.
pub fn related_open(
    conn: &mut DbConn,
    unit: &str,
) -> Result<std::collections::HashSet<i64>, LedgerError> {
    let ids: Vec<i64> = obligations::table
        .filter(obligations::unit.eq(unit))
        .filter(obligations::status.eq(ObligationStatus::Accepted.stored().0))
        .filter(obligations::remaining_atoms.gt(0))
        .filter(obligations::related.eq(1))
        .select(obligations::id)
        .load(conn)?;
    Ok(ids.into_iter().collect())
}

/// Moves a proposed, open obligation to `decided` (accepted, rejected or withdrawn). A
/// conditional update, so of two concurrent decisions exactly one wins: `None` when the
/// obligation was no longer proposed.
pub fn decide(
    conn: &mut DbConn,
    id: i64,
    decided: ObligationStatus,
    now_us: i64,
) -> Result<Option<Obligation>, LedgerError> {
    let proposed = obligations::table
        .find(id)
        .filter(obligations::status.eq(ObligationStatus::Proposed.stored().0))
        .filter(obligations::closed.is_null());
    let changed = match decided.stored() {
        (status, None) => diesel::update(proposed)
            .set((
                obligations::status.eq(status),
                obligations::accepted_at_us.eq(Some(now_us)),
            ))
            .returning(COLUMNS)
            .get_result::<ObligationRow>(conn),
        (_, Some(closed)) => diesel::update(proposed)
            .set((
                obligations::closed.eq(Some(closed)),
                obligations::closed_at_us.eq(Some(now_us)),
            ))
            .returning(COLUMNS)
            .get_result::<ObligationRow>(conn),
    };
    changed.optional()?.map(Obligation::try_from).transpose()
}

/// The obligations of the businesses `owner` owns (as debtor or creditor; a worker sees none:
/// invoices are the owners' business), newest first below `before`. The businesses are a
/// subquery, never a list of ids in the statement (SQLite limits those; a person can own very
/// many businesses).
pub fn list_for_owner(
    conn: &mut DbConn,
    owner: PrincipalId,
    status: Option<ObligationStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Obligation>, LedgerError> {
    let businesses = || {
        memberships::table
            .filter(memberships::member_id.eq(owner.get()))
            .filter(memberships::role.eq(scrip_auth::access::Role::Owner.as_str()))
            .select(memberships::business_id)
    };
    let mut query = obligations::table
        .filter(
            obligations::debtor_id
                .eq_any(businesses())
                .or(obligations::creditor_id.eq_any(businesses())),
        )
        .order(obligations::id.desc())
        .limit(limit)
        .select(COLUMNS)
        .into_boxed();
    if let Some(status) = status {
        let (stored, closed) = status.stored();
        query = query.filter(obligations::status.eq(stored));
        query = match closed {
            Some(closed) => query.filter(obligations::closed.eq(closed)),
            None => query.filter(obligations::closed.is_null()),
        };
    }
    if let Some(before) = before {
        query = query.filter(obligations::id.lt(before));
    }
    query
        .load::<ObligationRow>(conn)?
        .into_iter()
        .map(Obligation::try_from)
        .collect()
}

/// Accepted obligations in `unit` with something left to pay: `(id, debtor, creditor,
/// remaining atoms)`, in id order. What a clearing run counts.
pub fn open_accepted(
    conn: &mut DbConn,
    unit: &str,
) -> Result<Vec<(i64, PrincipalId, PrincipalId, i64)>, LedgerError> {
    let rows: Vec<(i64, i64, i64, i64)> = obligations::table
        .filter(obligations::unit.eq(unit))
        .filter(obligations::status.eq(ObligationStatus::Accepted.stored().0))
        .filter(obligations::remaining_atoms.gt(0))
        .order(obligations::id)
        .select((
            obligations::id,
            obligations::debtor_id,
            obligations::creditor_id,
            obligations::remaining_atoms,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, debtor, creditor, remaining)| {
            (
                id,
                PrincipalId::new(debtor),
                PrincipalId::new(creditor),
                remaining,
            )
        })
        .collect())
}

/// Lowers an obligation's remaining amount; false when it no longer has that much left.
pub fn reduce(conn: &mut DbConn, id: i64, atoms: i64) -> Result<bool, LedgerError> {
    let changed = diesel::update(
        obligations::table
            .find(id)
            .filter(obligations::remaining_atoms.ge(atoms)),
    )
    .set(obligations::remaining_atoms.eq(obligations::remaining_atoms - atoms))
    .execute(conn)?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_columns() {
        for status in ObligationStatus::ALL {
            let (stored, closed) = status.stored();
            assert_eq!(
                ObligationStatus::from_stored(stored, closed).ok(),
                Some(status)
            );
            assert_eq!(ObligationStatus::parse(status.as_str()), Some(status));
        }
        assert!(ObligationStatus::from_stored("accepted", Some("rejected")).is_err());
    }
}
