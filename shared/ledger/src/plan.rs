//! Plans as values: what a unit of work will do to the ledger, built in memory.
//!
//! A [`Plan`] is the net change of every account it touches, the holds it opens, the holds it
//! draws on and the journal lines it appends. It is built by code that has already asked
//! [`crate::rules`] whether each step may happen, and it is written whole by the one writer
//! ([`crate::writer::apply_plan`]), which asks the rules again against the locked numbers.
//! Nothing in here does I/O.

use std::collections::BTreeMap;

use scrip_domain::{CurrencyId, HoldId, PrincipalId};

use crate::rules::{self, Change};
use crate::{LedgerError, TransferKind};

/// An account by its owner and currency.
pub type Key = (PrincipalId, CurrencyId);

/// A hold made before this plan (by id) or in it (by its position among the plan's new holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldRef {
    Existing(HoldId),
    New(usize),
}

impl HoldRef {
    /// The stored hold's id, once the plan that made it has been written.
    pub fn resolve(self, new_hold_ids: &[HoldId]) -> Option<HoldId> {
        match self {
            Self::Existing(id) => Some(id),
            Self::New(index) => new_hold_ids.get(index).copied(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewHold {
    pub key: Key,
    pub amount_atoms: i64,
    pub remaining_atoms: i64,
    pub reason: String,
}

/// What a plan takes off a hold made before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Consumed {
    /// The account the hold must be on.
    pub key: Key,
    pub atoms: i64,
}

/// One journal line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub currency: CurrencyId,
    pub from: Key,
    pub to: Key,
    pub atoms: i64,
    pub kind: TransferKind,
    pub memo: Option<String>,
    pub hold: Option<HoldRef>,
}

/// See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub(crate) changes: BTreeMap<Key, Change>,
    pub(crate) new_holds: Vec<NewHold>,
    pub(crate) consumed: BTreeMap<HoldId, Consumed>,
    pub(crate) lines: Vec<Line>,
}

impl Plan {
    /// The net change planned so far for one account.
    pub fn change(&self, key: Key) -> Change {
        self.changes.get(&key).copied().unwrap_or_default()
    }

    /// Every account the plan touches, in ascending key order.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.changes.keys().copied()
    }

    /// How many journal lines the plan appends.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    fn add(&mut self, key: Key, balance_atoms: i64, held_atoms: i64) {
        self.changes.entry(key).or_default().add(Change {
            balance_atoms,
            held_atoms,
        });
    }

    /// A payment the rules have accepted, out of the payer's available balance.
    pub(crate) fn pay(&mut self, line: Line) {
        debug_assert!(line.atoms > 0 && line.hold.is_none());
        self.add(line.from, -line.atoms, 0);
        self.add(line.to, line.atoms, 0);
        self.lines.push(line);
    }

    /// A payment out of a hold on the payer's account: its balance and held funds fall
    /// together, so what it has available does not change.
    pub(crate) fn pay_from_hold(&mut self, hold: HoldRef, line: Line) -> Result<(), LedgerError> {
        debug_assert!(line.atoms > 0);
        self.consume(hold, line.from, line.atoms)?;
        self.add(line.from, -line.atoms, -line.atoms);
        self.add(line.to, line.atoms, 0);
        self.lines.push(Line {
            hold: Some(hold),
            ..line
        });
        Ok(())
    }

    /// A hold the rules have accepted.
    pub(crate) fn place_hold(&mut self, key: Key, atoms: i64, reason: String) -> HoldRef {
        self.add(key, 0, atoms);
        self.new_holds.push(NewHold {
            key,
            amount_atoms: atoms,
            remaining_atoms: atoms,
            reason,
        });
        HoldRef::New(self.new_holds.len() - 1)
    }

    /// Gives `atoms` of a hold back to the available balance of the account it is on.
    pub(crate) fn release(
        &mut self,
        hold: HoldRef,
        key: Key,
        atoms: i64,
    ) -> Result<(), LedgerError> {
        self.consume(hold, key, atoms)?;
        self.add(key, 0, -atoms);
        Ok(())
    }

    /// Takes `atoms` off a hold. A hold made in this plan is checked here; one made before is
    /// checked where the plan is written, against the stored hold.
    fn consume(&mut self, hold: HoldRef, key: Key, atoms: i64) -> Result<(), LedgerError> {
        if atoms < 0 {
            return Err(LedgerError::HoldExceeded);
        }
        match hold {
            HoldRef::New(index) => {
                let new = self
                    .new_holds
                    .get_mut(index)
                    .filter(|new| new.key == key)
                    .ok_or(LedgerError::UnknownHold)?;
                new.remaining_atoms = rules::consume_hold(new.remaining_atoms, atoms)?;
            }
            HoldRef::Existing(id) => {
                let consumed = self
                    .consumed
                    .entry(id)
                    .or_insert(Consumed { key, atoms: 0 });
                if consumed.key != key {
                    return Err(LedgerError::UnknownHold);
                }
                consumed.atoms += atoms;
            }
        }
        Ok(())
    }
}
