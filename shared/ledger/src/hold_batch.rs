//! Holds, planned in memory and written set-based: the exchange's settlement path.
//!
//! An order book processes a batch of orders in one transaction. Each order reserves funds
//! (a hold), may trade against resting orders (payments out of holds, fees), and releases what
//! it no longer needs. Doing that with one conditional `UPDATE` per step costs a database round
//! trip each; a [`HoldBatch`] instead:
//!
//! 1. reads the accounts whose available balance decides something (the order owners' paying
//!    accounts) and keeps their numbers in memory;
//! 2. applies holds, releases and payments to those numbers in order ([`HoldBatch::place_hold`]
//!    refuses exactly as a conditional update would), and records the net change of every
//!    other account touched (makers whose holds are consumed, receivers of money);
//! 3. on [`HoldBatch::commit`], opens receiving accounts on first receipt, locks every account
//!    the batch touches in one statement in ascending id order (the order every writer locks
//!    in, so no deadlock), checks every final position against the locked numbers (a payment
//!    that slipped in since step 1 and would now break a rule refuses the batch), and writes all account
//!    changes in one `UPDATE`, new holds in one `INSERT`, consumed holds in one `UPDATE` and the
//!    journal in one `INSERT`.
//!
//! Nothing touches the database between `lock` and `commit`, so the batch is a pure function of
//! the numbers read; a refused commit leaves the caller's transaction to be rolled back.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use diesel::prelude::*;
use scrip_domain::{CurrencyId, HoldId, PrincipalId};
use scrip_store::schema::{holds, transfers};
use scrip_store::{Column, Columns, DbConn};

use crate::batch::{AccountDelta, Key, Position, close_unused, select_accounts, write_deltas};
use crate::model::{NewTransferRow, now_us};
use crate::transfer::{CurrencyRules, currency_rules, receiving_account};
use crate::{LedgerError, TransferKind};

/// A hold made earlier (by id) or in this batch (by its position among the batch's new holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldRef {
    Existing(HoldId),
    New(usize),
}

impl HoldRef {
    /// The stored hold's id, once the batch that made it has committed.
    pub fn resolve(self, new_hold_ids: &[HoldId]) -> Option<HoldId> {
        match self {
            Self::Existing(id) => Some(id),
            Self::New(index) => new_hold_ids.get(index).copied(),
        }
    }
}

/// One account's change in the batch.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The account's id and numbers: as read up front (paying accounts), then as locked at
    /// commit (every account); `None` for an account not read yet.
    account: Option<(i64, Position)>,
    balance_delta_atoms: i64,
    held_delta_atoms: i64,
}

#[derive(Debug)]
struct NewHold {
    key: Key,
    amount_atoms: i64,
    remaining_atoms: i64,
    reason: String,
}

#[derive(Debug)]
struct Line {
    currency: CurrencyId,
    from: Key,
    to: Key,
    atoms: i64,
    kind: TransferKind,
    memo: String,
    hold: Option<HoldRef>,
}

/// What a batch needs to know of its currencies (scale, issuer): fixed for a currency's life,
/// so a long-lived caller (a market's writer) reads it once.
#[derive(Debug, Clone, Default)]
pub struct BatchRules(HashMap<CurrencyId, CurrencyRules>);

impl BatchRules {
    pub fn load(conn: &mut DbConn, currencies: &[CurrencyId]) -> Result<Self, LedgerError> {
        let mut rules = HashMap::new();
        for &currency in currencies {
            rules.insert(currency, currency_rules(conn, currency)?);
        }
        Ok(Self(rules))
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct HoldBatch {
    rules: HashMap<CurrencyId, CurrencyRules>,
    slots: HashMap<Key, Slot>,
    new_holds: Vec<NewHold>,
    /// Atoms taken off holds made before this batch.
    consumed: HashMap<HoldId, i64>,
    lines: Vec<Line>,
    /// The account whose final position refused the batch at commit.
    refused: Option<Key>,
}

/// What a committed batch stored: the ids of its new holds, in the order they were placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedHolds {
    pub new_hold_ids: Vec<HoldId>,
}

impl HoldBatch {
    /// Reads the accounts in `keys` that exist (holds can only be placed on those), inside the
    /// caller's transaction; every key's currency must be in `rules`. They are locked at commit.
    pub fn lock(
        conn: &mut DbConn,
        rules: &BatchRules,
        keys: impl IntoIterator<Item = (PrincipalId, CurrencyId)>,
    ) -> Result<Self, LedgerError> {
        let rules = rules.0.clone();
        let keys: BTreeSet<Key> = keys.into_iter().collect();
        // Read, not locked: every account is locked at commit in one ascending pass, so two
        // batches (or a batch and a payment) can never wait for each other in a cycle.
        let locked = select_accounts(conn, &keys, &rules, false)?;
        let slots = locked
            .into_iter()
            .map(|(key, locked)| {
                let slot = Slot {
                    account: Some((locked.account_id, locked.current)),
                    ..Slot::default()
                };
                (key, slot)
            })
            .collect();
        Ok(Self {
            rules,
            slots,
            ..Self::default()
        })
    }

