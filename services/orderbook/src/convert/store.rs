//! The rows of a converted payment: what each currency cost and which trades converted it.
//! The payment itself is its final transfer (payer to recipient), whose id is the payment's.

use diesel::prelude::*;
use scrip_domain::{CurrencyId, TransferId};
use scrip_store::DbConn;
use scrip_store::schema::{payment_spends, payment_trades, trades};

use super::execute::{Executed, PaymentTrade};
use crate::ExchangeError;

/// One currency's line of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    pub currency: CurrencyId,
    pub spent_atoms: i64,
    pub change_atoms: i64,
}

/// Stores what a payment cost and its trades, in the payment's transaction.
pub fn record(conn: &mut DbConn, executed: &Executed) -> Result<(), ExchangeError> {
    let transfer_id = executed.transfer.id.get();
    for spend in spends(executed) {
        diesel::insert_into(payment_spends::table)
            .values((
                payment_spends::transfer_id.eq(transfer_id),
                payment_spends::currency_id.eq(spend.currency.get()),
                payment_spends::spent_atoms.eq(spend.spent_atoms),
                payment_spends::change_atoms.eq(spend.change_atoms),
            ))
            .execute(conn)?;
    }
    for trade in &executed.trades {
        diesel::insert_into(payment_trades::table)
            .values((
                payment_trades::transfer_id.eq(transfer_id),
                payment_trades::trade_id.eq(trade.trade_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A payment's currencies: what each cost and what it left over, spent ones first.
pub fn spends(executed: &Executed) -> Vec<Spend> {
    let mut lines: Vec<Spend> = executed
        .spent
        .iter()
        .map(|&(currency, spent_atoms)| Spend {
            currency,
            spent_atoms,
            change_atoms: 0,
        })
        .collect();
    for &(currency, change_atoms) in &executed.change {
        match lines.iter_mut().find(|l| l.currency == currency) {
            Some(line) => line.change_atoms = change_atoms,
            None => lines.push(Spend {
                currency,
                spent_atoms: 0,
                change_atoms,
            }),
        }
    }
    lines
}

/// What a stored payment cost and its trades (in trade order); empty for a plain transfer.
pub fn parts(
    conn: &mut DbConn,
    id: TransferId,
) -> Result<(Vec<Spend>, Vec<PaymentTrade>), ExchangeError> {
    let spent: Vec<(i64, i64, i64)> = payment_spends::table
        .filter(payment_spends::transfer_id.eq(id.get()))
        .select((
            payment_spends::currency_id,
            payment_spends::spent_atoms,
            payment_spends::change_atoms,
        ))
        .order(payment_spends::currency_id)
        .load(conn)?;
    let traded: Vec<(i64, i64, i64, i64)> = payment_trades::table
        .inner_join(trades::table)
        .filter(payment_trades::transfer_id.eq(id.get()))
        .select((
            trades::market_id,
            trades::id,
            trades::price_ticks,
            trades::quantity_lots,
        ))
        .order(trades::id)
        .load(conn)?;
    Ok((
        spent
            .into_iter()
            .map(|(currency, spent_atoms, change_atoms)| Spend {
                currency: CurrencyId::new(currency),
                spent_atoms,
                change_atoms,
            })
            .collect(),
        traded
            .into_iter()
            .map(
                |(market, trade_id, price_ticks, quantity_lots)| PaymentTrade {
                    market,
                    trade_id,
                    price_ticks,
                    quantity_lots,
                },
            )
            .collect(),
    ))
}
