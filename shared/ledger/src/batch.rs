//! Payments, planned in memory and written set-based.
//!
//! 1. check what can be checked without balances (same account, the amount's scale);
//! 2. lock every account the payments touch (the writer opens payees' accounts on first
//!    receipt), in ascending id order;
//! 3. apply the payments one after another to those numbers with [`rules::pay`], so each is
//!    accepted or refused exactly as if it ran alone, and add the accepted ones to one plan;
//! 4. write the plan ([`writer::apply_plan`]).
//!
//! The rows stay locked until commit, so the numbers used in step 3 are the truth.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use scrip_domain::{AccountId, Amount, CurrencyId, TransferId};
use scrip_store::DbConn;

use crate::plan::{Key, Line, Plan};
use crate::rules::{self, CurrencyRules, Position};
use crate::transfer::{TransferRequest, currency_rules};
use crate::writer::{self, WriteError};
use crate::{LedgerError, Transfer};

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
    let mut keys: BTreeSet<Key> = BTreeSet::new();
    let mut payees: BTreeSet<Key> = BTreeSet::new();
    for (request, verdict) in requests.iter().zip(&verdicts) {
        if verdict.is_ok() {
            keys.insert((request.from, request.currency));
            keys.insert((request.to, request.currency));
            payees.insert((request.to, request.currency));
        }
    }
    let locked = writer::lock(conn, &keys, &payees, &rules)?;
    let mut positions: HashMap<Key, Position> = locked
        .accounts
        .iter()
        .map(|(key, account)| (*key, account.position))
        .collect();

    let mut plan = Plan::default();
    for (request, verdict) in requests.iter().zip(verdicts.iter_mut()) {
        let Ok(atoms) = *verdict else { continue };
        match plan_payment(&mut positions, request, atoms) {
            Ok(()) => plan.pay(Line {
                currency: request.currency,
                from: (request.from, request.currency),
                to: (request.to, request.currency),
                atoms,
                kind: request.kind,
                memo: request.memo.clone(),
                hold: None,
            }),
            Err(refusal) => *verdict = Err(refusal),
        }
    }
    let applied = writer::apply_plan(conn, &plan, &locked).map_err(|error| match error {
        // The plan was made from the locked numbers: a refusal here is a broken invariant.
        WriteError::Refused { key, reason } => {
            tracing::error!(?key, %reason, "a payment plan was refused where it was written");
            LedgerError::Invariant(format!(
                "a payment plan was refused where it was written: {reason}"
            ))
        }
        WriteError::Ledger(error) => error,
    })?;
    // Accepted slots and journal lines are in the same order, one to one.
    let mut recorded = plan.lines_recorded(&applied, &locked, &rules).into_iter();
    let results: Vec<_> = verdicts
        .into_iter()
        .map(|verdict| {
            verdict.and_then(|_| {
                recorded.next().ok_or(LedgerError::Invariant(
                    "fewer journal lines than accepted payments".into(),
                ))
            })
        })
        .collect();
    assert!(
        recorded.next().is_none(),
        "one accepted payment per journal line"
    );
    Ok(results)
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
    Ok(rules[&request.currency].atoms(request.amount))
}

/// One payment against the positions as the payments before it left them.
fn plan_payment(
    positions: &mut HashMap<Key, Position>,
    request: &TransferRequest,
    atoms: i64,
) -> Result<(), LedgerError> {
    let payer_key = (request.from, request.currency);
    let payee_key = (request.to, request.currency);
    // An account never opened holds nothing, and its floor is zero (an issuer's account is
    // opened with its currency).
    let mut payer = positions
        .get(&payer_key)
        .copied()
        .unwrap_or(Position::empty(None));
    // The writer opened every payee that is a principal; the payer's refusal comes first.
    let Some(mut payee) = positions.get(&payee_key).copied() else {
        let debit = rules::Change {
            balance_atoms: -atoms,
            held_atoms: 0,
        };
        rules::check_change(&payer, debit)?;
        return Err(LedgerError::UnknownPrincipal);
    };
    rules::pay(&mut payer, &mut payee, atoms)?;
    positions.insert(payer_key, payer);
    positions.insert(payee_key, payee);
    Ok(())
}

impl Plan {
    /// The journal lines of a written plan as transfers, in plan order.
    fn lines_recorded(
        &self,
        applied: &writer::Applied,
        locked: &writer::Locked,
        rules: &HashMap<CurrencyId, CurrencyRules>,
    ) -> Vec<Transfer> {
        assert_eq!(applied.line_ids.len(), self.lines.len(), "one id per line");
        self.lines
            .iter()
            .zip(&applied.line_ids)
            .map(|(line, &id)| transfer_of(line, id, applied.created_at_us, locked, rules))
            .collect()
    }
}

fn transfer_of(
    line: &Line,
    id: TransferId,
    created_at_us: i64,
    locked: &writer::Locked,
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> Transfer {
    let scale = rules[&line.currency].scale;
    let account = |key: &Key| AccountId::new(locked.accounts[key].account_id);
    Transfer {
        id,
        currency_id: line.currency,
        from_account: account(&line.from),
        to_account: account(&line.to),
        amount: Amount::from_atoms(line.atoms, scale),
        kind: line.kind,
        memo: line.memo.clone(),
        hold_id: None,
        created_at_us,
    }
}