    /// What `principal` may still spend of `currency`, if its account was read up front.
    pub fn available_atoms(&self, principal: PrincipalId, currency: CurrencyId) -> Option<i64> {
        let slot = self.slots.get(&(principal, currency))?;
        let (_, position) = slot.account?;
        Some(
            position.balance_atoms + slot.balance_delta_atoms
                - position.held_atoms
                - slot.held_delta_atoms
                - position.floor_atoms,
        )
    }

    /// Reserves `atoms` of the principal's available balance; refused (changing nothing) when
    /// the account was not read up front or cannot cover it.
    pub fn place_hold(
        &mut self,
        principal: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
        reason: String,
    ) -> Result<HoldRef, LedgerError> {
        let refused = || {
            let is_issuer = self
                .rules
                .get(&currency)
                .is_some_and(|r| r.issuer == principal);
            if is_issuer {
                LedgerError::CreditLimitExceeded
            } else {
                LedgerError::InsufficientFunds
            }
        };
        if atoms <= 0 {
            return Err(scrip_domain::AmountError::NotPositive.into());
        }
        match self.available_atoms(principal, currency) {
            Some(available) if available >= atoms => {}
            _ => return Err(refused()),
        }
        let key = (principal, currency);
        self.slot(key).held_delta_atoms += atoms;
        self.new_holds.push(NewHold {
            key,
            amount_atoms: atoms,
            remaining_atoms: atoms,
            reason,
        });
        Ok(HoldRef::New(self.new_holds.len() - 1))
    }

    /// Gives `atoms` of a hold on `(principal, currency)` back to the available balance. The
    /// caller (the single owner of the hold) guarantees that much remains; the database's
    /// constraints are the backstop.
    pub fn release(
        &mut self,
        hold: HoldRef,
        principal: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
    ) {
        if atoms == 0 {
            return;
        }
        self.consume(hold, atoms);
        self.slot((principal, currency)).held_delta_atoms -= atoms;
    }

    /// Pays `atoms` out of a hold on `(from, currency)` to `to`.
    #[expect(clippy::too_many_arguments, reason = "one journal line's fields")]
    pub fn pay_from_hold(
        &mut self,
        hold: HoldRef,
        from: PrincipalId,
        to: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
        kind: TransferKind,
        memo: String,
    ) {
        if atoms == 0 {
            return;
        }
        self.consume(hold, atoms);
        let payer = self.slot((from, currency));
        payer.held_delta_atoms -= atoms;
        payer.balance_delta_atoms -= atoms;
        self.slot((to, currency)).balance_delta_atoms += atoms;
        self.lines.push(Line {
            currency,
            from: (from, currency),
            to: (to, currency),
            atoms,
            kind,
            memo,
            hold: Some(hold),
        });
    }

    /// Pays `atoms` out of what `from` has (typically just received in this batch: a fee).
    /// Checked at commit against the payer's floor.
    pub fn pay(
        &mut self,
        from: PrincipalId,
        to: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
        kind: TransferKind,
        memo: String,
    ) {
        if atoms == 0 {
            return;
        }
        self.slot((from, currency)).balance_delta_atoms -= atoms;
        self.slot((to, currency)).balance_delta_atoms += atoms;
        self.lines.push(Line {
            currency,
            from: (from, currency),
            to: (to, currency),
            atoms,
            kind,
            memo,
            hold: None,
        });
    }

    fn slot(&mut self, key: Key) -> &mut Slot {
        self.slots.entry(key).or_default()
    }

    fn consume(&mut self, hold: HoldRef, atoms: i64) {
        match hold {
            HoldRef::New(index) => {
                if let Some(new) = self.new_holds.get_mut(index) {
                    new.remaining_atoms -= atoms;
                }
            }
            HoldRef::Existing(id) => *self.consumed.entry(id).or_default() += atoms,
        }
    }

