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

use scrip_domain::{AccountId, Amount, CurrencyId, PrincipalId, TransferId};
use scrip_store::DbConn;

use crate::plan::{Key, Line, Plan};
use crate::policy::CurrencyKind;
use crate::rules::{self, CurrencyRules, Position};
use crate::transfer::{TransferRequest, currency_rules};
use crate::writer::{self, WriteError};
use crate::{LedgerError, Transfer, TransferKind};

/// Applies `requests` in order inside the caller's transaction. Each is all-or-nothing on its
/// own: a refused transfer is reported in its slot and changes nothing; the others apply.
pub fn transfer_many(
    conn: &mut DbConn,
    requests: &[TransferRequest],
) -> Result<Vec<Result<Transfer, LedgerError>>, LedgerError> {
    let mut rules: HashMap<CurrencyId, CurrencyRules> = HashMap::new();
    let mut verdicts: Vec<Result<Priced, LedgerError>> = Vec::with_capacity(requests.len());
    for request in requests {
        verdicts.push(validate(conn, request, &mut rules)?);
    }
    let (keys, receivers) = accounts_touched(requests, &verdicts, &rules);
    let locked = writer::lock(conn, &keys, &receivers, &rules)?;
    let mut positions: HashMap<Key, Position> = locked
        .accounts
        .iter()
        .map(|(key, account)| (*key, account.position))
        .collect();

    let mut plan = Plan::default();
    for (request, verdict) in requests.iter().zip(verdicts.iter_mut()) {
        let Ok(priced) = *verdict else { continue };
        match plan_payment(&mut positions, &locked, request, priced) {
            Ok(()) => add_payment(&mut plan, request, priced),
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
    // Accepted slots and payment lines are in the same order, one to one; a fee line follows
    // the payment it belongs to.
    let mut recorded = plan
        .lines_recorded(&applied, &locked, &rules)
        .into_iter()
        .peekable();
    let results: Vec<_> = verdicts
        .into_iter()
        .map(|verdict| {
            verdict.and_then(|_| {
                let mut payment = recorded.next().ok_or(LedgerError::Invariant(
                    "fewer journal lines than accepted payments".into(),
                ))?;
                if let Some(fee) = recorded.next_if(|t| t.kind == TransferKind::TransferFee) {
                    payment.fee = Some(fee.amount);
                }
                Ok(payment)
            })
        })
        .collect();
    assert!(
        recorded.next().is_none(),
        "one accepted payment per journal line"
    );
    Ok(results)
}

/// A payment that passed [`validate`]: its amount and the transfer fee it pays on top.
#[derive(Debug, Clone, Copy)]
struct Priced {
    atoms: i64,
    fee: Option<(PrincipalId, i64)>,
}

/// Every account the accepted payments touch, and those that may be opened for them: payees,
/// fee collectors, and the payers of a mutual-credit currency (a member may pay before it
/// ever received, down to its credit limit).
fn accounts_touched(
    requests: &[TransferRequest],
    verdicts: &[Result<Priced, LedgerError>],
    rules: &HashMap<CurrencyId, CurrencyRules>,
) -> (BTreeSet<Key>, BTreeSet<Key>) {
    let mut keys: BTreeSet<Key> = BTreeSet::new();
    let mut receivers: BTreeSet<Key> = BTreeSet::new();
    for (request, verdict) in requests.iter().zip(verdicts) {
        let Ok(priced) = verdict else { continue };
        let currency = request.currency;
        keys.insert((request.from, currency));
        keys.insert((request.to, currency));
        receivers.insert((request.to, currency));
        if let Some((collector, _)) = priced.fee {
            keys.insert((collector, currency));
            receivers.insert((collector, currency));
        }
        if rules[&currency].kind == CurrencyKind::MutualCredit {
            receivers.insert((request.from, currency));
        }
    }
    (keys, receivers)
}

fn add_payment(plan: &mut Plan, request: &TransferRequest, priced: Priced) {
    let from = (request.from, request.currency);
    plan.pay(Line {
        currency: request.currency,
        from,
        to: (request.to, request.currency),
        atoms: priced.atoms,
        kind: request.kind,
        memo: request.memo.clone(),
        hold: None,
    });
    if let Some((collector, fee_atoms)) = priced.fee {
        plan.pay(Line {
            currency: request.currency,
            from,
            to: (collector, request.currency),
            atoms: fee_atoms,
            kind: TransferKind::TransferFee,
            memo: request.memo.clone(),
            hold: None,
        });
    }
}

/// Checks what can be checked without balances (same account, scale, `max_payment`) and
/// prices the transfer fee; `Ok` when the transfer may proceed. Only infrastructure errors
/// abort the batch. A clearing set-off is no payment: it pays no fee and is not bounded by
/// `max_payment` (it only cancels debts, and every net position stays exactly the same).
fn validate(
    conn: &mut DbConn,
    request: &TransferRequest,
    rules: &mut HashMap<CurrencyId, CurrencyRules>,
) -> Result<Result<Priced, LedgerError>, LedgerError> {
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
    let rules = &rules[&request.currency];
    let priced = rules.atoms(request.amount).and_then(|atoms| {
        if request.kind == TransferKind::Clearing {
            return Ok(Priced { atoms, fee: None });
        }
        rules.check_payment_size(atoms)?;
        Ok(Priced {
            atoms,
            fee: rules.transfer_fee_of(request.from, atoms),
        })
    });
    Ok(priced)
}

/// One payment against the positions as the payments before it left them.
fn plan_payment(
    positions: &mut HashMap<Key, Position>,
    locked: &writer::Locked,
    request: &TransferRequest,
    priced: Priced,
) -> Result<(), LedgerError> {
    let payer_key = (request.from, request.currency);
    let payee_key = (request.to, request.currency);
    // An account never opened holds nothing, and its floor is zero (an issuer's account is
    // opened with its currency, a mutual-credit member's when it first pays).
    let absent = |key: &Key| {
        if locked.not_admitted.contains(key) {
            LedgerError::NotAdmitted
        } else {
            LedgerError::UnknownPrincipal
        }
    };
    let mut payer = positions
        .get(&payer_key)
        .copied()
        .unwrap_or(Position::empty(None));
    // The writer opened every payee that is a principal; the payer's refusal comes first.
    let Some(mut payee) = positions.get(&payee_key).copied() else {
        let debit = rules::Change {
            balance_atoms: -(priced.atoms + priced.fee.map_or(0, |f| f.1)),
            held_atoms: 0,
        };
        rules::check_change(&payer, debit)?;
        return Err(absent(&payee_key));
    };
    let Some((collector, fee_atoms)) = priced.fee else {
        rules::pay(&mut payer, &mut payee, priced.atoms)?;
        positions.insert(payer_key, payer);
        positions.insert(payee_key, payee);
        return Ok(());
    };
    let collector_key = (collector, request.currency);
    let mut collector = if collector_key == payee_key {
        None
    } else {
        Some(
            positions
                .get(&collector_key)
                .copied()
                .ok_or(absent(&collector_key))?,
        )
    };
    let leg = rules::FeeLeg {
        collector: collector.as_mut(),
        atoms: fee_atoms,
    };
    rules::pay_with_fee(&mut payer, &mut payee, priced.atoms, Some(leg))?;
    positions.insert(payer_key, payer);
    positions.insert(payee_key, payee);
    if let Some(collector) = collector {
        positions.insert(collector_key, collector);
    }
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
        fee: None,
    }
}
