//! The currencies' policies where an order enters the market: read fresh inside every batch's
//! transaction (two rows), so a policy changed a moment ago already applies to the next order.
//!
//! - `max_payment`: an order's base quantity may not exceed the base currency's, nor its cost
//!   (limit price x quantity; for a market buy what sweeping the book costs now) the quote
//!   currency's. That bounds every fill too: a fill is never larger than the resting order it
//!   trades with, whose quantity and cost were checked when it entered.
//! - `requires_admission`: only a member may receive the currency, so an order that would pay
//!   a non-member (a buy of the base, a sell for the quote) is refused before it can trade.

use scrip_domain::{CurrencyId, PrincipalId};
use scrip_ledger::{CurrencyRules, LedgerError, currency_rules};
use scrip_matching::Side;
use scrip_store::DbConn;

use crate::ExchangeError;
use crate::state::{MarketState, OrderType, PlaceOrder};

pub struct EntryPolicies {
    base: CurrencyRules,
    quote: CurrencyRules,
}

impl EntryPolicies {
    pub fn load(
        conn: &mut DbConn,
        base: CurrencyId,
        quote: CurrencyId,
    ) -> Result<Self, LedgerError> {
        Ok(Self {
            base: currency_rules(conn, base)?,
            quote: currency_rules(conn, quote)?,
        })
    }

    /// The policies as already read in this transaction (a payment's rules of every currency
    /// it may touch).
    pub fn of(
        rules: &scrip_ledger::BatchRules,
        base: CurrencyId,
        quote: CurrencyId,
    ) -> Result<Self, LedgerError> {
        let read = |currency| {
            rules
                .get(currency)
                .copied()
                .ok_or(LedgerError::UnknownCurrency)
        };
        Ok(Self {
            base: read(base)?,
            quote: read(quote)?,
        })
    }

    /// Refuses an order that breaks a policy of either currency; changes nothing.
    pub fn check(
        &self,
        conn: &mut DbConn,
        state: &MarketState,
        order: &PlaceOrder,
    ) -> Result<(), ExchangeError> {
        let spec = &state.spec;
        if let Some(base_atoms) = spec.base_atoms(order.quantity_lots) {
            self.base.check_payment_size(base_atoms)?;
        }
        let price = match (order.order_type, order.side) {
            (OrderType::Limit, _) => order.price_ticks,
            (OrderType::Market, Side::Buy) => {
                state.book().sweep_price(Side::Buy, order.quantity_lots)
            }
            (OrderType::Market, Side::Sell) => None,
        };
        if let Some(cost) = price.and_then(|p| spec.notional_atoms(p, order.quantity_lots)) {
            self.quote.check_payment_size(cost)?;
        }
        let receiving = match order.side {
            Side::Buy => &self.base,
            Side::Sell => &self.quote,
        };
        if receiving.requires_admission && !admitted(conn, receiving, order.owner)? {
            return Err(LedgerError::NotAdmitted.into());
        }
        // A frozen account trades in neither side: what it pays is refused by its hold,
        // what it would receive here.
        if receiving.freezable && frozen(conn, receiving, order.owner)? {
            return Err(LedgerError::Frozen.into());
        }
        Ok(())
    }
}

fn frozen(
    conn: &mut DbConn,
    rules: &CurrencyRules,
    owner: PrincipalId,
) -> Result<bool, LedgerError> {
    Ok(scrip_ledger::account(conn, owner, rules.id)?.is_some_and(|a| a.frozen))
}

fn admitted(
    conn: &mut DbConn,
    rules: &CurrencyRules,
    owner: PrincipalId,
) -> Result<bool, LedgerError> {
    Ok(owner == rules.issuer || scrip_ledger::is_member(conn, rules.id, owner)?)
}