    /// Writes the batch inside the caller's transaction. Refused, with nothing written, when a
    /// final position would break an invariant (a maker's receiving account over its currency's
    /// maximum balance, say); the caller then rolls back.
    /// [`Self::refused_by`] then names the account that refused.
    pub fn commit(&mut self, conn: &mut DbConn) -> Result<CommittedHolds, LedgerError> {
        let (account_ids, opened) = self.lock_all(conn)?;
        for (key, slot) in &self.slots {
            let (_, position) = slot.account.ok_or(LedgerError::UnknownPrincipal)?;
            if let Err(refusal) = check_final(key, position, slot, &self.rules) {
                self.refused = Some(*key);
                return Err(refusal);
            }
        }
        write_deltas(
            conn,
            self.slots.values().filter_map(|slot| {
                slot.account.map(|(account_id, _)| AccountDelta {
                    account_id,
                    balance_atoms: slot.balance_delta_atoms,
                    held_atoms: slot.held_delta_atoms,
                })
            }),
        )?;
        let new_hold_ids = self.insert_holds(conn, &account_ids)?;
        self.update_consumed(conn)?;
        let now = now_us();
        let rows: Vec<NewTransferRow> = self
            .lines
            .iter()
            .map(|line| NewTransferRow {
                currency_id: line.currency.get(),
                from_account_id: account_ids[&line.from],
                to_account_id: account_ids[&line.to],
                amount_atoms: line.atoms,
                kind: line.kind.as_str(),
                memo: Some(line.memo.as_str()),
                hold_id: line
                    .hold
                    .and_then(|h| h.resolve(&new_hold_ids))
                    .map(HoldId::get),
                created_at_us: now,
            })
            .collect();
        insert_lines(conn, &rows)?;
        close_unused(conn, &opened, &rows)?;
        Ok(CommittedHolds { new_hold_ids })
    }

    /// The `(principal, currency)` whose final position refused the last [`Self::commit`].
    pub fn refused_by(&self) -> Option<(PrincipalId, CurrencyId)> {
        self.refused
    }

    /// Opens receiving accounts on first receipt, then locks every account the batch touches
    /// in one statement, in ascending id order, and takes the locked numbers as the truth the
    /// final check runs against. Returns every key's account id, and the ids of the accounts
    /// opened.
    fn lock_all(
        &mut self,
        conn: &mut DbConn,
    ) -> Result<(HashMap<Key, i64>, Vec<i64>), LedgerError> {
        let all: BTreeSet<Key> = self.slots.keys().copied().collect();
        let mut locked = select_accounts(conn, &all, &self.rules, true)?;
        let mut opened = Vec::new();
        let absent: BTreeSet<Key> = all
            .iter()
            .filter(|key| !locked.contains_key(key))
            .copied()
            .collect();
        if !absent.is_empty() {
            // First receipts (rare): open the accounts, then lock them too. New rows nobody else
            // holds yet, unless a concurrent first receipt opened the same one; a deadlock that
            // causes is detected by PostgreSQL and the batch is retried.
            for &(principal, currency) in &absent {
                let rules = self
                    .rules
                    .get(&currency)
                    .ok_or(LedgerError::UnknownCurrency)?;
                let (row, created) = receiving_account(conn, principal, rules)?;
                if created {
                    opened.push(row.id);
                }
            }
            locked.extend(select_accounts(conn, &absent, &self.rules, true)?);
        }
        for (key, fresh) in locked {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.account = Some((fresh.account_id, fresh.current));
            }
        }
        let ids = self
            .slots
            .iter()
            .filter_map(|(key, slot)| slot.account.map(|(id, _)| (*key, id)))
            .collect();
        Ok((ids, opened))
    }

