//! Payment requests in the database. A request is paid at most once: [`claim`] marks it paid
//! only where it was unpaid and unexpired, in the caller's transaction, which then makes the
//! transfer; a refused transfer rolls the claim back with it. Under PostgreSQL a second payer's
//! claim waits on the first's row lock and then finds the row paid; under SQLite writers take
//! turns.

use crate::LedgerError;
use diesel::prelude::*;
use rand_core::{OsRng, RngCore};
use scrip_domain::{CurrencyId, PrincipalId, TransferId};
use scrip_store::DbConn;
use scrip_store::schema::payment_requests;

/// Open (unpaid, unexpired) requests one recipient may have at once: a till makes one per
/// sale, and an abandoned one expires; this bounds the rows one account can make.
pub const MAX_OPEN_PER_RECIPIENT: i64 = 500;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payment_requests)]
pub struct RequestRow {
    pub id: String,
    pub to_id: i64,
    pub currency_id: i64,
    pub amount_atoms: i64,
    pub memo: Option<String>,
    pub created_at_us: i64,
    pub expires_at_us: i64,
    pub paid_by: Option<i64>,
    pub transfer_id: Option<i64>,
    pub paid_at_us: Option<i64>,
}

/// Where a request stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Paid,
    Expired,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Expired => "expired",
        }
    }
}

impl RequestRow {
    /// Paid wins over expired: a request paid a moment before its expiry stays paid.
    pub fn status(&self, now_us: i64) -> Status {
        if self.paid_by.is_some() {
            Status::Paid
        } else if now_us >= self.expires_at_us {
            Status::Expired
        } else {
            Status::Open
        }
    }

    /// Whether the request may still be paid at `now_us`: `AlreadyPaid` or `RequestExpired`.
    pub fn payable(&self, now_us: i64) -> Result<(), LedgerError> {
        match self.status(now_us) {
            Status::Open => Ok(()),
            Status::Paid => Err(LedgerError::AlreadyPaid),
            Status::Expired => {
                let at = chrono::DateTime::from_timestamp_micros(self.expires_at_us)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                Err(LedgerError::RequestExpired { at })
            }
        }
    }

    pub fn to(&self) -> PrincipalId {
        PrincipalId::new(self.to_id)
    }

    pub fn currency(&self) -> CurrencyId {
        CurrencyId::new(self.currency_id)
    }
}

/// A new request's id: 128 random bits. The id is what the QR carries and all anyone needs
/// to read the request, so it must not be guessable.
pub fn new_id() -> String {
    let mut bytes = [0_u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("pr_{}", hex::encode(bytes))
}

#[derive(Debug)]
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub to: PrincipalId,
    pub currency: CurrencyId,
    pub amount_atoms: i64,
    pub memo: Option<&'a str>,
    pub created_by: PrincipalId,
    pub now_us: i64,
    pub expires_at_us: i64,
}

/// Requests to `to` that could still be paid at `now_us`.
pub fn open_count(conn: &mut DbConn, to: PrincipalId, now_us: i64) -> Result<i64, LedgerError> {
    Ok(payment_requests::table
        .filter(payment_requests::to_id.eq(to.get()))
        .filter(payment_requests::paid_by.is_null())
        .filter(payment_requests::expires_at_us.gt(now_us))
        .count()
        .get_result(conn)?)
}

pub fn insert(conn: &mut DbConn, new: &NewRequest<'_>) -> Result<RequestRow, LedgerError> {
    diesel::insert_into(payment_requests::table)
        .values((
            payment_requests::id.eq(new.id),
            payment_requests::to_id.eq(new.to.get()),
            payment_requests::currency_id.eq(new.currency.get()),
            payment_requests::amount_atoms.eq(new.amount_atoms),
            payment_requests::memo.eq(new.memo),
            payment_requests::created_by.eq(new.created_by.get()),
            payment_requests::created_at_us.eq(new.now_us),
            payment_requests::expires_at_us.eq(new.expires_at_us),
        ))
        .execute(conn)?;
    find(conn, new.id)?.ok_or_else(|| LedgerError::Invariant("a request vanished".into()))
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<RequestRow>, LedgerError> {
    Ok(payment_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks the request paid by `payer` if it is still open at `now_us`; false when another
/// payer got there first (or it expired meanwhile). The caller's transaction must then make
/// the transfer and [`record_transfer`], or roll back.
pub fn claim(
    conn: &mut DbConn,
    id: &str,
    payer: PrincipalId,
    now_us: i64,
) -> Result<bool, LedgerError> {
    let claimed = diesel::update(
        payment_requests::table
            .filter(payment_requests::id.eq(id))
            .filter(payment_requests::paid_by.is_null())
            .filter(payment_requests::expires_at_us.gt(now_us)),
    )
    .set((
        payment_requests::paid_by.eq(payer.get()),
        payment_requests::paid_at_us.eq(now_us),
    ))
    .execute(conn)?;
    Ok(claimed == 1)
}

pub fn record_transfer(
    conn: &mut DbConn,
    id: &str,
    transfer: TransferId,
) -> Result<(), LedgerError> {
    diesel::update(payment_requests::table.find(id))
        .set(payment_requests::transfer_id.eq(transfer.get()))
        .execute(conn)?;
    Ok(())
}

/// The request a payment paid, if it paid one.
pub fn paid_by_transfer(
    conn: &mut DbConn,
    transfer: TransferId,
) -> Result<Option<String>, LedgerError> {
    Ok(payment_requests::table
        .filter(payment_requests::transfer_id.eq(transfer.get()))
        .select(payment_requests::id)
        .first(conn)
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(paid_by: Option<i64>, expires_at_us: i64) -> RequestRow {
        RequestRow {
            id: new_id(),
            to_id: 1,
            currency_id: 1,
            amount_atoms: 100,
            memo: None,
            created_at_us: 0,
            expires_at_us,
            paid_by,
            transfer_id: None,
            paid_at_us: None,
        }
    }

    #[test]
    fn a_request_is_open_until_paid_or_expired_and_paid_wins() {
        assert_eq!(row(None, 10).status(9), Status::Open);
        assert_eq!(row(None, 10).status(10), Status::Expired);
        assert_eq!(row(Some(2), 10).status(5), Status::Paid);
        assert_eq!(row(Some(2), 10).status(50), Status::Paid);
    }

    #[test]
    fn ids_are_long_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 32);
    }
}
