//! Transfers, set-based: a batch of N transfers costs a fixed handful of statements instead
//! of several per transfer, because a database round trip (about 0.1 ms on this class of
//! machine) costs far more than applying the rules.
//!
//! 1. lock every account the batch touches, in ascending id order (PostgreSQL `FOR UPDATE`;
//!    SQLite already holds the write lock from `BEGIN IMMEDIATE`);
//! 2. apply the transfers one after another to those numbers in memory ([`Position::pay`],
//!    pure), so each is accepted or refused exactly as if it ran alone;
//! 3. write each account's net change in one `UPDATE` and every journal line in one `INSERT`.
//!
//! The rows stay locked until commit, so the numbers used in step 2 are the truth.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use diesel::prelude::*;
use scrip_domain::{CurrencyId, PrincipalId};
use scrip_store::schema::{accounts, transfers};
use scrip_store::{Column, Columns, DbConn};

use crate::model::{AccountRow, NewTransferRow, TransferRow, now_us};
use crate::transfer::{
    CurrencyRules, TransferRequest, checked_atoms, currency_rules, receiving_account,
};
use crate::{LedgerError, Transfer};

/// An account's numbers, locked for this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub balance_atoms: i64,
    pub held_atoms: i64,
    pub floor_atoms: i64,
    pub ceiling_atoms: Option<i64>,
    pub is_issuer: bool,
}

impl Position {
    /// Moves `atoms` from `payer` to `payee` if both rules allow it, else changes nothing.
    /// Amounts and balances are bounded by `MAX_AMOUNT_ATOMS`, so this arithmetic cannot overflow.
    pub fn pay(payer: &mut Self, payee: &mut Self, atoms: i64) -> Result<(), LedgerError> {
        if payer.balance_atoms - payer.held_atoms - atoms < payer.floor_atoms {
            return Err(if payer.is_issuer {
                LedgerError::CreditLimitExceeded
            } else {
                LedgerError::InsufficientFunds
            });
        }
        if payee
            .ceiling_atoms
            .is_some_and(|ceiling| payee.balance_atoms + atoms > ceiling)
        {
            return Err(LedgerError::MaxBalanceExceeded);
        }
        payer.balance_atoms -= atoms;
        payee.balance_atoms += atoms;
        Ok(())
    }
}

pub(crate) type Key = (PrincipalId, CurrencyId);

pub(crate) struct Locked {
    pub account_id: i64,
    pub original: Position,
    pub current: Position,
}

/// Applies `requests` in order inside the caller's transaction. Each is all-or-nothing on its
/// own: a refused transfer is reported in its slot and changes nothing; the others apply.
pub fn transfer_many(
    conn: &mut DbConn,
    requests: &[TransferRequest],
) -> Result<Vec<Result<Transfer, LedgerError>>, LedgerError> {
    let mut rules: HashMap<CurrencyId, CurrencyRules> = HashMap::new();
    let mut verdicts: Vec<Result<i64, LedgerError>> = Vec::with_capacity(requests.len());
    for request in requests {
        verdicts.push(validate(conn, request, &mut rules)?);
    }
    let (mut accounts, opened) = lock_accounts(conn, requests, &verdicts, &rules)?;

    let mut lines: Vec<NewTransferRow> = Vec::new();
    let now = now_us();
    for (request, verdict) in requests.iter().zip(verdicts.iter_mut()) {
        let Ok(atoms) = *verdict else { continue };
        match pay(&mut accounts, request, atoms, &rules[&request.currency]) {
            Ok((from_account_id, to_account_id)) => lines.push(NewTransferRow {
                currency_id: request.currency.get(),
                from_account_id,
                to_account_id,
                amount_atoms: atoms,
                kind: request.kind.as_str(),
                memo: request.memo.as_deref(),
                hold_id: None,
                created_at_us: now,
            }),
            Err(refusal) => *verdict = Err(refusal),
        }
    }
    write_deltas(
        conn,
        accounts.values().map(|locked| AccountDelta {
            account_id: locked.account_id,
            balance_atoms: locked.current.balance_atoms - locked.original.balance_atoms,
            held_atoms: 0,
        }),
    )?;
    close_unused(conn, &opened, &lines)?;
    // Accepted slots and journal lines are in the same order, one to one.
    let mut recorded = record_lines(conn, &lines, &rules)?.into_iter();
    Ok(verdicts
        .into_iter()
        .map(|verdict| verdict.and_then(|_| recorded.next().ok_or(LedgerError::UnknownTransfer)))
        .collect())
}

