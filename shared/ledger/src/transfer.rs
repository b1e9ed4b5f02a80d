//! Payments: the request type, the currency rules a payment needs, and account lookups.
//! Whether a payment may happen is decided in `rules`; it is planned in `batch` and written
//! by `writer`.

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyId, PrincipalId};
use scrip_store::DbConn;
use scrip_store::schema::accounts;

use crate::model::AccountRow;
use crate::rules::CurrencyRules;
use crate::{Account, Currency, LedgerError, TransferKind};

/// A request to move `amount` of a currency from one principal's account to another's.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub currency: CurrencyId,
    pub from: PrincipalId,
    pub to: PrincipalId,
    pub amount: Amount,
    pub kind: TransferKind,
    pub memo: Option<String>,
}

/// The rules of one currency as stored.
pub fn currency_rules(conn: &mut DbConn, id: CurrencyId) -> Result<CurrencyRules, LedgerError> {
    Ok(CurrencyRules::of(&crate::currency_by_id(conn, id)?))
}

impl CurrencyRules {
    /// What the rules need of a currency as loaded.
    pub fn of(currency: &Currency) -> Self {
        let policies = &currency.policies;
        Self {
            id: currency.id,
            scale: currency.scale,
            issuer: currency.issuer_id,
            kind: policies.kind,
            max_payment_atoms: policies.max_payment_atoms,
            transfer_fee: policies.transfer_fee,
            requires_admission: policies.members_only(),
            freezable: policies.freezable,
        }
    }
}

/// Locks the currency row for a policy change (PostgreSQL): a first receipt reads the
/// ceiling under a share lock, so a limit change and a new account cannot interleave.
pub(crate) fn lock_currency(conn: &mut DbConn, currency: CurrencyId) -> Result<(), LedgerError> {
    Ok(scrip_store::lock_row(conn, "currencies", currency.get())?)
}

/// One principal's account in one currency, if it was ever opened.
pub fn account(
    conn: &mut DbConn,
    principal: PrincipalId,
    currency: CurrencyId,
) -> Result<Option<Account>, LedgerError> {
    let rules = currency_rules(conn, currency)?;
    let row = accounts::table
        .filter(accounts::principal_id.eq(principal.get()))
        .filter(accounts::currency_id.eq(currency.get()))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|row| row.into_account(rules.scale)))
}
