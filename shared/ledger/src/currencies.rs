//! Currencies and their policies (credit limit, maximum balance).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Amount, CurrencyCode, CurrencyId, Par, PrincipalId, Scale, UnitCode};
use scrip_store::DbConn;
use scrip_store::schema::currencies;

use crate::model::{CurrencyRow, MAX_AMOUNT_ATOMS, now_us};
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
}

/// Checks a limit: the currency's scale, not negative, and inside the ledger's bounds.
fn check_limit(limit: Amount, scale: Scale) -> Result<i64, LedgerError> {
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
    principal_by_id(conn, new.issuer)?;
    let now = now_us();
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
        ))
        .get_result::<CurrencyRow>(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                LedgerError::CodeTaken
            }
            other => other.into(),
        })?;
    let currency = Currency::try_from(row)?;
    writer::open_issuer_account(conn, new.issuer, currency.id, credit_limit_atoms)?;
    Ok(currency)
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

/// A change of policy. `max_balance: Some(None)` removes the maximum.
#[derive(Debug, Clone, Default)]
pub struct LimitsChange {
    pub credit_limit: Option<Amount>,
    pub max_balance: Option<Option<Amount>>,
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
    let rules = CurrencyRules {
        id: currency.id,
        scale: currency.scale,
        issuer: currency.issuer_id,
    };
    if let Some(limit) = change.credit_limit {
        let atoms = check_limit(limit, currency.scale)?;
        let issuer = writer::lock_issuer_account(conn, &rules)?;
        rules::check_limits(&issuer.position, -atoms, None)?;
        writer::set_floor(conn, issuer.account_id, -atoms)?;
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