/// Checks what can be checked without balances; `Ok(atoms)` when the transfer may proceed.
/// Only infrastructure errors abort the batch.
fn validate(
    conn: &mut DbConn,
    request: &TransferRequest,
    rules: &mut HashMap<CurrencyId, CurrencyRules>,
) -> Result<Result<i64, LedgerError>, LedgerError> {
    if request.from == request.to {
        return Ok(Err(LedgerError::SameAccount));
    }
    if let Entry::Vacant(slot) = rules.entry(request.currency) {
        match currency_rules(conn, request.currency) {
            Ok(found) => {
                slot.insert(found);
            }
            Err(e) if e.is_business_rule() => return Ok(Err(e)),
            Err(e) => return Err(e),
        }
    }
    Ok(checked_atoms(request.amount, &rules[&request.currency]))
}

fn pay(
    accounts: &mut HashMap<Key, Locked>,
    request: &TransferRequest,
    atoms: i64,
    rules: &CurrencyRules,
) -> Result<(i64, i64), LedgerError> {
    let payer_key = (request.from, request.currency);
    let payee_key = (request.to, request.currency);
    let Some(mut payer) = accounts.get(&payer_key).map(|a| a.current) else {
        // Never held the currency: nothing to spend.
        return Err(if request.from == rules.issuer {
            LedgerError::CreditLimitExceeded
        } else {
            LedgerError::InsufficientFunds
        });
    };
    let Some(mut payee) = accounts.get(&payee_key).map(|a| a.current) else {
        return Err(LedgerError::UnknownPrincipal);
    };
    Position::pay(&mut payer, &mut payee, atoms)?;
    let mut ids = (0, 0);
    for (key, position, slot) in [
        (payer_key, payer, &mut ids.0),
        (payee_key, payee, &mut ids.1),
    ] {
        if let Some(locked) = accounts.get_mut(&key) {
            locked.current = position;
            *slot = locked.account_id;
        }
    }
    Ok(ids)
}

/// Removes accounts this batch opened for payees whose transfers were all refused, so a
/// refused transfer leaves no trace (not even an empty account). Only rows inserted by this
/// transaction are removed; nobody else can have seen them yet.
pub(crate) fn close_unused(
    conn: &mut DbConn,
    opened: &[i64],
    lines: &[NewTransferRow],
) -> Result<(), LedgerError> {
    let used: BTreeSet<i64> = lines.iter().map(|l| l.to_account_id).collect();
    let unused: Vec<i64> = opened
        .iter()
        .copied()
        .filter(|id| !used.contains(id))
        .collect();
    if !unused.is_empty() {
        diesel::delete(accounts::table.filter(accounts::id.eq_any(unused))).execute(conn)?;
    }
    Ok(())
}

/// Locks every account the valid requests touch, opening payees' accounts on first receipt;
/// also returns the ids of the accounts it opened.
fn lock_accounts(
    conn: &mut DbConn,
    requests: &[TransferRequest],
    verdicts: &[Result<i64, LedgerError>],
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> Result<(HashMap<Key, Locked>, Vec<i64>), LedgerError> {
    let mut keys: BTreeSet<Key> = BTreeSet::new();
    let mut payees: BTreeSet<Key> = BTreeSet::new();
    for (request, verdict) in requests.iter().zip(verdicts) {
        if verdict.is_ok() {
            keys.insert((request.from, request.currency));
            keys.insert((request.to, request.currency));
            payees.insert((request.to, request.currency));
        }
    }
    let mut locked = select_accounts(conn, &keys, rules, true)?;
    let missing: Vec<Key> = payees
        .into_iter()
        .filter(|k| !locked.contains_key(k))
        .collect();
    let mut opened = Vec::new();
    if !missing.is_empty() {
        for &(principal, currency) in &missing {
            match receiving_account(conn, principal, &rules[&currency]) {
                Ok((row, true)) => opened.push(row.id),
                Ok((_, false)) | Err(LedgerError::UnknownPrincipal) => {}
                Err(other) => return Err(other),
            }
        }
        // Lock them too: one may have been opened by a concurrent transaction.
        locked = select_accounts(conn, &keys, rules, true)?;
    }
    Ok((locked, opened))
}

/// The start of every read of accounts by `(principal, currency)`; the keys follow.
macro_rules! select_accounts_where_key_in {
    () => {
        "SELECT id, principal_id, currency_id, balance_atoms, held_atoms, floor_atoms, ceiling_atoms \
         FROM accounts WHERE (principal_id, currency_id) IN "
    };
}
const SELECT_ACCOUNTS_PG: &str = concat!(
    select_accounts_where_key_in!(),
    "(SELECT * FROM unnest(?, ?)) ORDER BY id"
);
const SELECT_ACCOUNTS_PG_FOR_UPDATE: &str = concat!(
    select_accounts_where_key_in!(),
    "(SELECT * FROM unnest(?, ?)) ORDER BY id FOR UPDATE"
);

/// The accounts of `keys` that exist, in ascending id order; with `lock`, locked until commit
/// (`FOR UPDATE` on PostgreSQL; SQLite's write transaction already excludes other writers).
pub(crate) fn select_accounts(
    conn: &mut DbConn,
    keys: &BTreeSet<Key>,
    rules: &HashMap<CurrencyId, CurrencyRules>,
    lock: bool,
) -> Result<HashMap<Key, Locked>, LedgerError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<AccountRow> = match conn {
        DbConn::Postgres(pg) => {
            let (principals, currencies) = keys.iter().map(|(p, c)| (p.get(), c.get())).unzip();
            Columns::new(if lock {
                SELECT_ACCOUNTS_PG_FOR_UPDATE
            } else {
                SELECT_ACCOUNTS_PG
            })
            .replanned()
            .bind(Column::BigInt(principals))
            .bind(Column::BigInt(currencies))
            .load(pg)?
        }
        DbConn::Sqlite(_) => {
            // Only integers from typed ids are inlined here, never text from a request. No
            // `FOR UPDATE`: SQLite's write transaction already excludes other writers.
            let mut sql = String::from(concat!(select_accounts_where_key_in!(), "("));
            for (i, (principal, currency)) in keys.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(sql, "{sep}({}, {})", principal.get(), currency.get());
            }
            sql.push_str(") ORDER BY id");
            diesel::sql_query(sql).load(conn)?
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let currency = CurrencyId::new(row.currency_id);
            let principal = PrincipalId::new(row.principal_id);
            let position = Position {
                balance_atoms: row.balance_atoms,
                held_atoms: row.held_atoms,
                floor_atoms: row.floor_atoms,
                ceiling_atoms: row.ceiling_atoms,
                is_issuer: rules.get(&currency).is_some_and(|r| r.issuer == principal),
            };
            let locked = Locked {
                account_id: row.id,
                original: position,
                current: position,
            };
            ((principal, currency), locked)
        })
        .collect())
}

