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
use crate::policy::{CurrencyKind, PolicyField};
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
    credit_limit: Option<Amount>,
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
    let row: Option<(i64, i64)> = currency_members::table
        .find((currency.id.get(), principal.get()))
        .select((
            currency_members::credit_limit_atoms,
            currency_members::admitted_at_us,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(limit, admitted_at_us)| Member {
        principal_id: principal,
        credit_limit: Amount::from_atoms(limit, currency.scale),
        admitted_at_us,
    }))
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
    let rows: Vec<(i64, i64, i64, Option<i64>)> = currency_members::table
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
            currency_members::credit_limit_atoms,
            currency_members::admitted_at_us,
            accounts::balance_atoms.nullable(),
        ))
        .load(conn)?;
    let amount = |atoms| Amount::from_atoms(atoms, currency.scale);
    Ok(rows
        .into_iter()
        .map(|(principal, limit, admitted_at_us, balance)| {
            let member = Member {
                principal_id: PrincipalId::new(principal),
                credit_limit: amount(limit),
                admitted_at_us,
            };
            (member, amount(balance.unwrap_or(0)))
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
        None if currency.policies.requires_admission => 0,
        None => currency.policies.member_credit_limit_atoms,
    })
}
