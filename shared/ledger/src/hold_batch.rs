//! Holds and trade settlement as a plan: the exchange's path to the ledger.
//!
//! An order book processes a batch of orders in one transaction. Each order reserves funds
//! (a hold), may trade against resting orders (payments out of holds, fees), and releases what
//! it no longer needs. A [`HoldBatch`] is that batch's [`Plan`], built in memory:
//!
//! 1. it starts from the positions of the accounts whose available balance decides something
//!    (the order owners' paying accounts), read once ([`HoldBatch::lock`]) or given
//!    ([`HoldBatch::new`], so an order book's core runs in a unit test without a database);
//! 2. holds are placed with [`rules::hold`] against those numbers plus what the batch already
//!    changed, so one is refused exactly as it would be alone; releases and payments out of
//!    holds are checked against the holds the batch knows;
//! 3. [`HoldBatch::commit`] locks every account the batch touches in ascending id order (the
//!    order every writer locks in, so no deadlock) and hands the plan to the one writer, which
//!    checks every account's net change against the locked numbers with the same rules (a
//!    payment that slipped in since step 1 and would now break one refuses the batch) and
//!    writes it set-based.
//!
//! Nothing touches the database between `lock` and `commit`, so the batch is a pure function of
//! the numbers read; a refused commit leaves the caller's transaction to be rolled back.

use std::collections::{BTreeSet, HashMap};

use scrip_domain::{CurrencyId, HoldId, PrincipalId};
use scrip_store::DbConn;

use crate::plan::{HoldRef, Key, Line, Plan};
use crate::rules::{self, CurrencyRules, Position};
use crate::transfer::currency_rules;
use crate::writer::{self, WriteError};
use crate::{LedgerError, TransferKind};

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

    /// Rules given as values (tests, and callers that already read them).
    pub fn new(rules: impl IntoIterator<Item = CurrencyRules>) -> Self {
        Self(rules.into_iter().map(|r| (r.id, r)).collect())
    }

    /// One currency's rules, if it is one of these.
    pub fn get(&self, currency: CurrencyId) -> Option<&CurrencyRules> {
        self.0.get(&currency)
    }

    fn is_issuer(&self, (principal, currency): Key) -> bool {
        self.0.get(&currency).is_some_and(|r| r.issuer == principal)
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct HoldBatch {
    rules: BatchRules,
    /// The paying accounts' positions as read before the batch.
    positions: HashMap<Key, Position>,
    plan: Plan,
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
        let keys: BTreeSet<Key> = keys.into_iter().collect();
        // Read, not locked: every account is locked at commit in one ascending pass, so two
        // batches (or a batch and a payment) can never wait for each other in a cycle.
        let read = writer::select_accounts(conn, &keys, &rules.0, false)?;
        Ok(Self::new(
            rules.clone(),
            read.into_iter()
                .map(|(key, account)| (key, account.position)),
        ))
    }

    /// Opens the accounts in `keys` that do not exist yet, inside the caller's transaction, so
    /// a batch can hold on them what it first receives there: a payment converting through a
    /// currency its payer never held buys it, then spends it. `NotAdmitted` when a currency
    /// admits only members and the principal is none (nothing opened then matters: the caller
    /// rolls back).
    pub fn open_accounts(
        conn: &mut DbConn,
        rules: &BatchRules,
        keys: impl IntoIterator<Item = (PrincipalId, CurrencyId)>,
    ) -> Result<(), LedgerError> {
        let keys: BTreeSet<Key> = keys.into_iter().collect();
        let locked = writer::lock(conn, &keys, &keys, &rules.0)?;
        if locked.not_admitted.is_empty() {
            Ok(())
        } else {
            Err(LedgerError::NotAdmitted)
        }
    }

    /// A batch over positions given as values: the paying accounts that exist.
    pub fn new(rules: BatchRules, positions: impl IntoIterator<Item = (Key, Position)>) -> Self {
        Self {
            rules,
            positions: positions.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The plan so far.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A paying account's position as the batch has changed it so far, if it was read up front.
    pub fn position(&self, principal: PrincipalId, currency: CurrencyId) -> Option<Position> {
        let key = (principal, currency);
        let before = self.positions.get(&key)?;
        Some(before.after(self.plan.change(key)))
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
        let key = (principal, currency);
        let mut position = self.position(principal, currency).unwrap_or(Position {
            // Never held the currency: nothing to reserve.
            is_issuer: self.rules.is_issuer(key),
            ..Position::empty(None)
        });
        rules::hold(&mut position, atoms)?;
        Ok(self.plan.place_hold(key, atoms, reason))
    }

    /// Gives `atoms` of a hold on `(principal, currency)` back to the available balance.
    /// Refused when the hold is not on that account (`UnknownHold`) or has less left
    /// (`HoldExceeded`): a hold made in this batch is checked here, an older one where the
    /// batch is written.
    pub fn release(
        &mut self,
        hold: HoldRef,
        principal: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
    ) -> Result<(), LedgerError> {
        if atoms == 0 {
            return Ok(());
        }
        self.plan.release(hold, (principal, currency), atoms)
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
    ) -> Result<(), LedgerError> {
        if atoms == 0 {
            return Ok(());
        }
        let line = line(from, to, currency, atoms, kind, memo)?;
        self.plan.pay_from_hold(hold, line)
    }

    /// Pays `atoms` out of what `from` has (typically just received in this batch: a fee).
    /// Checked where the batch is written, against the payer's floor.
    pub fn pay(
        &mut self,
        from: PrincipalId,
        to: PrincipalId,
        currency: CurrencyId,
        atoms: i64,
        kind: TransferKind,
        memo: String,
    ) -> Result<(), LedgerError> {
        if atoms == 0 {
            return Ok(());
        }
        self.plan.pay(line(from, to, currency, atoms, kind, memo)?);
        Ok(())
    }

    /// Writes the batch inside the caller's transaction. Refused, with nothing of the plan written
    /// (every check runs before its first write; an account opened for a first receipt is left
    /// to the caller's rollback), when a final position would break an invariant (a maker's receiving account over its currency's
    /// maximum balance, say); the caller then rolls back.
    /// [`Self::refused_by`] then names the account that refused.
    pub fn commit(&mut self, conn: &mut DbConn) -> Result<CommittedHolds, LedgerError> {
        let keys: BTreeSet<Key> = self.plan.keys().collect();
        // Every account a batch touches may receive (a fee's registry, a maker's proceeds).
        let locked = writer::lock(conn, &keys, &keys, &self.rules.0)?;
        match writer::apply_plan(conn, &self.plan, &locked) {
            Ok(applied) => Ok(CommittedHolds {
                new_hold_ids: applied.new_hold_ids,
            }),
            Err(WriteError::Refused { key, reason }) => {
                self.refused = Some(key);
                Err(reason)
            }
            Err(WriteError::Ledger(error)) => Err(error),
        }
    }

    /// The `(principal, currency)` whose final position refused the last [`Self::commit`].
    pub fn refused_by(&self) -> Option<(PrincipalId, CurrencyId)> {
        self.refused
    }
}

fn line(
    from: PrincipalId,
    to: PrincipalId,
    currency: CurrencyId,
    atoms: i64,
    kind: TransferKind,
    memo: String,
) -> Result<Line, LedgerError> {
    if from == to {
        return Err(LedgerError::SameAccount);
    }
    Ok(Line {
        currency,
        from: (from, currency),
        to: (to, currency),
        atoms: rules::positive_atoms(atoms)?,
        kind,
        memo: Some(memo),
        hold: None,
    })
}
