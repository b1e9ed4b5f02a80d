//! Read models over the ledger for the wallet and issuer APIs: holdings with their currency
//! codes, a principal's journal page with the counterparties' handles, currency statistics.

use std::collections::HashMap;

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyCode, CurrencyId, Handle, PrincipalId, Scale, TransferId};
use scrip_store::schema::{accounts, currencies, principals, transfers};
use scrip_store::{Backend, DbConn};

use crate::model::{AccountRow, TransferKind, TransferRow};
use crate::{Account, Currency, LedgerError, Transfer};

/// An account with its currency's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub account: Account,
    pub code: CurrencyCode,
    /// Whether the currency charges demurrage (so its next charge is worth showing).
    pub has_demurrage: bool,
}

/// Every account of a principal, oldest first.
pub fn holdings(conn: &mut DbConn, principal: PrincipalId) -> Result<Vec<Holding>, LedgerError> {
    let rows: Vec<(AccountRow, i32, String, Option<i32>)> = accounts::table
        .inner_join(currencies::table)
        .filter(accounts::principal_id.eq(principal.get()))
        .order(accounts::id)
        .select((
            AccountRow::as_select(),
            currencies::scale,
            currencies::code,
            currencies::demurrage_rate_bps,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(row, scale, code, demurrage_rate_bps)| {
            Ok(Holding {
                account: row.into_account(Scale::new(i64::from(scale))?),
                code: CurrencyCode::parse(&code)?,
                has_demurrage: demurrage_rate_bps.is_some(),
            })
        })
        .collect()
}

/// A journal line with what a reader needs to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub transfer: Transfer,
    pub from: Handle,
    pub to: Handle,
    pub from_principal: PrincipalId,
    pub to_principal: PrincipalId,
    pub code: CurrencyCode,
}

/// Which of a principal's journal lines a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Everything paid or received.
    All,
    /// Payments received only: what a business's worker at the till sees.
    PaymentsReceived,
}

/// A page of the principal's transfers (paid or received), newest first, below `before`.
pub fn journal_page(
    conn: &mut DbConn,
    (principal, lines): (PrincipalId, Lines),
    currency: Option<CurrencyId>,
    before: Option<TransferId>,
    limit: i64,
) -> Result<Vec<JournalEntry>, LedgerError> {
    // The principal's accounts. `currency_id = ? OR ?`: the second is true when no currency was asked for, so the
    // accounts query has one shape whether or not a currency is given.
    let any_currency = currency.is_none();
    let wanted = currency.map_or(0, CurrencyId::get);
    let own = || {
        accounts::table
            .filter(accounts::principal_id.eq(principal.get()))
            .filter(
                accounts::currency_id
                    .eq(wanted)
                    .or(any_currency.into_sql::<diesel::sql_types::Bool>()),
            )
            .select(accounts::id)
    };
    let mut query = match conn.backend() {
        // PostgreSQL binds the ids as one array (`= ANY($1)`), which its indexes serve.
        Backend::Postgres => {
            let ids: Vec<i64> = own().load(conn)?;
            transfers::table
                .filter(
                    transfers::from_account_id
                        .eq_any(ids.clone())
                        .or(transfers::to_account_id.eq_any(ids)),
                )
                .order(transfers::id.desc())
                .limit(limit)
                .select(TransferRow::as_select())
                .into_boxed()
        }
        // SQLite would bind one variable per id, and refuses more than 32,766: a holder of
        // very many currencies could no longer read its history. A subquery has no such limit.
        Backend::Sqlite => transfers::table
            .filter(
                transfers::from_account_id
                    .eq_any(own())
                    .or(transfers::to_account_id.eq_any(own())),
            )
            .order(transfers::id.desc())
            .limit(limit)
            .select(TransferRow::as_select())
            .into_boxed(),
    };
    if let Some(before) = before {
        query = query.filter(transfers::id.lt(before.get()));
    }
    if lines == Lines::PaymentsReceived {
        // `own` is every account of the principal: what it paid is `from` one of them.
        query = match conn.backend() {
            Backend::Postgres => {
                let ids: Vec<i64> = own().load(conn)?;
                query.filter(diesel::dsl::not(transfers::from_account_id.eq_any(ids)))
            }
            Backend::Sqlite => {
                query.filter(diesel::dsl::not(transfers::from_account_id.eq_any(own())))
            }
        }
        .filter(transfers::kind.eq(TransferKind::Payment.as_str()));
    }
    let rows: Vec<TransferRow> = query.load(conn)?;
    describe(conn, rows)
}

/// One account's journal lines from `from_us` (inclusive) to `to_us` (exclusive), oldest first,
/// at most `limit`: a statement's lines.
pub fn account_lines(
    conn: &mut DbConn,
    account_id: i64,
    (from_us, to_us): (i64, i64),
    limit: i64,
) -> Result<Vec<JournalEntry>, LedgerError> {
    let rows: Vec<TransferRow> = transfers::table
        .filter(
            transfers::from_account_id
                .eq(account_id)
                .or(transfers::to_account_id.eq(account_id)),
        )
        .filter(transfers::created_at_us.ge(from_us))
        .filter(transfers::created_at_us.lt(to_us))
        .order(transfers::id.asc())
        .limit(limit)
        .select(TransferRow::as_select())
        .load(conn)?;
    describe(conn, rows)
}

