//! Currencies and their policies: credit limit and maximum balance (kept on every account as
//! its floor and ceiling) and the rest of [`Policies`].

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Amount, CurrencyCode, CurrencyId, Par, PrincipalId, Scale, UnitCode};
use scrip_store::DbConn;
use scrip_store::schema::currencies;

use std::collections::BTreeSet;

use crate::model::{CurrencyRow, MAX_AMOUNT_ATOMS, now_us};
use crate::policy::{CurrencyKind, Demurrage, JoiningFee, Policies, PolicyField, TransferFee};
use crate::principals::principal_by_id;
use crate::rules::{self, CurrencyRules, Position};
use crate::{Currency, LedgerError, writer};

#[derive(Debug, Clone)]
pub struct NewCurrency {
    pub issuer: PrincipalId,
    pub code: CurrencyCode,
    pub name: String,
    pub scale: Scale,
    pub credit_limit: Amount,
    pub max_balance: Option<Amount>,
    pub unit: UnitCode,
    pub par: Par,
    pub policies: Policies,
}

/// Checks a limit: the currency's scale, not negative, and inside the ledger's bounds.
pub(crate) fn check_limit(limit: Amount, scale: Scale) -> Result<i64, LedgerError> {
    if limit.scale() != scale {
        return Err(LedgerError::ScaleMismatch {
            expected: scale.decimals(),
        });
    }
    if limit.atoms() < 0 {
        return Err(scrip_domain::AmountError::Negative.into());
    }
    if limit.atoms() > MAX_AMOUNT_ATOMS {
        return Err(scrip_domain::AmountError::Overflow.into());
    }
    Ok(limit.atoms())
}

/// Creates the currency and its issuer's account, whose floor is `-credit_limit`.
pub fn create_currency(conn: &mut DbConn, new: &NewCurrency) -> Result<Currency, LedgerError> {
    let credit_limit_atoms = check_limit(new.credit_limit, new.scale)?;
    let max_balance_atoms = new
        .max_balance
        .map(|m| check_limit(m, new.scale))
        .transpose()?;
    new.policies.validate()?;
    principal_by_id(conn, new.issuer)?;
    for collector in collectors(&new.policies) {
        check_collector(conn, collector)?;
    }
    check_backing(conn, new)?;
    check_joining_fee(conn, &new.policies, None)?;
    let now = now_us();
    let p = &new.policies;
    let row: CurrencyRow = diesel::insert_into(currencies::table)
        .values((
            currencies::code.eq(new.code.as_str()),
            currencies::name.eq(&new.name),
            currencies::issuer_id.eq(new.issuer.get()),
            currencies::scale.eq(i32::from(new.scale.decimals())),
            currencies::credit_limit_atoms.eq(credit_limit_atoms),
            currencies::max_balance_atoms.eq(max_balance_atoms),
            currencies::unit.eq(new.unit.as_str()),
            currencies::par.eq(new.par.to_string()),
            currencies::created_at_us.eq(now),
            // The rest of the policies: `write_payment_policies` below, the same writer as a change.
            currencies::kind.eq(p.kind.as_str()),
            currencies::backing_currency_id.eq(p.backing.map(|b| b.currency.get())),
            currencies::backing_ratio_bps.eq(p.backing.map(|b| small(b.ratio_bps))),
            currencies::backing_lock_days.eq(p.backing.map(|b| small(b.lock_days))),
        ))
        .get_result::<CurrencyRow>(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                LedgerError::CodeTaken
            }
            other => other.into(),
        })?;
    let currency = Currency::try_from(row)?;
    let through = new.policies.demurrage.map(|d| d.period.index_at(now));
    write_payment_policies(conn, currency.id, &new.policies, through)?;
    // A backed currency starts with no reserve, so its issuer may issue nothing yet.
    let backs_atoms = (p.kind == CurrencyKind::Backed).then_some(0);
    let floor_atoms = rules::issuer_floor_atoms(credit_limit_atoms, backs_atoms);
    writer::open_issuer_account(conn, new.issuer, currency.id, floor_atoms)?;
    currency_by_id(conn, currency.id)
}