    fn insert_holds(
        &self,
        conn: &mut DbConn,
        account_ids: &HashMap<Key, i64>,
    ) -> Result<Vec<HoldId>, LedgerError> {
        let now = now_us();
        let mut ids: Vec<i64> = Vec::with_capacity(self.new_holds.len());
        match conn {
            DbConn::Postgres(pg) if !self.new_holds.is_empty() => {
                let holds = &self.new_holds;
                ids = Columns::new(
                    "INSERT INTO holds (account_id, amount_atoms, remaining_atoms, reason, created_at_us) \
                     SELECT * FROM unnest(?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(Column::BigInt(holds.iter().map(|h| account_ids[&h.key]).collect()))
                .bind(Column::BigInt(holds.iter().map(|h| h.amount_atoms).collect()))
                .bind(Column::BigInt(holds.iter().map(|h| h.remaining_atoms).collect()))
                .bind(Column::Text(holds.iter().map(|h| h.reason.as_str()).collect()))
                .bind(Column::BigInt(vec![now; holds.len()]))
                .load::<Id>(pg)?
                .into_iter()
                .map(|row| row.id)
                .collect();
            }
            DbConn::Postgres(_) => {}
            DbConn::Sqlite(sqlite) => {
                for chunk in self.new_holds.chunks(scrip_store::INSERT_CHUNK_ROWS) {
                    let rows: Vec<_> = chunk
                        .iter()
                        .map(|hold| {
                            (
                                holds::account_id.eq(account_ids[&hold.key]),
                                holds::amount_atoms.eq(hold.amount_atoms),
                                holds::remaining_atoms.eq(hold.remaining_atoms),
                                holds::reason.eq(hold.reason.as_str()),
                                holds::created_at_us.eq(now),
                            )
                        })
                        .collect();
                    let chunk_ids: Vec<i64> = diesel::insert_into(holds::table)
                        .values(rows)
                        .returning(holds::id)
                        .get_results(sqlite)?;
                    ids.extend(chunk_ids);
                }
            }
        }
        // Identity values are handed out in row order; sorting makes the pairing explicit.
        ids.sort_unstable();
        assert_eq!(ids.len(), self.new_holds.len(), "one id per new hold");
        Ok(ids.into_iter().map(HoldId::new).collect())
    }

    fn update_consumed(&self, conn: &mut DbConn) -> Result<(), LedgerError> {
        let used: Vec<(i64, i64)> = self
            .consumed
            .iter()
            .filter(|(_, atoms)| **atoms != 0)
            .map(|(hold, atoms)| (hold.get(), *atoms))
            .collect();
        if used.is_empty() {
            return Ok(());
        }
        // The CHECK on remaining_atoms refuses an over-consumption.
        match conn {
            DbConn::Postgres(pg) => {
                let (ids, atoms) = used.into_iter().unzip();
                Columns::new(
                    "UPDATE holds SET remaining_atoms = holds.remaining_atoms - used.atoms \
                     FROM unnest(?, ?) AS used (id, atoms) WHERE holds.id = used.id",
                )
                .replanned()
                .bind(Column::BigInt(ids))
                .bind(Column::BigInt(atoms))
                .execute(pg)?;
            }
            DbConn::Sqlite(_) => {
                let mut values = String::new();
                for (hold, atoms) in used {
                    let sep = if values.is_empty() { "" } else { ", " };
                    // Only integers are inlined.
                    let _ = write!(values, "{sep}({hold}, CAST({atoms} AS BIGINT))");
                }
                let sql = format!(
                    "WITH used (id, atoms) AS (VALUES {values}) \
                     UPDATE holds SET remaining_atoms = holds.remaining_atoms - used.atoms \
                     FROM used WHERE holds.id = used.id"
                );
                diesel::sql_query(sql).execute(conn)?;
            }
        }
        Ok(())
    }
}

/// A returned id.
#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Writes journal lines: one statement with a fixed text on PostgreSQL, multi-row `INSERT`s on
/// SQLite.
pub(crate) fn insert_lines(conn: &mut DbConn, rows: &[NewTransferRow]) -> Result<(), LedgerError> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Postgres(pg) => {
            Columns::new(
                "INSERT INTO transfers (currency_id, from_account_id, to_account_id, amount_atoms, \
                 kind, memo, hold_id, created_at_us) SELECT * FROM unnest(?, ?, ?, ?, ?, ?, ?, ?)",
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
            .execute(pg)?;
        }
        DbConn::Sqlite(_) => {
            scrip_store::insert_rows!(conn, transfers::table, rows)?;
        }
    }
    Ok(())
}

/// The invariants of one account after the batch (DESIGN.md, invariants 2 and 3).
fn check_final(
    key: &Key,
    position: Position,
    slot: &Slot,
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> Result<(), LedgerError> {
    let balance = position.balance_atoms + slot.balance_delta_atoms;
    let held = position.held_atoms + slot.held_delta_atoms;
    if held < 0 {
        return Err(LedgerError::HoldExceeded);
    }
    if balance - held < position.floor_atoms {
        let is_issuer = rules.get(&key.1).is_some_and(|r| r.issuer == key.0);
        return Err(if is_issuer {
            LedgerError::CreditLimitExceeded
        } else {
            LedgerError::InsufficientFunds
        });
    }
    if slot.balance_delta_atoms > 0 && position.ceiling_atoms.is_some_and(|c| balance > c) {
        return Err(LedgerError::MaxBalanceExceeded);
    }
    Ok(())
}
