//! The one writer of balances and the journal.
//!
//! Every change of money is a [`Plan`] written here, set-based: a plan of N movements costs a
//! fixed handful of statements instead of several per movement, because a database round trip
//! (about 0.1 ms on this class of machine) costs far more than applying the rules.
//!
//! 1. [`lock`]: open receiving accounts on first receipt, then lock every account the plan
//!    touches in one statement, in ascending id order (PostgreSQL `FOR UPDATE`; SQLite already
//!    holds the write lock from `BEGIN IMMEDIATE`), the order every writer locks in;
//! 2. [`apply_plan`]: check every account's net change against the locked numbers with
//!    [`rules::check_change`] (the second of the paired checks: the first ran where the plan
//!    was made), then write each account's net change in one `UPDATE`, new holds in one
//!    `INSERT`, the holds drawn on in one conditional `UPDATE` and the journal in one `INSERT`.
//!
//! Opening accounts (the issuer's with its currency, holders' on first receipt), closing the
//! ones a plan opened but did not use, and setting floors and ceilings when limits change
//! (after `rules::check_limits`) happen here too: no other code writes `accounts` or
//! `transfers`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{CurrencyId, HoldId, PrincipalId, PrincipalKind, TransferId};
use scrip_store::schema::{accounts, holds, principals, transfers};
use scrip_store::{Column, Columns, DbConn};

use crate::LedgerError;
use crate::model::{AccountRow, NewTransferRow, now_us};
use crate::plan::{Key, Plan};
use crate::principals::principal_by_id;
use crate::rules::{self, CurrencyRules, Position};

/// An account as locked for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockedAccount {
    pub account_id: i64,
    pub position: Position,
}

/// The accounts a plan touches, locked until commit.
#[derive(Debug, Default)]
pub(crate) struct Locked {
    pub accounts: HashMap<Key, LockedAccount>,
    /// Accounts opened by this transaction (first receipts), with their keys and whether the
    /// opening made the principal a member (mutual credit).
    pub opened: Vec<Opened>,
    /// Receivers whose account could not be opened because the currency requires admission.
    pub not_admitted: BTreeSet<Key>,
}

impl Locked {
    /// The id of a locked account; `reason` refuses the plan when it is not locked.
    fn account_id(&self, key: &Key, reason: LedgerError) -> Result<i64, WriteError> {
        self.accounts
            .get(key)
            .map(|a| a.account_id)
            .ok_or(WriteError::Refused { key: *key, reason })
    }
}

/// An account this transaction opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opened {
    pub account_id: i64,
    pub key: Key,
    pub joined: bool,
}

/// Why [`apply_plan`] wrote nothing.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The rules refused one account's final position (numbers changed since the plan was
    /// made, say): the caller's transaction must be rolled back.
    Refused {
        key: Key,
        reason: LedgerError,
    },
    Ledger(LedgerError),
}

impl From<LedgerError> for WriteError {
    fn from(error: LedgerError) -> Self {
        Self::Ledger(error)
    }
}

impl From<diesel::result::Error> for WriteError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Ledger(error.into())
    }
}

/// What a written plan stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The ids of the plan's new holds, in the order they were placed.
    pub new_hold_ids: Vec<HoldId>,
    /// The ids of the plan's journal lines, in plan order.
    pub line_ids: Vec<TransferId>,
    pub created_at_us: i64,
}