/// A policy's small integer (basis points, days) as stored; `validate` bounds it.
fn small(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A reserve must be worth something the issuer cannot make: a currency of another issuer,
/// valued in the same unit of account (par values compare only within one unit).
fn check_backing(conn: &mut DbConn, new: &NewCurrency) -> Result<(), LedgerError> {
    let Some(backing) = new.policies.backing else {
        return Ok(());
    };
    let reserve = currency_by_id(conn, backing.currency)?;
    if reserve.issuer_id == new.issuer {
        return Err(LedgerError::bad_policy(
            "backing.currency",
            format!(
                "backing.currency: {} is issued by the same business, which could issue its own reserve; back it with another business's currency",
                reserve.code
            ),
        ));
    }
    // A mutual-credit member's account may go below zero: a "reserve" there is its own debt.
    if reserve.policies.kind == CurrencyKind::MutualCredit {
        return Err(LedgerError::bad_policy(
            "backing.currency",
            format!(
                "backing.currency: {} is a mutual-credit currency, whose members may hold it in credit; a reserve must be money the issuer owns",
                reserve.code
            ),
        ));
    }
    if reserve.unit != new.unit {
        return Err(LedgerError::bad_policy(
            "backing.currency",
            format!(
                "backing.currency: {} is valued in {}, this currency in {}: a reserve is valued at par in the same unit",
                reserve.code, reserve.unit, new.unit
            ),
        ));
    }
    Ok(())
}

/// A joining fee is paid in a currency that exists, other than the one joined (a newcomer
/// holds none of that yet).
fn check_joining_fee(
    conn: &mut DbConn,
    policies: &Policies,
    joined: Option<CurrencyId>,
) -> Result<(), LedgerError> {
    let Some(fee) = policies.joining_fee else {
        return Ok(());
    };
    let paid_in = currency_by_id(conn, fee.currency)?;
    if Some(paid_in.id) == joined {
        return Err(LedgerError::bad_policy(
            "joining_fee.currency",
            "joining_fee.currency: the fee is paid in another currency, one a newcomer already holds",
        ));
    }
    if fee.atoms > MAX_AMOUNT_ATOMS {
        return Err(scrip_domain::AmountError::Overflow.into());
    }
    Ok(())
}

/// Who collects a currency's fee and demurrage, when not its issuer.
fn collectors(policies: &Policies) -> impl Iterator<Item = PrincipalId> {
    let fee = policies.transfer_fee.and_then(|f| f.to);
    let demurrage = policies.demurrage.and_then(|d| d.to);
    fee.into_iter().chain(demurrage)
}

/// A collector is a business or a person, never the registry (whose accounts only collect
/// the exchange's fees).
fn check_collector(conn: &mut DbConn, collector: PrincipalId) -> Result<(), LedgerError> {
    let principal = principal_by_id(conn, collector)?;
    rules::may_be_paid(principal.kind)
}

/// Writes the policies that can change after creation (the rest is fixed at creation), and
/// the last demurrage period counted as paid (`demurrage_through`).
fn write_payment_policies(
    conn: &mut DbConn,
    currency: CurrencyId,
    p: &Policies,
    through: Option<i64>,
) -> Result<(), LedgerError> {
    let fee = p.transfer_fee;
    let demurrage = p.demurrage;
    let joining = p.joining_fee;
    let bps = small;
    diesel::update(currencies::table.find(currency.get()))
        .set((
            currencies::member_credit_limit_atoms.eq(p.member_credit_limit_atoms),
            currencies::max_payment_atoms.eq(p.max_payment_atoms),
            currencies::transfer_fee_bps.eq(fee.map(|f| bps(f.bps))),
            currencies::transfer_fee_min_atoms.eq(fee.map_or(0, |f| f.min_atoms)),
            currencies::transfer_fee_to_id.eq(fee.and_then(|f| f.to).map(PrincipalId::get)),
            currencies::demurrage_rate_bps.eq(demurrage.map(|d| bps(d.rate_bps))),
            currencies::demurrage_period.eq(demurrage.map(|d| d.period.as_str())),
            currencies::demurrage_to_id.eq(demurrage.and_then(|d| d.to).map(PrincipalId::get)),
            currencies::demurrage_through.eq(through),
            currencies::requires_admission.eq(i32::from(p.requires_admission)),
            currencies::freezable.eq(i32::from(p.freezable)),
            currencies::sealed.eq(p.sealed_text()),
            currencies::joining_fee_atoms.eq(joining.map(|f| f.atoms)),
            currencies::joining_fee_currency_id.eq(joining.map(|f| f.currency.get())),
            currencies::joining_fee_refundable_after_days
                .eq(joining.and_then(|f| f.refundable_after_days).map(small)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn currency_by_code(conn: &mut DbConn, code: &CurrencyCode) -> Result<Currency, LedgerError> {
    currencies::table
        .filter(currencies::code.eq(code.as_str()))
        .select(CurrencyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(LedgerError::UnknownCurrency)?
        .try_into()
}

pub fn currency_by_id(conn: &mut DbConn, id: CurrencyId) -> Result<Currency, LedgerError> {
    currencies::table
        .find(id.get())
        .select(CurrencyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(LedgerError::UnknownCurrency)?
        .try_into()
}

/// A change of policy: each field `None` keeps it. `max_balance: Some(None)` removes the
/// maximum, and so on for every optional policy.
#[derive(Debug, Clone, Default)]
pub struct LimitsChange {
    pub credit_limit: Option<Amount>,
    pub max_balance: Option<Option<Amount>>,
    pub member_credit_limit: Option<Amount>,
    pub max_payment: Option<Option<Amount>>,
    pub transfer_fee: Option<Option<TransferFee>>,
    pub demurrage: Option<Option<Demurrage>>,
    pub requires_admission: Option<bool>,
    pub joining_fee: Option<Option<JoiningFee>>,
    /// Fields to seal from now on (added to those already sealed; a seal is never lifted).
    pub seal: BTreeSet<PolicyField>,
}

impl LimitsChange {
    /// The fields this change would change (set, even to the same value).
    fn fields(&self) -> Vec<PolicyField> {
        let mut fields = Vec::new();
        let mut mark = |set: bool, field| {
            if set {
                fields.push(field);
            }
        };
        mark(self.credit_limit.is_some(), PolicyField::CreditLimit);
        mark(self.max_balance.is_some(), PolicyField::MaxBalance);
        mark(
            self.member_credit_limit.is_some(),
            PolicyField::MemberCreditLimit,
        );
        mark(self.max_payment.is_some(), PolicyField::MaxPayment);
        mark(self.transfer_fee.is_some(), PolicyField::TransferFee);
        mark(self.demurrage.is_some(), PolicyField::Demurrage);
        mark(
            self.requires_admission.is_some(),
            PolicyField::RequiresAdmission,
        );
        mark(self.joining_fee.is_some(), PolicyField::JoiningFee);
        fields
    }
}

/// Refuses a change of a sealed field (`Sealed`): once sealed, holders can trust it.
pub fn check_not_sealed(currency: &Currency, change: &LimitsChange) -> Result<(), LedgerError> {
    match change
        .fields()
        .into_iter()
        .find(|field| currency.policies.sealed.contains(field))
    {
        Some(field) => Err(LedgerError::Sealed { field }),
        None => Ok(()),
    }
}

/// Changes the credit limit and/or maximum balance. A limit that an existing balance already
/// exceeds is refused (`LimitBelowPosition`): the invariants must hold at every moment, so a
/// limit can only be lowered to where the accounts already are.
pub fn set_limits(
    conn: &mut DbConn,
    currency_id: CurrencyId,
    change: &LimitsChange,
) -> Result<Currency, LedgerError> {
    // A transfer committing between our check and our update can still push a balance past
    // the new limit; the accounts table's CHECK constraints catch that, and it is the same refusal.
    apply_limits(conn, currency_id, change).map_err(|e| match e {
        LedgerError::Store(DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)) => {
            LedgerError::LimitBelowPosition
        }
        other => other,
    })
}

fn apply_limits(
    conn: &mut DbConn,
    currency_id: CurrencyId,
    change: &LimitsChange,
) -> Result<Currency, LedgerError> {
    crate::transfer::lock_currency(conn, currency_id)?;
    let currency = currency_by_id(conn, currency_id)?;
    // Checked again under the lock: a seal that landed since the caller read it holds.
    check_not_sealed(&currency, change)?;
    let rules = CurrencyRules::of(&currency);
    apply_payment_policies(conn, &currency, change)?;
    if let Some(limit) = change.credit_limit {
        let atoms = check_limit(limit, currency.scale)?;
        let floor_atoms = crate::reserve::issuer_floor_atoms(conn, &currency, atoms)?;
        let issuer = writer::lock_issuer_account(conn, &rules)?;
        rules::check_limits(&issuer.position, floor_atoms, None)?;
        writer::set_floor(conn, issuer.account_id, floor_atoms)?;
        diesel::update(currencies::table.find(currency_id.get()))
            .set(currencies::credit_limit_atoms.eq(atoms))
            .execute(conn)?;
    }
    if let Some(max_balance) = change.max_balance {
        let atoms = max_balance
            .map(|m| check_limit(m, currency.scale))
            .transpose()?;
        if let Some(highest) = writer::highest_holder_balance(conn, &rules)? {
            rules::check_limits(
                &Position {
                    balance_atoms: highest,
                    ..Position::empty(None)
                },
                0,
                atoms,
            )?;
        }
        writer::set_holder_ceilings(conn, &rules, atoms)?;
        diesel::update(currencies::table.find(currency_id.get()))
            .set(currencies::max_balance_atoms.eq(atoms))
            .execute(conn)?;
    }
    currency_by_id(conn, currency_id)
}

/// The policies of `change` other than the two limits, validated together with what stays.
fn apply_payment_policies(
    conn: &mut DbConn,
    currency: &Currency,
    change: &LimitsChange,
) -> Result<(), LedgerError> {
    let before = &currency.policies;
    let mut after = before.clone();
    if let Some(limit) = change.member_credit_limit {
        after.member_credit_limit_atoms = check_limit(limit, currency.scale)?;
    }
    if let Some(max) = change.max_payment {
        after.max_payment_atoms = max.map(|m| check_limit(m, currency.scale)).transpose()?;
    }
    if let Some(fee) = change.transfer_fee {
        after.transfer_fee = fee;
    }
    if let Some(demurrage) = change.demurrage {
        after.demurrage = demurrage;
    }
    if let Some(required) = change.requires_admission {
        after.requires_admission = required;
    }
    if let Some(fee) = change.joining_fee {
        after.joining_fee = fee;
    }
    after.sealed.extend(change.seal.iter().copied());
    if after == *before {
        return Ok(());
    }
    after.validate()?;
    for collector in collectors(&after) {
        check_collector(conn, collector)?;
    }
    check_joining_fee(conn, &after, Some(currency.id))?;
    // Who holds the currency when it becomes members-only stays: a member, having paid nothing.
    if after.members_only() && !before.members_only() {
        crate::members::admit_holders(conn, currency)?;
    }
    // Turning demurrage on starts it with the next period (the current one is not charged);
    // a new rate keeps the job's progress, a new period restarts the count; off ends it.
    let through = match (before.demurrage, after.demurrage) {
        (_, None) => None,
        (None, Some(d)) => Some(d.period.index_at(now_us())),
        (Some(old), Some(new)) if old.period != new.period => Some(new.period.index_at(now_us())),
        (Some(_), Some(_)) => currency.demurrage_through,
    };
    write_payment_policies(conn, currency.id, &after, through)
}
