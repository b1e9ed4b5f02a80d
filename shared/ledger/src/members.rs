//! Members of a currency: in a mutual-credit currency every holder is one, with its own credit
//! limit (its account's floor is minus it); in a currency that requires admission only members
//! may hold it at all. The stewards (the issuer's owners) set limits and admit; the ledger keeps
//! the rows in step with the accounts.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Amount, CurrencyId, PrincipalId, PrincipalKind};
use scrip_store::DbConn;
use scrip_store::schema::{accounts, currency_members};

use crate::model::now_us;
use crate::plan::Key;
use crate::policy::{CurrencyKind, PolicyField, US_PER_DAY};
use crate::principals::principal_by_id;
use crate::rules::{self, CurrencyRules, Position};
use crate::writer::{self, OpeningTerms};
use crate::{Currency, LedgerError};

/// One member of a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub principal_id: PrincipalId,
    /// How far below zero the member's account may go (mutual credit; zero otherwise).
    pub credit_limit: Amount,
    pub admitted_at_us: i64,
    /// The joining fee it paid (atoms of that currency), if any.
    pub joining_fee: Option<(CurrencyId, i64)>,
    /// From when leaving refunds that fee; never when none.
    pub refundable_from_us: Option<i64>,
}

/// How a newcomer becomes a member: it decides whether the joining fee is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// The member asked (joined, or applied and was admitted): it pays the joining fee.
    Asked,
    /// The stewards set it (a member's credit limit): a newcomer to a currency with a joining
    /// fee is refused (`JoiningFeeRequired`), nobody pays without asking.
    ByStewards,
}

type MemberRow = (i64, i64, i64, Option<i64>, Option<i64>);

fn member_of(principal: PrincipalId, scale: scrip_domain::Scale, row: MemberRow) -> Member {
    let (limit, admitted_at_us, fee_atoms, fee_currency, refundable_from_us) = row;
    Member {
        principal_id: principal,
        credit_limit: Amount::from_atoms(limit, scale),
        admitted_at_us,
        joining_fee: fee_currency
            .filter(|_| fee_atoms > 0)
            .map(|c| (CurrencyId::new(c), fee_atoms)),
        refundable_from_us,
    }
}

fn member_limit_atoms(
    conn: &mut DbConn,
    currency: CurrencyId,
    principal: PrincipalId,
) -> Result<Option<i64>, LedgerError> {
    Ok(currency_members::table
        .find((currency.get(), principal.get()))
        .select(currency_members::credit_limit_atoms)
        .first(conn)
        .optional()?)
}