/// Locks the accounts of `keys` in ascending id order, first opening those of `receivers`
/// that do not exist yet (a receiver that is no principal stays absent).
pub(crate) fn lock(
    conn: &mut DbConn,
    keys: &BTreeSet<Key>,
    receivers: &BTreeSet<Key>,
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> Result<Locked, LedgerError> {
    let mut accounts = select_accounts(conn, keys, rules, true)?;
    let absent: BTreeSet<Key> = receivers
        .iter()
        .filter(|key| !accounts.contains_key(key))
        .copied()
        .collect();
    let mut opened = Vec::new();
    let mut not_admitted = BTreeSet::new();
    if !absent.is_empty() {
        // First receipts (rare): open the accounts, then lock them too. New rows nobody else
        // holds yet, unless a concurrent first receipt opened the same one; a deadlock that
        // causes is detected by the database and the transaction is retried.
        for &(principal, currency) in &absent {
            let rules = rules.get(&currency).ok_or(LedgerError::UnknownCurrency)?;
            match open_account(conn, principal, rules) {
                Ok((row, Some(joined))) => opened.push(Opened {
                    account_id: row.id,
                    key: (principal, currency),
                    joined,
                }),
                Ok((_, None)) | Err(LedgerError::UnknownPrincipal) => {}
                Err(LedgerError::NotAdmitted) => {
                    not_admitted.insert((principal, currency));
                }
                Err(other) => return Err(other),
            }
        }
        accounts.extend(select_accounts(conn, &absent, rules, true)?);
    }
    for key in crate::members::former_members(conn, &accounts, receivers, rules)? {
        accounts.remove(&key);
        not_admitted.insert(key);
    }
    Ok(Locked {
        accounts,
        opened,
        not_admitted,
    })
}

/// Writes `plan` inside the caller's transaction, after checking every account's net change
/// against the locked numbers. On `Err` the caller rolls its transaction back.
pub(crate) fn apply_plan(
    conn: &mut DbConn,
    plan: &Plan,
    locked: &Locked,
) -> Result<Applied, WriteError> {
    // A hold on an account the plan could not lock is no hold of that account.
    check_holds(conn, plan, &|key: &Key| {
        locked.account_id(key, LedgerError::UnknownHold)
    })?;
    for (&key, &change) in &plan.changes {
        if change.is_zero() {
            continue;
        }
        let account = locked
            .accounts
            .get(&key)
            .ok_or_else(|| WriteError::Refused {
                key,
                reason: if locked.not_admitted.contains(&key) {
                    LedgerError::NotAdmitted
                } else {
                    LedgerError::UnknownPrincipal
                },
            })?;
        rules::check_change(&account.position, change)
            .map_err(|reason| WriteError::Refused { key, reason })?;
    }
    let id_of = |key: &Key| locked.account_id(key, LedgerError::UnknownPrincipal);
    // Nothing was written before this point: a refusal above leaves the transaction as it was.
    let mut deltas = Vec::with_capacity(plan.changes.len());
    for (key, change) in plan.changes.iter().filter(|(_, c)| !c.is_zero()) {
        deltas.push((id_of(key)?, *change));
    }
    write_deltas(conn, &deltas)?;
    let now = now_us();
    let new_hold_ids = insert_holds(conn, plan, &id_of, now)?;
    consume_holds(conn, plan)?;
    let mut rows = Vec::with_capacity(plan.lines.len());
    for line in &plan.lines {
        let hold_id = match line.hold {
            Some(hold) => Some(
                hold.resolve(&new_hold_ids)
                    .ok_or(LedgerError::UnknownHold)?
                    .get(),
            ),
            None => None,
        };
        rows.push(NewTransferRow {
            currency_id: line.currency.get(),
            from_account_id: id_of(&line.from)?,
            to_account_id: id_of(&line.to)?,
            amount_atoms: line.atoms,
            kind: line.kind.as_str(),
            memo: line.memo.as_deref(),
            hold_id,
            created_at_us: now,
        });
    }
    let line_ids = insert_lines(conn, &rows)?;
    close_unused(conn, &locked.opened, &rows)?;
    Ok(Applied {
        new_hold_ids,
        line_ids,
        created_at_us: now,
    })
}

/// Removes accounts this transaction opened that no line used (a receiver that received
/// nothing, a mutual-credit payer whose payment was refused), so a refused payment leaves no
/// trace (not even an empty account or a membership it made). Only rows inserted by this
/// transaction are removed; nobody else can have seen them yet.
fn close_unused(
    conn: &mut DbConn,
    opened: &[Opened],
    rows: &[NewTransferRow],
) -> Result<(), LedgerError> {
    let used: BTreeSet<i64> = rows
        .iter()
        .flat_map(|l| [l.to_account_id, l.from_account_id])
        .collect();
    let unused: Vec<Opened> = opened
        .iter()
        .copied()
        .filter(|o| !used.contains(&o.account_id))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    crate::members::forget(conn, unused.iter().filter(|o| o.joined).map(|o| o.key))?;
    let ids: Vec<i64> = unused.iter().map(|o| o.account_id).collect();
    diesel::delete(accounts::table.filter(accounts::id.eq_any(ids))).execute(conn)?;
    Ok(())
}

/// Opens the issuer's account of a new currency, with its floor (`rules::issuer_floor_atoms`).
pub(crate) fn open_issuer_account(
    conn: &mut DbConn,
    issuer: PrincipalId,
    currency: CurrencyId,
    floor_atoms: i64,
) -> Result<(), LedgerError> {
    diesel::insert_into(accounts::table)
        .values((
            accounts::principal_id.eq(issuer.get()),
            accounts::currency_id.eq(currency.get()),
            accounts::floor_atoms.eq(floor_atoms),
            accounts::ceiling_atoms.eq(None::<i64>),
            accounts::created_at_us.eq(now_us()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The issuer's account of a currency, locked, for a change of its credit limit.
pub(crate) fn lock_issuer_account(
    conn: &mut DbConn,
    rules: &CurrencyRules,
) -> Result<LockedAccount, LedgerError> {
    let key = (rules.issuer, rules.id);
    let keys = BTreeSet::from([key]);
    let rules_of = HashMap::from([(rules.id, *rules)]);
    select_accounts(conn, &keys, &rules_of, true)?
        .remove(&key)
        .ok_or_else(|| LedgerError::Invariant("a currency without its issuer's account".into()))
}

/// Sets the issuer's floor (a credit limit the rules accepted for its locked position).
pub(crate) fn set_floor(
    conn: &mut DbConn,
    account_id: i64,
    floor_atoms: i64,
) -> Result<(), LedgerError> {
    diesel::update(accounts::table.find(account_id))
        .set(accounts::floor_atoms.eq(floor_atoms))
        .execute(conn)?;
    Ok(())
}

/// The registry's own principals, whose accounts take no ceiling (`rules::holder_ceiling`).
pub(crate) fn registry_principals(conn: &mut DbConn) -> Result<Vec<i64>, LedgerError> {
    Ok(principals::table
        .filter(principals::kind.eq(PrincipalKind::Registry.as_str()))
        .select(principals::id)
        .load(conn)?)
}

/// The highest balance any holder (not the issuer, not the registry) has of the currency,
/// with those accounts locked on PostgreSQL so none rises past a new ceiling before it is set.
pub(crate) fn highest_holder_balance(
    conn: &mut DbConn,
    rules: &CurrencyRules,
) -> Result<Option<i64>, LedgerError> {
    let registry = registry_principals(conn)?;
    let holders = accounts::table
        .filter(accounts::currency_id.eq(rules.id.get()))
        .filter(accounts::principal_id.ne(rules.issuer.get()))
        .filter(accounts::principal_id.ne_all(registry));
    let balances: Vec<i64> = match conn {
        DbConn::Postgres(pg) => holders
            .select(accounts::balance_atoms)
            .order(accounts::id)
            .for_update()
            .load(pg)?,
        DbConn::Sqlite(sqlite) => holders.select(accounts::balance_atoms).load(sqlite)?,
    };
    Ok(balances.into_iter().max())
}

/// Sets every holder's ceiling (a maximum balance the rules accepted).
pub(crate) fn set_holder_ceilings(
    conn: &mut DbConn,
    rules: &CurrencyRules,
    ceiling_atoms: Option<i64>,
) -> Result<(), LedgerError> {
    let registry = registry_principals(conn)?;
    diesel::update(
        accounts::table
            .filter(accounts::currency_id.eq(rules.id.get()))
            .filter(accounts::principal_id.ne(rules.issuer.get()))
            .filter(accounts::principal_id.ne_all(registry)),
    )
    .set(accounts::ceiling_atoms.eq(ceiling_atoms))
    .execute(conn)?;
    Ok(())
}

/// The start of every read of accounts by `(principal, currency)`; the keys follow.
macro_rules! select_accounts_where_key_in {
    () => {
        "SELECT id, principal_id, currency_id, balance_atoms, held_atoms, floor_atoms, ceiling_atoms, \
         frozen FROM accounts WHERE (principal_id, currency_id) IN "
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
) -> Result<HashMap<Key, LockedAccount>, LedgerError> {
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
                frozen: row.frozen != 0,
            };
            let locked = LockedAccount {
                account_id: row.id,
                position,
            };
            ((principal, currency), locked)
        })
        .collect())
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

/// The receiving side's account, opened on first receipt with the currency's ceiling and,
/// in a mutual-credit currency, the member's credit limit as its floor. Returns the account
/// and, when this call opened it, whether that made the principal a member; `NotAdmitted`
/// (opening nothing) when the currency requires admission and the principal is no member.
pub(crate) fn open_account(
    conn: &mut DbConn,
    principal: PrincipalId,
    rules: &CurrencyRules,
) -> Result<(AccountRow, Option<bool>), LedgerError> {
    if let Some(row) = find_account(conn, principal, rules.id)? {
        return Ok((row, None));
    }
    // Checked first: on PostgreSQL a foreign-key violation would abort the whole transaction.
    let holder = principal_by_id(conn, principal)?;
    // The terms are read under a share lock on the currency row, which a policy change locks
    // for update: a policy change and a first receipt cannot interleave, so a new account
    // never carries a stale maximum balance or member limit.
    let terms = opening_terms(conn, rules.id)?;
    let ceiling_atoms = rules::holder_ceiling(holder.kind, terms.max_balance_atoms);
    let (floor_atoms, joined) = match holder.kind {
        // The registry's accounts only collect fees: never a member, never in credit.
        PrincipalKind::Registry => (0, false),
        PrincipalKind::User | PrincipalKind::Business => {
            crate::members::floor_for_new_account(conn, rules.id, &terms, principal)?
        }
    };
    let empty = Position {
        floor_atoms,
        ..Position::empty(ceiling_atoms)
    };
    // In a savepoint: a concurrent first receipt by the same principal wins the unique key,
    // and on PostgreSQL a failed statement would otherwise abort the whole transaction.
    let opened = conn.transaction(|conn| {
        diesel::insert_into(accounts::table)
            .values((
                accounts::principal_id.eq(principal.get()),
                accounts::currency_id.eq(rules.id.get()),
                accounts::floor_atoms.eq(empty.floor_atoms),
                accounts::ceiling_atoms.eq(empty.ceiling_atoms),
                accounts::created_at_us.eq(now_us()),
            ))
            .execute(conn)
    });
    let created = match opened {
        Ok(_) => Some(joined),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => None,
        Err(other) => return Err(other.into()),
    };
    let row = find_account(conn, principal, rules.id)?.ok_or(LedgerError::UnknownPrincipal)?;
    Ok((row, created))
}

/// What a new holder's account is opened with.
#[derive(diesel::QueryableByName)]
pub(crate) struct OpeningTerms {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub max_balance_atoms: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub member_credit_limit_atoms: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    /// 0 or 1.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub requires_admission: i32,
}

/// The currency's opening terms, read under a share lock on PostgreSQL (SQLite's write
/// transactions are already serialized).
fn opening_terms(conn: &mut DbConn, currency: CurrencyId) -> Result<OpeningTerms, LedgerError> {
    let lock = if matches!(conn, DbConn::Postgres(_)) {
        " FOR SHARE"
    } else {
        ""
    };
    // Only an integer from a typed id is inlined.
    let sql = format!(
        "SELECT max_balance_atoms, member_credit_limit_atoms, kind, \
         CASE WHEN requires_admission = 1 OR joining_fee_atoms IS NOT NULL THEN 1 ELSE 0 END \
         AS requires_admission FROM currencies WHERE id = {}{lock}",
        currency.get()
    );
    let rows: Vec<OpeningTerms> = diesel::sql_query(sql).load(conn)?;
    rows.into_iter().next().ok_or(LedgerError::UnknownCurrency)
}

/// One statement for every account that changed: `balance += delta, held += delta`.
fn write_deltas(conn: &mut DbConn, deltas: &[(i64, rules::Change)]) -> Result<(), LedgerError> {
    if deltas.is_empty() {
        return Ok(());
    }
    // A join, not a subquery per column and row: the cost stays linear in the plan.
    match conn {
        DbConn::Postgres(pg) => {
            Columns::new(
                "UPDATE accounts SET balance_atoms = accounts.balance_atoms + delta.balance, \
                 held_atoms = accounts.held_atoms + delta.held \
                 FROM unnest(?, ?, ?) AS delta (id, balance, held) WHERE accounts.id = delta.id",
            )
            .replanned()
            .bind(Column::BigInt(deltas.iter().map(|(id, _)| *id).collect()))
            .bind(Column::BigInt(
                deltas.iter().map(|(_, c)| c.balance_atoms).collect(),
            ))
            .bind(Column::BigInt(
                deltas.iter().map(|(_, c)| c.held_atoms).collect(),
            ))
            .execute(pg)?;
        }
        DbConn::Sqlite(_) => {
            let mut values = String::new();
            for (id, change) in deltas {
                let sep = if values.is_empty() { "" } else { ", " };
                // Only integers are inlined.
                let _ = write!(
                    values,
                    "{sep}({id}, CAST({} AS BIGINT), CAST({} AS BIGINT))",
                    change.balance_atoms, change.held_atoms
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

/// A returned id.
#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

fn insert_holds(
    conn: &mut DbConn,
    plan: &Plan,
    id_of: &impl Fn(&Key) -> Result<i64, WriteError>,
    now: i64,
) -> Result<Vec<HoldId>, WriteError> {
    let new_holds = &plan.new_holds;
    if new_holds.is_empty() {
        return Ok(Vec::new());
    }
    let account_ids = new_holds
        .iter()
        .map(|h| id_of(&h.key))
        .collect::<Result<Vec<i64>, _>>()?;
    let mut ids: Vec<i64> = Vec::with_capacity(new_holds.len());
    match conn {
        DbConn::Postgres(pg) => {
            ids = Columns::new(
                "INSERT INTO holds (account_id, amount_atoms, remaining_atoms, reason, created_at_us) \
                 SELECT * FROM unnest(?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(Column::BigInt(account_ids))
            .bind(Column::BigInt(new_holds.iter().map(|h| h.amount_atoms).collect()))
            .bind(Column::BigInt(new_holds.iter().map(|h| h.remaining_atoms).collect()))
            .bind(Column::Text(new_holds.iter().map(|h| h.reason.as_str()).collect()))
            .bind(Column::BigInt(vec![now; new_holds.len()]))
            .load::<Id>(pg)?
            .into_iter()
            .map(|row| row.id)
            .collect();
        }
        DbConn::Sqlite(sqlite) => {
            let rows: Vec<_> = new_holds
                .iter()
                .zip(account_ids)
                .map(|(hold, account_id)| {
                    (
                        holds::account_id.eq(account_id),
                        holds::amount_atoms.eq(hold.amount_atoms),
                        holds::remaining_atoms.eq(hold.remaining_atoms),
                        holds::reason.eq(hold.reason.as_str()),
                        holds::created_at_us.eq(now),
                    )
                })
                .collect();
            for chunk in rows.chunks(scrip_store::INSERT_CHUNK_ROWS) {
                let chunk_ids: Vec<i64> = diesel::insert_into(holds::table)
                    .values(chunk)
                    .returning(holds::id)
                    .get_results(sqlite)?;
                ids.extend(chunk_ids);
            }
        }
    }
    // Identity values are handed out in row order; sorting makes the pairing explicit.
    ids.sort_unstable();
    assert_eq!(ids.len(), new_holds.len(), "one id per new hold");
    Ok(ids.into_iter().map(HoldId::new).collect())
}

#[derive(diesel::QueryableByName)]
struct HoldLeft {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    account_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    remaining_atoms: i64,
}

/// Locks the holds made before the plan that it draws on and checks each with
/// [`rules::consume_hold`]: it must exist, be on the planned account and have enough left.
fn check_holds(
    conn: &mut DbConn,
    plan: &Plan,
    id_of: &impl Fn(&Key) -> Result<i64, WriteError>,
) -> Result<(), WriteError> {
    let drawn: Vec<i64> = plan
        .consumed
        .iter()
        .filter(|(_, c)| c.atoms != 0)
        .map(|(hold, _)| hold.get())
        .collect();
    if drawn.is_empty() {
        return Ok(());
    }
    let rows: Vec<HoldLeft> = match conn {
        DbConn::Postgres(pg) => Columns::new(
            "SELECT id, account_id, remaining_atoms FROM holds WHERE id = ANY(?) \
             ORDER BY id FOR UPDATE",
        )
        .bind(Column::BigInt(drawn))
        .load(pg)?,
        DbConn::Sqlite(_) => {
            // Only integers from typed ids are inlined.
            let ids: Vec<String> = drawn.iter().map(i64::to_string).collect();
            let sql = format!(
                "SELECT id, account_id, remaining_atoms FROM holds WHERE id IN ({})",
                ids.join(", ")
            );
            diesel::sql_query(sql).load(conn)?
        }
    };
    let stored: HashMap<i64, HoldLeft> = rows.into_iter().map(|row| (row.id, row)).collect();
    for (hold, consumed) in plan.consumed.iter().filter(|(_, c)| c.atoms != 0) {
        let refused = |reason| WriteError::Refused {
            key: consumed.key,
            reason,
        };
        let account_id = id_of(&consumed.key)?;
        let row = stored
            .get(&hold.get())
            .filter(|row| row.account_id == account_id)
            .ok_or_else(|| refused(LedgerError::UnknownHold))?;
        rules::consume_hold(row.remaining_atoms, consumed.atoms).map_err(refused)?;
    }
    Ok(())
}

/// Takes what the plan draws on off holds made before it (checked by [`check_holds`]), in
/// one statement.
fn consume_holds(conn: &mut DbConn, plan: &Plan) -> Result<(), WriteError> {
    let used: Vec<(i64, i64)> = plan
        .consumed
        .iter()
        .filter(|(_, c)| c.atoms != 0)
        .map(|(hold, c)| (hold.get(), c.atoms))
        .collect();
    if used.is_empty() {
        return Ok(());
    }
    // The CHECK on remaining_atoms is the database's backstop.
    let updated = match conn {
        DbConn::Postgres(pg) => Columns::new(
            "UPDATE holds SET remaining_atoms = holds.remaining_atoms - used.atoms \
             FROM unnest(?, ?) AS used (id, atoms) WHERE holds.id = used.id",
        )
        .replanned()
        .bind(Column::BigInt(used.iter().map(|u| u.0).collect()))
        .bind(Column::BigInt(used.iter().map(|u| u.1).collect()))
        .execute(pg)?,
        DbConn::Sqlite(_) => {
            let mut values = String::new();
            for (hold, atoms) in &used {
                let sep = if values.is_empty() { "" } else { ", " };
                // Only integers are inlined.
                let _ = write!(values, "{sep}({hold}, CAST({atoms} AS BIGINT))");
            }
            let sql = format!(
                "WITH used (id, atoms) AS (VALUES {values}) \
                 UPDATE holds SET remaining_atoms = holds.remaining_atoms - used.atoms \
                 FROM used WHERE holds.id = used.id"
            );
            diesel::sql_query(sql).execute(conn)?
        }
    };
    assert_eq!(updated, used.len(), "every checked hold is updated");
    Ok(())
}

/// Appends journal lines and returns their ids in row order: one statement with a fixed text
/// on PostgreSQL, multi-row `INSERT`s on SQLite.
fn insert_lines(
    conn: &mut DbConn,
    rows: &[NewTransferRow],
) -> Result<Vec<TransferId>, LedgerError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = match conn {
        DbConn::Postgres(pg) => Columns::new(
            "INSERT INTO transfers (currency_id, from_account_id, to_account_id, amount_atoms, \
             kind, memo, hold_id, created_at_us) SELECT * FROM unnest(?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(Column::BigInt(rows.iter().map(|r| r.currency_id).collect()))
        .bind(Column::BigInt(
            rows.iter().map(|r| r.from_account_id).collect(),
        ))
        .bind(Column::BigInt(
            rows.iter().map(|r| r.to_account_id).collect(),
        ))
        .bind(Column::BigInt(
            rows.iter().map(|r| r.amount_atoms).collect(),
        ))
        .bind(Column::Text(rows.iter().map(|r| r.kind).collect()))
        .bind(Column::NullableText(rows.iter().map(|r| r.memo).collect()))
        .bind(Column::NullableBigInt(
            rows.iter().map(|r| r.hold_id).collect(),
        ))
        .bind(Column::BigInt(
            rows.iter().map(|r| r.created_at_us).collect(),
        ))
        .load::<Id>(pg)?
        .into_iter()
        .map(|row| row.id)
        .collect(),
        DbConn::Sqlite(sqlite) => {
            let mut ids = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(scrip_store::INSERT_CHUNK_ROWS) {
                let chunk_ids: Vec<i64> = diesel::insert_into(transfers::table)
                    .values(chunk)
                    .returning(transfers::id)
                    .get_results(sqlite)?;
                ids.extend(chunk_ids);
            }
            ids
        }
    };
    // Identity values are handed out in row order; sorting makes the pairing explicit.
    ids.sort_unstable();
    assert_eq!(ids.len(), rows.len(), "one id per journal line");
    Ok(ids.into_iter().map(TransferId::new).collect())
}
