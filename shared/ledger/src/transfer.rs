//! Holds and their settlement, and the pieces transfers share with them.
//!
//! Plain transfers go through the set-based path in `batch`. Holds change one or two
//! accounts at a time with conditional `UPDATE`s whose `WHERE` clause is the rule itself
//! (`balance - held - x >= floor`, `balance + x <= ceiling`), so a concurrent writer can never
//! slip between a check and a write. The two accounts of a settlement are updated in ascending
//! id order, the same order `batch` locks in, which makes deadlocks rare; the ones that remain
//! (several settlements in one transaction, accounts opened concurrently) are retried by
//! `Ledger::write`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Amount, CurrencyId, HoldId, PrincipalId, Scale};
use scrip_store::DbConn;
use scrip_store::schema::{accounts, currencies, holds, transfers};

use crate::model::{AccountRow, HoldRow, MAX_AMOUNT_ATOMS, NewTransferRow, TransferRow, now_us};
use crate::principals::principal_by_id;
use crate::{Account, Hold, LedgerError, Transfer, TransferKind};

/// A request to move `amount` of a currency from one principal's account to another's.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub currency: CurrencyId,
    pub from: PrincipalId,
    pub to: PrincipalId,
    pub amount: Amount,
    pub kind: TransferKind,
    pub memo: Option<String>,
}

/// What a transfer needs to know of its currency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrencyRules {
    pub id: CurrencyId,
    pub scale: Scale,
    pub issuer: PrincipalId,
}

pub(crate) fn currency_rules(
    conn: &mut DbConn,
    id: CurrencyId,
) -> Result<CurrencyRules, LedgerError> {
    let (scale, issuer) = currencies::table
        .find(id.get())
        .select((currencies::scale, currencies::issuer_id))
        .first::<(i32, i64)>(conn)
        .optional()?
        .ok_or(LedgerError::UnknownCurrency)?;
    Ok(CurrencyRules {
        id,
        scale: Scale::new(i64::from(scale))?,
        issuer: PrincipalId::new(issuer),
    })
}

/// Checks an amount that moves money against the currency: positive, same scale, bounded.
pub(crate) fn checked_atoms(amount: Amount, rules: &CurrencyRules) -> Result<i64, LedgerError> {
    if amount.scale() != rules.scale {
        return Err(LedgerError::ScaleMismatch {
            expected: rules.scale.decimals(),
        });
    }
    amount.ensure_positive()?;
    if amount.atoms() > MAX_AMOUNT_ATOMS {
        return Err(scrip_domain::AmountError::Overflow.into());
    }
    Ok(amount.atoms())
}