/// Inserts a membership unless there is one; true when this call inserted it.
fn join(
    conn: &mut DbConn,
    currency: CurrencyId,
    principal: PrincipalId,
    credit_limit_atoms: i64,
) -> Result<bool, LedgerError> {
    if member_limit_atoms(conn, currency, principal)?.is_some() {
        return Ok(false);
    }
    // In a savepoint: a concurrent first receipt may insert the same row first, and on
    // PostgreSQL a failed statement would otherwise abort the whole transaction.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(currency_members::table)
            .values((
                currency_members::currency_id.eq(currency.get()),
                currency_members::principal_id.eq(principal.get()),
                currency_members::credit_limit_atoms.eq(credit_limit_atoms),
                currency_members::admitted_at_us.eq(now_us()),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// The floor of a holder's new account, and whether opening it made the holder a member:
/// zero in an issuer-credit currency; minus the member's own limit (or the currency's default
/// for new members, joining it) in a mutual-credit one. `NotAdmitted` when admission is
/// required and the holder is no member.
pub(crate) fn floor_for_new_account(
    conn: &mut DbConn,
    currency: CurrencyId,
    terms: &OpeningTerms,
    principal: PrincipalId,
) -> Result<(i64, bool), LedgerError> {
    let limit = member_limit_atoms(conn, currency, principal)?;
    if terms.requires_admission != 0 && limit.is_none() {
        return Err(LedgerError::NotAdmitted);
    }
    if CurrencyKind::parse(&terms.kind) != Some(CurrencyKind::MutualCredit) {
        return Ok((0, false));
    }
    match limit {
        Some(atoms) => Ok((-atoms, false)),
        None => {
            let joined = join(conn, currency, principal, terms.member_credit_limit_atoms)?;
            let atoms = member_limit_atoms(conn, currency, principal)?
                .ok_or(LedgerError::UnknownPrincipal)?;
            Ok((-atoms, joined))
        }
    }
}

/// The receivers among `accounts` that hold an account in a members-only currency without
/// being members (they left): they may not receive it. The issuer and the registry are never
/// members. One query, and only when a members-only currency is involved.
pub(crate) fn former_members(
    conn: &mut DbConn,
    accounts: &std::collections::HashMap<Key, writer::LockedAccount>,
    receivers: &std::collections::BTreeSet<Key>,
    rules: &std::collections::HashMap<CurrencyId, CurrencyRules>,
) -> Result<Vec<Key>, LedgerError> {
    let candidates: Vec<Key> = receivers
        .iter()
        .filter(|key| accounts.contains_key(key))
        .filter(|(principal, currency)| {
            rules
                .get(currency)
                .is_some_and(|r| r.requires_admission && r.issuer != *principal)
        })
        .copied()
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let registry = writer::registry_principals(conn)?;
    let principals: Vec<i64> = candidates.iter().map(|(p, _)| p.get()).collect();
    let currencies: Vec<i64> = candidates.iter().map(|(_, c)| c.get()).collect();
    let members: std::collections::HashSet<(i64, i64)> = currency_members::table
        .filter(currency_members::principal_id.eq_any(&principals))
        .filter(currency_members::currency_id.eq_any(&currencies))
        .select((
            currency_members::principal_id,
            currency_members::currency_id,
        ))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(candidates
        .into_iter()
        .filter(|(p, c)| !registry.contains(&p.get()) && !members.contains(&(p.get(), c.get())))
        .collect())
}

/// Forgets memberships made by opening accounts that this transaction closes again.
pub(crate) fn forget(
    conn: &mut DbConn,
    keys: impl Iterator<Item = Key>,
) -> Result<(), LedgerError> {
    for (principal, currency) in keys {
        diesel::delete(currency_members::table.find((currency.get(), principal.get())))
            .execute(conn)?;
    }
    Ok(())
}

/// Admits `principal` to the currency (or changes its credit limit, mutual credit only) and
/// opens its account: stewards only (checked by the caller). A lower limit is refused while
/// the member's balance is below it (`LimitBelowPosition`), like every limit.
pub fn set_member(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
    (credit_limit, how): (Option<Amount>, Joining),
) -> Result<Member, LedgerError> {
    crate::transfer::lock_currency(conn, currency.id)?;
    // The policies as locked: a seal or a new default that landed since the caller read them.
    let currency = &crate::currency_by_id(conn, currency.id)?;
    let holder = principal_by_id(conn, principal)?;
    if holder.kind == PrincipalKind::Registry || principal == currency.issuer_id {
        return Err(LedgerError::bad_policy(
            "member",
            "the issuer and the registry are not members: the issuer's limit is the currency's credit_limit",
        ));
    }
    let mutual = currency.policies.kind == CurrencyKind::MutualCredit;
    let limit_atoms = match credit_limit {
        Some(_) if !mutual => {
            return Err(LedgerError::bad_policy(
                "credit_limit",
                "credit_limit: only members of a mutual_credit currency have one",
            ));
        }
        Some(limit) => Some(crate::currencies::check_limit(limit, currency.scale)?),
        None => None,
    };
    // A sealed default is a promise to every member: nobody gets another limit.
    let field = PolicyField::MemberCreditLimit;
    if currency.policies.sealed.contains(&field)
        && limit_atoms.is_some_and(|atoms| atoms != currency.policies.member_credit_limit_atoms)
    {
        return Err(LedgerError::Sealed { field });
    }
    let existing = member_limit_atoms(conn, currency.id, principal)?;
    let atoms = limit_atoms.or(existing).unwrap_or(if mutual {
        currency.policies.member_credit_limit_atoms
    } else {
        0
    });
    if existing.is_none() {
        join(conn, currency.id, principal, atoms)?;
        pay_joining_fee(conn, currency, principal, how)?;
    }
    let rules = CurrencyRules::of(currency);
    let (row, _) = writer::open_account(conn, principal, &rules)?;
    let locked = writer::lock(
        conn,
        &std::collections::BTreeSet::from([(principal, currency.id)]),
        &std::collections::BTreeSet::new(),
        &std::collections::HashMap::from([(currency.id, rules)]),
    )?;
    let position = locked
        .accounts
        .get(&(principal, currency.id))
        .map_or(Position::empty(None), |a| a.position);
    if mutual {
        rules::check_limits(&position, -atoms, position.ceiling_atoms)?;
        writer::set_floor(conn, row.id, -atoms)?;
    }
    diesel::update(currency_members::table.find((currency.id.get(), principal.get())))
        .set(currency_members::credit_limit_atoms.eq(atoms))
        .execute(conn)?;
    member(conn, currency, principal)?.ok_or(LedgerError::UnknownPrincipal)
}

/// One member, if the principal is one.
pub fn member(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
) -> Result<Option<Member>, LedgerError> {
    let row: Option<MemberRow> = currency_members::table
        .find((currency.id.get(), principal.get()))
        .select((
            currency_members::credit_limit_atoms,
            currency_members::admitted_at_us,
            currency_members::joining_fee_atoms,
            currency_members::joining_fee_currency_id,
            currency_members::refundable_from_us,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|row| member_of(principal, currency.scale, row)))
}

/// A new member's joining fee, paid to the issuer in the fee's currency and recorded on its
/// membership (what leaving refunds, whatever the fee is later). In the caller's transaction:
/// a member who cannot pay is not admitted.
fn pay_joining_fee(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
    how: Joining,
) -> Result<(), LedgerError> {
    let Some(fee) = currency.policies.joining_fee else {
        return Ok(());
    };
    let paid_in = crate::currency_by_id(conn, fee.currency)?;
    let amount = Amount::from_atoms(fee.atoms, paid_in.scale);
    if how == Joining::ByStewards {
        return Err(LedgerError::JoiningFeeRequired {
            currency: currency.code.to_string(),
            fee: format!("{amount} {}", paid_in.code),
        });
    }
    crate::transfer(
        conn,
        &crate::TransferRequest {
            currency: paid_in.id,
            from: principal,
            to: currency.issuer_id,
            amount,
            kind: crate::TransferKind::JoiningFee,
            memo: Some(format!("joining fee of {}", currency.code)),
        },
    )?;
    let now = now_us();
    let refundable_from_us = fee
        .refundable_after_days
        .map(|days| now.saturating_add(days.saturating_mul(US_PER_DAY)));
    diesel::update(currency_members::table.find((currency.id.get(), principal.get())))
        .set((
            currency_members::joining_fee_atoms.eq(fee.atoms),
            currency_members::joining_fee_currency_id.eq(fee.currency.get()),
            currency_members::refundable_from_us.eq(refundable_from_us),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether the principal has open orders in a market of the currency (a buy order would pay
/// it the currency after it left).
fn has_open_orders(
    conn: &mut DbConn,
    currency: CurrencyId,
    principal: PrincipalId,
) -> Result<bool, LedgerError> {
    use scrip_store::schema::{markets, orders};
    let open: i64 = orders::table
        .inner_join(markets::table.on(markets::id.eq(orders::market_id)))
        .filter(orders::owner_id.eq(principal.get()))
        .filter(orders::status.eq_any(["open", "partially_filled"]))
        .filter(
            markets::base_currency_id
                .eq(currency.get())
                .or(markets::quote_currency_id.eq(currency.get())),
        )
        .count()
        .get_result(conn)?;
    Ok(open > 0)
}

/// What leaving gave back: the joining fee, when its refundable time had passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub refunded: Option<(CurrencyId, i64)>,
}

/// The member leaves the currency: only with an empty account (nothing held, owed or
/// reserved), and its joining fee comes back from the issuer when the refundable time has
/// passed (a leave the issuer cannot refund is refused, never done without the refund). The
/// account stays (its journal does), without a membership: it receives nothing until the
/// holder joins again. `UnknownPrincipal` when it is no member.
pub fn leave(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
    now_us: i64,
) -> Result<Left, LedgerError> {
    crate::transfer::lock_currency(conn, currency.id)?;
    let currency = &crate::currency_by_id(conn, currency.id)?;
    let member = member(conn, currency, principal)?.ok_or(LedgerError::UnknownPrincipal)?;
    let p = &currency.policies;
    let collects = [
        p.transfer_fee.and_then(|f| f.to),
        p.demurrage.and_then(|d| d.to),
    ];
    if collects.contains(&Some(principal)) {
        return Err(LedgerError::bad_policy(
            "member",
            format!(
                "it collects {}'s fees or demurrage: the stewards name another collector first",
                currency.code
            ),
        ));
    }
    let rules = CurrencyRules::of(currency);
    let key = (principal, currency.id);
    let locked = writer::lock(
        conn,
        &std::collections::BTreeSet::from([key]),
        &std::collections::BTreeSet::new(),
        &std::collections::HashMap::from([(currency.id, rules)]),
    )?;
    if has_open_orders(conn, currency.id, principal)? {
        return Err(LedgerError::OpenOrders {
            currency: currency.code.to_string(),
        });
    }
    if let Some(account) = locked.accounts.get(&key) {
        let position = account.position;
        if position.balance_atoms != 0 || position.held_atoms != 0 {
            let amount = |atoms| Amount::from_atoms(atoms, currency.scale).to_string();
            return Err(LedgerError::AccountNotEmpty {
                balance: amount(position.balance_atoms),
                held: amount(position.held_atoms),
            });
        }
        rules::check_limits(&position, 0, position.ceiling_atoms)?;
        writer::set_floor(conn, account.account_id, 0)?;
    }
    forget(conn, std::iter::once(key))?;
    let due = member
        .refundable_from_us
        .is_some_and(|from| from <= now_us)
        .then_some(member.joining_fee)
        .flatten();
    if let Some((fee_currency, atoms)) = due {
        let paid_in = crate::currency_by_id(conn, fee_currency)?;
        crate::transfer(
            conn,
            &crate::TransferRequest {
                currency: fee_currency,
                from: currency.issuer_id,
                to: principal,
                amount: Amount::from_atoms(atoms, paid_in.scale),
                kind: crate::TransferKind::JoiningFeeRefund,
                memo: Some(format!("joining fee of {} refunded", currency.code)),
            },
        )?;
    }
    Ok(Left { refunded: due })
}

/// Makes every current holder of the currency a member (turning `requires_admission` on
/// keeps everyone who already holds it).
pub(crate) fn admit_holders(conn: &mut DbConn, currency: &Currency) -> Result<(), LedgerError> {
    let registry = writer::registry_principals(conn)?;
    let holders: Vec<i64> = accounts::table
        .filter(accounts::currency_id.eq(currency.id.get()))
        .filter(accounts::principal_id.ne(currency.issuer_id.get()))
        .filter(accounts::principal_id.ne_all(registry))
        .select(accounts::principal_id)
        .load(conn)?;
    for principal in holders {
        join(conn, currency.id, PrincipalId::new(principal), 0)?;
    }
    Ok(())
}

/// A page of the currency's members by principal id (after `after`, at most `limit`), each
/// with its balance.
pub fn members_page(
    conn: &mut DbConn,
    currency: &Currency,
    after: Option<PrincipalId>,
    limit: i64,
) -> Result<Vec<(Member, Amount)>, LedgerError> {
    let rows: Vec<(i64, MemberRow, Option<i64>)> = currency_members::table
        .left_join(
            accounts::table.on(accounts::principal_id
                .eq(currency_members::principal_id)
                .and(accounts::currency_id.eq(currency_members::currency_id))),
        )
        .filter(currency_members::currency_id.eq(currency.id.get()))
        .filter(currency_members::principal_id.gt(after.map_or(0, PrincipalId::get)))
        .order(currency_members::principal_id)
        .limit(limit)
        .select((
            currency_members::principal_id,
            (
                currency_members::credit_limit_atoms,
                currency_members::admitted_at_us,
                currency_members::joining_fee_atoms,
                currency_members::joining_fee_currency_id,
                currency_members::refundable_from_us,
            ),
            accounts::balance_atoms.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(principal, row, balance)| {
            let member = member_of(PrincipalId::new(principal), currency.scale, row);
            let balance = Amount::from_atoms(balance.unwrap_or(0), currency.scale);
            (member, balance)
        })
        .collect())
}

/// Whether the principal is a member of the currency.
pub fn is_member(
    conn: &mut DbConn,
    currency: CurrencyId,
    principal: PrincipalId,
) -> Result<bool, LedgerError> {
    Ok(member_limit_atoms(conn, currency, principal)?.is_some())
}

/// What a principal may spend in `currency` before its account there is opened: in a
/// mutual-credit currency its credit line (its own limit as a member, or the limit a new
/// member gets, unless admission is required), elsewhere nothing. The account is opened at
/// its first payment with exactly this floor ([`floor_for_new_account`]).
pub fn credit_before_opening(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
) -> Result<i64, LedgerError> {
    if currency.policies.kind != CurrencyKind::MutualCredit {
        return Ok(0);
    }
    Ok(match member_limit_atoms(conn, currency.id, principal)? {
        Some(atoms) => atoms,
        None if currency.policies.members_only() => 0,
        None => currency.policies.member_credit_limit_atoms,
    })
}
