//! A market's rules: what a tick and a lot are worth, the fee, and the exact conversions
//! between the API's decimal strings and the engine's integer ticks and lots. Pure.

use scrip_domain::{Amount, CurrencyCode, CurrencyId, Scale};
use scrip_ledger::MAX_AMOUNT_ATOMS;
use scrip_matching::{Lots, Ticks};

use crate::ExchangeError;

/// A market's row id.
pub type MarketId = i64;

/// Basis points in one whole.
const BPS_PER_UNIT: i128 = 10_000;
/// The highest fee a market may charge: 10%.
pub const MAX_FEE_BPS: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketSpec {
    pub id: MarketId,
    pub base: CurrencyId,
    pub quote: CurrencyId,
    pub base_code: CurrencyCode,
    pub quote_code: CurrencyCode,
    pub base_scale: Scale,
    pub quote_scale: Scale,
    /// One tick of price, in quote atoms per whole base unit.
    pub tick_size_atoms: i64,
    /// One lot of quantity, in base atoms.
    pub lot_size_atoms: i64,
    pub fee_bps: u32,
    /// Quote atoms paid for one lot at a price of one tick; every notional is a multiple.
    notional_atoms_per_tick_lot: i64,
}

impl MarketSpec {
    /// Checks that tick and lot make every notional a whole number of quote atoms:
    /// `tick_atoms * lot_atoms` must be a multiple of one whole base unit in atoms.
    pub fn new(
        id: MarketId,
        (base, base_code, base_scale): (CurrencyId, CurrencyCode, Scale),
        (quote, quote_code, quote_scale): (CurrencyId, CurrencyCode, Scale),
        tick_size_atoms: i64,
        lot_size_atoms: i64,
        fee_bps: u32,
    ) -> Result<Self, ExchangeError> {
        if tick_size_atoms <= 0 || lot_size_atoms <= 0 {
            return Err(ExchangeError::BadMarket(
                "tick_size and lot_size must be greater than zero".into(),
            ));
        }
        if fee_bps > MAX_FEE_BPS {
            return Err(ExchangeError::BadMarket(format!(
                "fee_bps is at most {MAX_FEE_BPS}"
            )));
        }
        let product = i128::from(tick_size_atoms) * i128::from(lot_size_atoms);
        let unit = i128::from(base_scale.atoms_per_unit());
        if product % unit != 0 {
            return Err(ExchangeError::BadMarket(
                "tick_size x lot_size must be a whole number of quote atoms \
                 (make the lot or the tick larger)"
                    .into(),
            ));
        }
        let per = i64::try_from(product / unit)
            .ok()
            .filter(|p| *p <= MAX_AMOUNT_ATOMS)
            .ok_or_else(|| ExchangeError::BadMarket("tick_size x lot_size is too large".into()))?;
        Ok(Self {
            id,
            base,
            quote,
            base_code,
            quote_code,
            base_scale,
            quote_scale,
            tick_size_atoms,
            lot_size_atoms,
            fee_bps,
            notional_atoms_per_tick_lot: per,
        })
    }

    pub fn symbol(&self) -> String {
        format!("{}-{}", self.base_code, self.quote_code)
    }

    /// A limit price in ticks: exact, positive, a multiple of the tick.
    pub fn price_ticks(&self, raw: &str) -> Result<Ticks, ExchangeError> {
        let bad = |why: String| ExchangeError::BadPrice(why);
        // In the market's words (a price, its tick), not the amount parser's.
        let price = Amount::parse_positive(raw, self.quote_scale).map_err(|_| {
            bad(format!(
                "a price is a positive number of {} in steps of {}, such as {}; not {raw:?}",
                self.quote_code,
                self.price(1),
                self.price(100)
            ))
        })?;
        if price.atoms() % self.tick_size_atoms != 0 {
            return Err(bad(format!(
                "the price must be a multiple of the tick size {}",
                self.price(1)
            )));
        }
        Ok(price.atoms() / self.tick_size_atoms)
    }

    /// A quantity in lots: exact, positive, a multiple of the lot, and bounded.
    pub fn quantity_lots(&self, raw: &str) -> Result<Lots, ExchangeError> {
        let bad = |why: String| ExchangeError::BadQuantity(why);
        let quantity = Amount::parse_positive(raw, self.base_scale).map_err(|_| {
            bad(format!(
                "a quantity is a positive number of {} in steps of {}; not {raw:?}",
                self.base_code,
                self.quantity(1)
            ))
        })?;
        if quantity.atoms() > MAX_AMOUNT_ATOMS {
            return Err(bad("the quantity is too large".into()));
        }
        if quantity.atoms() % self.lot_size_atoms != 0 {
            return Err(bad(format!(
                "the quantity must be a multiple of the lot size {}",
                self.quantity(1)
            )));
        }
        Ok(quantity.atoms() / self.lot_size_atoms)
    }