/// What the account's balance moved by from `from_us` on (received minus paid), so a
/// statement can start from the balance the account had then.
pub fn account_moved_since(
    conn: &mut DbConn,
    account_id: i64,
    from_us: i64,
) -> Result<i64, LedgerError> {
    #[derive(QueryableByName)]
    struct Moved {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        moved: i64,
    }
    // Only two integers are inlined, never client text. The sum fits: every balance does.
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN to_account_id = {account_id} THEN amount_atoms \
         ELSE -amount_atoms END), 0) AS BIGINT) AS moved FROM transfers \
         WHERE (from_account_id = {account_id} OR to_account_id = {account_id}) \
         AND created_at_us >= {from_us}"
    );
    Ok(diesel::sql_query(sql).get_result::<Moved>(conn)?.moved)
}

/// One journal line by id.
pub fn journal_entry(
    conn: &mut DbConn,
    id: TransferId,
) -> Result<Option<JournalEntry>, LedgerError> {
    let rows: Vec<TransferRow> = transfers::table
        .find(id.get())
        .select(TransferRow::as_select())
        .load(conn)?;
    Ok(describe(conn, rows)?.pop())
}

/// Adds handles and currency codes to journal rows with two queries for the whole page.
fn describe(conn: &mut DbConn, rows: Vec<TransferRow>) -> Result<Vec<JournalEntry>, LedgerError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let account_ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.from_account_id, r.to_account_id])
        .collect();
    let owners: HashMap<i64, (i64, String)> = accounts::table
        .inner_join(principals::table)
        .filter(accounts::id.eq_any(account_ids))
        .select((accounts::id, principals::id, principals::handle))
        .load::<(i64, i64, String)>(conn)?
        .into_iter()
        .map(|(account, principal, handle)| (account, (principal, handle)))
        .collect();
    let currency_ids: Vec<i64> = rows.iter().map(|r| r.currency_id).collect();
    let codes: HashMap<i64, (String, i32)> = currencies::table
        .filter(currencies::id.eq_any(currency_ids))
        .select((currencies::id, currencies::code, currencies::scale))
        .load::<(i64, String, i32)>(conn)?
        .into_iter()
        .map(|(id, code, scale)| (id, (code, scale)))
        .collect();
    rows.into_iter()
        .map(|row| {
            let missing = || LedgerError::UnknownTransfer;
            let (code, scale) = codes.get(&row.currency_id).ok_or_else(missing)?;
            let (from_principal, from) = owners.get(&row.from_account_id).ok_or_else(missing)?;
            let (to_principal, to) = owners.get(&row.to_account_id).ok_or_else(missing)?;
            Ok(JournalEntry {
                from: Handle::parse(from)?,
                to: Handle::parse(to)?,
                from_principal: PrincipalId::new(*from_principal),
                to_principal: PrincipalId::new(*to_principal),
                code: CurrencyCode::parse(code)?,
                transfer: row.into_transfer(Scale::new(i64::from(*scale))?)?,
            })
        })
        .collect()
}

/// What a currency's issuer owes its holders, and how many hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyStats {
    /// The sum of all positive balances. Because balances sum to zero and only the issuer may
    /// be negative, this is exactly minus the issuer's balance.
    pub outstanding: Amount,
    /// Accounts other than the issuer's with a positive balance.
    pub holders: i64,
}

/// The stats of each currency, in two queries whatever their number: the issuers' balances,
/// then the holders counted per currency.
pub fn currencies_stats(
    conn: &mut DbConn,
    currencies: &[Currency],
) -> Result<HashMap<CurrencyId, CurrencyStats>, LedgerError> {
    let ids: Vec<i64> = currencies.iter().map(|c| c.id.get()).collect();
    let issuer_balances: HashMap<i64, i64> = accounts::table
        .inner_join(currencies::table)
        .filter(accounts::currency_id.eq_any(&ids))
        .filter(accounts::principal_id.eq(currencies::issuer_id))
        .select((accounts::currency_id, accounts::balance_atoms))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let holders: HashMap<i64, i64> = accounts::table
        .inner_join(currencies::table)
        .filter(accounts::currency_id.eq_any(&ids))
        .filter(accounts::principal_id.ne(currencies::issuer_id))
        .filter(accounts::balance_atoms.gt(0))
        .group_by(accounts::currency_id)
        .select((accounts::currency_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(currencies
        .iter()
        .map(|currency| {
            let id = currency.id.get();
            let issuer_balance = issuer_balances.get(&id).copied().unwrap_or(0);
            let stats = CurrencyStats {
                outstanding: Amount::from_atoms(-issuer_balance.min(0), currency.scale),
                holders: holders.get(&id).copied().unwrap_or(0),
            };
            (currency.id, stats)
        })
        .collect())
}

/// A page of currencies, newest first.
pub fn currencies_page(
    conn: &mut DbConn,
    before: Option<CurrencyId>,
    limit: i64,
) -> Result<Vec<Currency>, LedgerError> {
    let mut query = currencies::table
        .order(currencies::id.desc())
        .limit(limit)
        .select(crate::model::CurrencyRow::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(currencies::id.lt(before.get()));
    }
    query
        .load(conn)?
        .into_iter()
        .map(Currency::try_from)
        .collect()
}

/// The currencies a principal issues.
pub fn currencies_of_issuer(
    conn: &mut DbConn,
    issuer: PrincipalId,
) -> Result<Vec<Currency>, LedgerError> {
    currencies::table
        .filter(currencies::issuer_id.eq(issuer.get()))
        .order(currencies::id)
        .select(crate::model::CurrencyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Currency::try_from)
        .collect()
}