fn find_account(
    conn: &mut DbConn,
    principal: PrincipalId,
    currency: CurrencyId,
) -> Result<Option<AccountRow>, LedgerError> {
    Ok(accounts::table
        .filter(accounts::principal_id.eq(principal.get()))
        .filter(accounts::currency_id.eq(currency.get()))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

/// The receiving side's account, opened on first receipt with the currency's ceiling.
/// Returns the account and whether this call opened it.
pub(crate) fn receiving_account(
    conn: &mut DbConn,
    principal: PrincipalId,
    rules: &CurrencyRules,
) -> Result<(AccountRow, bool), LedgerError> {
    if let Some(row) = find_account(conn, principal, rules.id)? {
        return Ok((row, false));
    }
    // Checked first: on PostgreSQL a foreign-key violation would abort the whole transaction.
    principal_by_id(conn, principal)?;
    // The ceiling is read under a share lock on the currency row, which `set_limits` locks
    // for update: a limit change and a first receipt cannot interleave, so a new account never
    // carries a stale maximum balance.
    let ceiling_atoms = current_max_balance(conn, rules.id)?;
    // In a savepoint: a concurrent first receipt by the same principal wins the unique key,
    // and on PostgreSQL a failed statement would otherwise abort the whole transaction.
    let opened = conn.transaction(|conn| {
        diesel::insert_into(accounts::table)
            .values((
                accounts::principal_id.eq(principal.get()),
                accounts::currency_id.eq(rules.id.get()),
                accounts::floor_atoms.eq(0_i64),
                accounts::ceiling_atoms.eq(ceiling_atoms),
                accounts::created_at_us.eq(now_us()),
            ))
            .execute(conn)
    });
    let created = match opened {
        Ok(_) => true,
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => false,
        Err(other) => return Err(other.into()),
    };
    let row = find_account(conn, principal, rules.id)?.ok_or(LedgerError::UnknownPrincipal)?;
    Ok((row, created))
}

#[derive(diesel::QueryableByName)]
struct MaxBalance {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    max_balance_atoms: Option<i64>,
}

/// The currency's maximum balance, read under a share lock on PostgreSQL (SQLite's write
/// transactions are already serialized).
fn current_max_balance(
    conn: &mut DbConn,
    currency: CurrencyId,
) -> Result<Option<i64>, LedgerError> {
    let lock = if matches!(conn, DbConn::Postgres(_)) {
        " FOR SHARE"
    } else {
        ""
    };
    // Only an integer from a typed id is inlined.
    let sql = format!(
        "SELECT max_balance_atoms FROM currencies WHERE id = {}{lock}",
        currency.get()
    );
    let rows: Vec<MaxBalance> = diesel::sql_query(sql).load(conn)?;
    rows.into_iter()
        .next()
        .map(|r| r.max_balance_atoms)
        .ok_or(LedgerError::UnknownCurrency)
}

/// Locks the currency row for a policy change (PostgreSQL; see [`receiving_account`]).
pub(crate) fn lock_currency(conn: &mut DbConn, currency: CurrencyId) -> Result<(), LedgerError> {
    if matches!(conn, DbConn::Postgres(_)) {
        diesel::sql_query(format!(
            "SELECT id FROM currencies WHERE id = {} FOR UPDATE",
            currency.get()
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Takes `atoms` off the paying account's balance and its held funds together (the hold row
/// was reduced by the caller), so its available balance does not change.
fn debit_held(conn: &mut DbConn, account: i64, atoms: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        accounts::table
            .find(account)
            .filter(accounts::held_atoms.ge(atoms)),
    )
    .set((
        accounts::balance_atoms.eq(accounts::balance_atoms - atoms),
        accounts::held_atoms.eq(accounts::held_atoms - atoms),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Adds `atoms` to the receiving account; false when its ceiling refused it.
fn credit(conn: &mut DbConn, account: i64, atoms: i64) -> QueryResult<bool> {
    let changed =
        diesel::update(accounts::table.find(account).filter(
            accounts::ceiling_atoms.is_null().or(
                (accounts::balance_atoms + atoms).le(accounts::ceiling_atoms.assume_not_null()),
            ),
        ))
        .set(accounts::balance_atoms.eq(accounts::balance_atoms + atoms))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Reverses one leg that succeeded when the other was refused, inside the same transaction,
/// so a refused transfer leaves nothing behind without needing a savepoint per transfer.
fn undo(
    conn: &mut DbConn,
    account: i64,
    delta_atoms: i64,
    held_delta_atoms: i64,
) -> QueryResult<()> {
    diesel::update(accounts::table.find(account))
        .set((
            accounts::balance_atoms.eq(accounts::balance_atoms + delta_atoms),
            accounts::held_atoms.eq(accounts::held_atoms + held_delta_atoms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Applies both legs of a settlement in ascending account order; all or nothing.
fn apply_legs(
    conn: &mut DbConn,
    payer: &AccountRow,
    payee: &AccountRow,
    atoms: i64,
) -> Result<(), LedgerError> {
    if payer.id < payee.id {
        if !debit_held(conn, payer.id, atoms)? {
            return Err(LedgerError::HoldExceeded);
        }
        if !credit(conn, payee.id, atoms)? {
            undo(conn, payer.id, atoms, atoms)?;
            return Err(LedgerError::MaxBalanceExceeded);
        }
    } else {
        if !credit(conn, payee.id, atoms)? {
            return Err(LedgerError::MaxBalanceExceeded);
        }
        if !debit_held(conn, payer.id, atoms)? {
            undo(conn, payee.id, -atoms, 0)?;
            return Err(LedgerError::HoldExceeded);
        }
    }
    Ok(())
}

fn record(
    conn: &mut DbConn,
    rules: &CurrencyRules,
    legs: (&AccountRow, &AccountRow),
    atoms: i64,
    kind: TransferKind,
    memo: Option<&str>,
    hold: Option<HoldId>,
) -> Result<Transfer, LedgerError> {
    let row: TransferRow = diesel::insert_into(transfers::table)
        .values(NewTransferRow {
            currency_id: rules.id.get(),
            from_account_id: legs.0.id,
            to_account_id: legs.1.id,
            amount_atoms: atoms,
            kind: kind.as_str(),
            memo,
            hold_id: hold.map(HoldId::get),
            created_at_us: now_us(),
        })
        .get_result(conn)?;
    row.into_transfer(rules.scale)
}

/// Reserves `amount` of `principal`'s available balance (for an open order, say).
pub fn place_hold(
    conn: &mut DbConn,
    principal: PrincipalId,
    currency: CurrencyId,
    amount: Amount,
    reason: &str,
) -> Result<Hold, LedgerError> {
    let rules = currency_rules(conn, currency)?;
    let atoms = checked_atoms(amount, &rules)?;
    let refused = || {
        if principal == rules.issuer {
            LedgerError::CreditLimitExceeded
        } else {
            LedgerError::InsufficientFunds
        }
    };
    let account = find_account(conn, principal, currency)?.ok_or_else(refused)?;
    let reserved = diesel::update(accounts::table.find(account.id).filter(
        (accounts::balance_atoms - accounts::held_atoms - atoms).ge(accounts::floor_atoms),
    ))
    .set(accounts::held_atoms.eq(accounts::held_atoms + atoms))
    .execute(conn)?;
    if reserved != 1 {
        return Err(refused());
    }
    let row: HoldRow = diesel::insert_into(holds::table)
        .values((
            holds::account_id.eq(account.id),
            holds::amount_atoms.eq(atoms),
            holds::remaining_atoms.eq(atoms),
            holds::reason.eq(reason),
            holds::created_at_us.eq(now_us()),
        ))
        .get_result::<HoldRow>(conn)?;
    Ok(row.into_hold(rules.scale))
}

/// The hold, the account it is on and that account's currency rules.
fn hold_with_account(
    conn: &mut DbConn,
    hold: HoldId,
) -> Result<(HoldRow, AccountRow, CurrencyRules), LedgerError> {
    let (hold_row, account) = holds::table
        .inner_join(accounts::table)
        .filter(holds::id.eq(hold.get()))
        .select((HoldRow::as_select(), AccountRow::as_select()))
        .first::<(HoldRow, AccountRow)>(conn)
        .optional()?
        .ok_or(LedgerError::UnknownHold)?;
    let rules = currency_rules(conn, CurrencyId::new(account.currency_id))?;
    Ok((hold_row, account, rules))
}

/// Takes `atoms` off the hold's remaining amount; refused when less remains.
fn consume_hold(conn: &mut DbConn, hold: HoldId, atoms: i64) -> Result<(), LedgerError> {
    let consumed = diesel::update(
        holds::table
            .find(hold.get())
            .filter(holds::remaining_atoms.ge(atoms)),
    )
    .set(holds::remaining_atoms.eq(holds::remaining_atoms - atoms))
    .execute(conn)?;
    if consumed == 1 {
        Ok(())
    } else {
        Err(LedgerError::HoldExceeded)
    }
}

/// Gives back `amount` of a hold to the available balance (`None`: all that remains).
pub fn release_hold(
    conn: &mut DbConn,
    hold: HoldId,
    amount: Option<Amount>,
) -> Result<Hold, LedgerError> {
    let (hold_row, account, rules) = hold_with_account(conn, hold)?;
    let atoms = match amount {
        Some(amount) => checked_atoms(amount, &rules)?,
        None => hold_row.remaining_atoms,
    };
    if atoms > 0 {
        consume_hold(conn, hold, atoms)?;
        diesel::update(accounts::table.find(account.id))
            .set(accounts::held_atoms.eq(accounts::held_atoms - atoms))
            .execute(conn)?;
    }
    Ok(HoldRow {
        remaining_atoms: hold_row.remaining_atoms - atoms,
        ..hold_row
    }
    .into_hold(rules.scale))
}

/// Pays `amount` out of a hold to `to`: the settlement of a trade against reserved funds.
pub fn settle_hold(
    conn: &mut DbConn,
    hold: HoldId,
    to: PrincipalId,
    amount: Amount,
    kind: TransferKind,
    memo: Option<&str>,
) -> Result<Transfer, LedgerError> {
    let (_, payer, rules) = hold_with_account(conn, hold)?;
    let atoms = checked_atoms(amount, &rules)?;
    if payer.principal_id == to.get() {
        return Err(LedgerError::SameAccount);
    }
    let (payee, _) = receiving_account(conn, to, &rules)?;
    consume_hold(conn, hold, atoms)?;
    if let Err(refusal) = apply_legs(conn, &payer, &payee, atoms) {
        // Put the hold back as it was: a refusal changes nothing.
        diesel::update(holds::table.find(hold.get()))
            .set(holds::remaining_atoms.eq(holds::remaining_atoms + atoms))
            .execute(conn)?;
        return Err(refusal);
    }
    record(
        conn,
        &rules,
        (&payer, &payee),
        atoms,
        kind,
        memo,
        Some(hold),
    )
}

/// One principal's account in one currency, if it was ever opened.
pub fn account(
    conn: &mut DbConn,
    principal: PrincipalId,
    currency: CurrencyId,
) -> Result<Option<Account>, LedgerError> {
    let rules = currency_rules(conn, currency)?;
    Ok(find_account(conn, principal, currency)?.map(|row| row.into_account(rules.scale)))
}