    pub fn price(&self, ticks: Ticks) -> Amount {
        Amount::from_atoms(ticks.saturating_mul(self.tick_size_atoms), self.quote_scale)
    }

    pub fn quantity(&self, lots: Lots) -> Amount {
        Amount::from_atoms(lots.saturating_mul(self.lot_size_atoms), self.base_scale)
    }

    /// Quote atoms of `lots` at `ticks`; `None` beyond what the ledger can hold.
    pub fn notional_atoms(&self, ticks: Ticks, lots: Lots) -> Option<i64> {
        let atoms = i128::from(ticks)
            .checked_mul(i128::from(lots))?
            .checked_mul(i128::from(self.notional_atoms_per_tick_lot))?;
        i64::try_from(atoms).ok().filter(|a| *a <= MAX_AMOUNT_ATOMS)
    }

    /// Base atoms of `lots`; `None` beyond what the ledger can hold.
    pub fn base_atoms(&self, lots: Lots) -> Option<i64> {
        lots.checked_mul(self.lot_size_atoms)
            .filter(|a| (0..=MAX_AMOUNT_ATOMS).contains(a))
    }

    /// The fee of a fill that takes an order's running total received from `before_atoms` to
    /// `after_atoms`: the step in the fee on the total, so the fees of an order's fills add
    /// up to the fee on all it received, rounded down once.
    pub fn fee_step(&self, before_atoms: i64, after_atoms: i64) -> i64 {
        self.fee_atoms(after_atoms) - self.fee_atoms(before_atoms)
    }

    /// The fee on `received_atoms`: `fee_bps` of it, rounded down to the atom.
    pub fn fee_atoms(&self, received_atoms: i64) -> i64 {
        let fee = i128::from(received_atoms) * i128::from(self.fee_bps) / BPS_PER_UNIT;
        // `fee_bps` is at most a tenth of the whole (checked in `new`), so the fee is at most a
        // tenth of an amount that fits.
        i64::try_from(fee).expect("a fee is at most a tenth of what it is charged on")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        base_scale: i64,
        quote_scale: i64,
        tick: i64,
        lot: i64,
    ) -> Result<MarketSpec, ExchangeError> {
        let code = |c: &str| CurrencyCode::parse(c).expect("code");
        let scale = |s| Scale::new(s).expect("scale");
        MarketSpec::new(
            1,
            (CurrencyId::new(1), code("BREAD"), scale(base_scale)),
            (CurrencyId::new(2), code("GROCER"), scale(quote_scale)),
            tick,
            lot,
            25,
        )
    }

    #[test]
    fn notionals_are_whole_quote_atoms() {
        // tick 0.01 quote, lot 0.1 base (2 decimals): one tick-lot is 0.001 quote: refused.
        assert!(spec(2, 2, 1, 10).is_err());
        // lot of one whole base unit: one tick-lot is one tick.
        let s = spec(2, 2, 1, 100).expect("spec");
        assert_eq!(s.notional_atoms(250, 3), Some(750));
        assert_eq!(s.price_ticks("2.50").expect("price"), 250);
        assert_eq!(s.quantity_lots("3").expect("qty"), 3);
        assert!(matches!(
            s.quantity_lots("0.5"),
            Err(ExchangeError::BadQuantity(_))
        ));
        assert!(matches!(
            s.price_ticks("2.505"),
            Err(ExchangeError::BadPrice(_))
        ));
        assert!(matches!(
            s.price_ticks("0"),
            Err(ExchangeError::BadPrice(_))
        ));
        assert!(matches!(
            s.price_ticks("-1"),
            Err(ExchangeError::BadPrice(_))
        ));
        assert_eq!(s.notional_atoms(i64::MAX, 2), None);
    }

    #[test]
    fn fees_round_down() {
        let s = spec(2, 2, 1, 100).expect("spec");
        assert_eq!(s.fee_atoms(10_000), 25);
        assert_eq!(s.fee_atoms(399), 0);
        assert_eq!(s.fee_atoms(400), 1);
    }
}
