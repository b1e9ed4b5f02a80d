//! Freezing a holder's account in a currency declared `freezable`: the account can no longer
//! pay, hold or trade (see `rules::check_change`), it may still be paid, and its holds come
//! back as its orders end. The change is announced on [`FROZEN_TOPIC`] so the order books
//! cancel the holder's resting orders.

use diesel::prelude::*;
use scrip_domain::{CurrencyId, PrincipalId};
use scrip_store::DbConn;
use scrip_store::schema::accounts;

use crate::LedgerError;

/// The bus topic frozen accounts are announced on, as [`frozen_message`].
pub const FROZEN_TOPIC: &str = "accounts.frozen";

/// Freezes (`true`) or unfreezes the holder's account; `false` when it has none. Under the
/// account's row lock (the update), so a payment in flight either ran before or is refused.
pub fn set_frozen(
    conn: &mut DbConn,
    (holder, currency): (PrincipalId, CurrencyId),
    frozen: bool,
) -> Result<bool, LedgerError> {
    let updated = diesel::update(
        accounts::table
            .filter(accounts::principal_id.eq(holder.get()))
            .filter(accounts::currency_id.eq(currency.get())),
    )
    .set(accounts::frozen.eq(i32::from(frozen)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The announcement of a frozen account.
pub fn frozen_message(holder: PrincipalId, currency: CurrencyId) -> String {
    format!("{},{}", holder.get(), currency.get())
}

/// The account an announcement names.
pub fn parse_frozen_message(payload: &str) -> Option<(PrincipalId, CurrencyId)> {
    let (holder, currency) = payload.split_once(',')?;
    Some((
        PrincipalId::new(holder.parse().ok()?),
        CurrencyId::new(currency.parse().ok()?),
    ))
}