/// How much one account's balance and held funds change in a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountDelta {
    pub account_id: i64,
    pub balance_atoms: i64,
    pub held_atoms: i64,
}

/// One statement for every account that changed: `balance += delta, held += delta`.
pub(crate) fn write_deltas(
    conn: &mut DbConn,
    deltas: impl Iterator<Item = AccountDelta>,
) -> Result<(), LedgerError> {
    let deltas: Vec<AccountDelta> = deltas
        .filter(|d| d.balance_atoms != 0 || d.held_atoms != 0)
        .collect();
    if deltas.is_empty() {
        return Ok(());
    }
    // A join, not a subquery per column and row: the cost stays linear in the batch.
    match conn {
        DbConn::Postgres(pg) => {
            Columns::new(
                "UPDATE accounts SET balance_atoms = accounts.balance_atoms + delta.balance, \
                 held_atoms = accounts.held_atoms + delta.held \
                 FROM unnest(?, ?, ?) AS delta (id, balance, held) WHERE accounts.id = delta.id",
            )
            .replanned()
            .bind(Column::BigInt(
                deltas.iter().map(|d| d.account_id).collect(),
            ))
            .bind(Column::BigInt(
                deltas.iter().map(|d| d.balance_atoms).collect(),
            ))
            .bind(Column::BigInt(
                deltas.iter().map(|d| d.held_atoms).collect(),
            ))
            .execute(pg)?;
        }
        DbConn::Sqlite(_) => {
            let mut values = String::new();
            for delta in &deltas {
                let sep = if values.is_empty() { "" } else { ", " };
                // Only integers are inlined.
                let _ = write!(
                    values,
                    "{sep}({}, CAST({} AS BIGINT), CAST({} AS BIGINT))",
                    delta.account_id, delta.balance_atoms, delta.held_atoms
                );
            }
            let sql = format!(
                "WITH delta (id, balance, held) AS (VALUES {values}) \
                 UPDATE accounts SET \
                 balance_atoms = accounts.balance_atoms + delta.balance, \
                 held_atoms = accounts.held_atoms + delta.held \
                 FROM delta WHERE accounts.id = delta.id"
            );
            diesel::sql_query(sql).execute(conn)?;
        }
    }
    Ok(())
}

pub(crate) fn record_lines(
    conn: &mut DbConn,
    lines: &[NewTransferRow],
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> Result<Vec<Transfer>, LedgerError> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    // Multi-row INSERT ... RETURNING exists on both backends, but not on diesel's
    // MultiConnection, so it is issued on the concrete connection.
    let insert = diesel::insert_into(transfers::table).values(lines);
    let mut recorded: Vec<TransferRow> = match conn {
        DbConn::Postgres(pg) => insert.get_results(pg)?,
        DbConn::Sqlite(sqlite) => insert.get_results(sqlite)?,
    };
    // Identity values are handed out in VALUES order; sorting makes the pairing explicit.
    recorded.sort_unstable_by_key(|row| row.id);
    assert_eq!(
        recorded.len(),
        lines.len(),
        "one journal line per accepted transfer"
    );
    recorded
        .into_iter()
        .map(|row| {
            let scale = rules[&CurrencyId::new(row.currency_id)].scale;
            row.into_transfer(scale)
        })
        .collect()
}
