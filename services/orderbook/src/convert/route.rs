//! Planning a conversion through the books (pure): which markets lead from a currency the
//! payer holds to the one the recipient takes, and how much to trade in each so the last one
//! delivers at least what the payment needs.
//!
//! A route is crossed as a taker, one market after another. It is sized backwards: the last
//! market must deliver `net` of the target currency after its fee, so it needs some amount of
//! the currency before it reserved first (a buy holds its limit price x quantity, a sell its
//! quantity); the market before must deliver that, and so on back to the source. Sizing reads
//! the books exactly as the engine will fill them ([`Offers`]: best price first, the payer's
//! own orders left out), so executing a sized route on the same books fills every hop in full.

use scrip_domain::CurrencyId;
use scrip_matching::{Lots, Side, Ticks};

use crate::spec::{MarketId, MarketSpec};

/// At most this many markets in a route (API: `max_hops` is at most 3).
pub const MAX_HOPS: usize = 3;
/// At most this many routes are compared for one source currency.
const MAX_ROUTES: usize = 32;

/// A market as the route finder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub market: MarketId,
    pub base: CurrencyId,
    pub quote: CurrencyId,
}

/// One market of a route and the side the payer takes in it: a buy receives the base (paying
/// the quote), a sell receives the quote (paying the base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub market: MarketId,
    pub side: Side,
}

/// Every route of at most `max_hops` markets from `from` to `to` that visits no currency
/// twice, shortest first (at most [`MAX_ROUTES`]).
pub fn routes(edges: &[Edge], from: CurrencyId, to: CurrencyId, max_hops: usize) -> Vec<Vec<Step>> {
    let mut found = Vec::new();
    let mut path = Vec::new();
    let mut visited = vec![from];
    for hops in 1..=max_hops.min(MAX_HOPS) {
        search(edges, (from, to), hops, &mut path, &mut visited, &mut found);
    }
    found
}

/// Depth-first: routes of exactly `hops` markets from `at` to `to`.
fn search(
    edges: &[Edge],
    (at, to): (CurrencyId, CurrencyId),
    hops: usize,
    path: &mut Vec<Step>,
    visited: &mut Vec<CurrencyId>,
    found: &mut Vec<Vec<Step>>,
) {
    for edge in edges {
        if found.len() >= MAX_ROUTES {
            return;
        }
        let (next, side) = if edge.quote == at {
            (edge.base, Side::Buy)
        } else if edge.base == at {
            (edge.quote, Side::Sell)
        } else {
            continue;
        };
        if visited.contains(&next) {
            continue;
        }
        path.push(Step {
            market: edge.market,
            side,
        });
        if hops == 1 {
            if next == to {
                found.push(path.clone());
            }
        } else if next != to {
            visited.push(next);
            search(edges, (next, to), hops - 1, path, visited, found);
            visited.pop();
        }
        path.pop();
    }
}

/// What a taker on `side` would meet in one book, best price first, level by level.
pub trait Offers {
    fn offered(&self, side: Side, visit: &mut dyn FnMut(Ticks, Lots) -> bool);
}

/// One market crossed as a taker, sized: an immediate-or-cancel order of `lots` at the
/// `limit_ticks` the walk reached fills exactly these numbers on the book it was sized on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizedHop {
    pub step: Step,
    pub lots: Lots,
    pub limit_ticks: Ticks,
    /// What the taker pays: the quote notional of the fills (buy) or the base quantity (sell).
    pub pays_atoms: i64,
    /// What it must have available first: a buy holds its limit price x quantity.
    pub holds_atoms: i64,
    /// What it receives before its fee, and the fee (on the total, rounded down once).
    pub gets_atoms: i64,
    pub fee_atoms: i64,
}

impl SizedHop {
    pub fn net_atoms(&self) -> i64 {
        self.gets_atoms - self.fee_atoms
    }
}

/// Why a route cannot deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// The market's book does not hold enough.
    Depth { market: MarketId },
    /// An amount beyond what the ledger can hold.
    TooLarge,
}

/// The smallest amount received whose fee leaves at least `net_atoms`. Receiving one atom more
/// raises the fee by at most one atom (a fee is at most a tenth), so the net never falls as the
/// gross grows and the smallest such gross is found by a few steps from the estimate.
pub fn gross_for_net(spec: &MarketSpec, net_atoms: i64) -> Option<i64> {
    let keep_bps = 10_000 - i128::from(spec.fee_bps);
    let estimate = ceil_div_i128(i128::from(net_atoms) * 10_000, keep_bps);
    let mut gross = i64::try_from(estimate).ok()?;
    let net = |gross: i64| gross - spec.fee_atoms(gross);
    while gross > net_atoms && net(gross - 1) >= net_atoms {
        gross -= 1;
    }
    while net(gross) < net_atoms {
        gross = gross.checked_add(1)?;
    }
    Some(gross)
}

/// `a / b` rounded up, for `a >= 0` and `b > 0` (signed `div_ceil` is not stable yet).
fn ceil_div(a: i64, b: i64) -> i64 {
    debug_assert!(a >= 0 && b > 0);
    a / b + i64::from(a % b != 0)
}

fn ceil_div_i128(a: i128, b: i128) -> i128 {
    debug_assert!(a >= 0 && b > 0);
    a / b + i128::from(a % b != 0)
}

/// Sizes one hop to deliver at least `net_atoms` (after the fee) of what `step` receives.
pub fn size_hop(
    spec: &MarketSpec,
    step: Step,
    book: &dyn Offers,
    net_atoms: i64,
) -> Result<SizedHop, Shortfall> {
    debug_assert_eq!(spec.id, step.market, "a hop is sized on its own market");
    let gross_atoms = gross_for_net(spec, net_atoms).ok_or(Shortfall::TooLarge)?;
    let walked = match step.side {
        Side::Buy => walk_buy(spec, book, gross_atoms)?,
        Side::Sell => walk_sell(spec, book, gross_atoms)?,
    };
    let (lots, limit_ticks, quote_atoms) = walked.ok_or(Shortfall::Depth {
        market: step.market,
    })?;
    let base_atoms = spec.base_atoms(lots).ok_or(Shortfall::TooLarge)?;
    let (pays_atoms, holds_atoms, gets_atoms) = match step.side {
        Side::Buy => {
            let holds = spec
                .notional_atoms(limit_ticks, lots)
                .ok_or(Shortfall::TooLarge)?;
            (quote_atoms, holds, base_atoms)
        }
        Side::Sell => (base_atoms, base_atoms, quote_atoms),
    };
    let hop = SizedHop {
        step,
        lots,
        limit_ticks,
        pays_atoms,
        holds_atoms,
        gets_atoms,
        fee_atoms: spec.fee_atoms(gets_atoms),
    };
    debug_assert!(
        hop.net_atoms() >= net_atoms,
        "a sized hop delivers what it was sized for"
    );
    Ok(hop)
}

/// Buying at least `gross_atoms` of base: whole lots, best asks first. `(lots, worst price,
/// quote notional)`, `None` when the book is too thin.
fn walk_buy(
    spec: &MarketSpec,
    book: &dyn Offers,
    gross_atoms: i64,
) -> Result<Option<(Lots, Ticks, i64)>, Shortfall> {
    let wanted_lots = ceil_div(gross_atoms, spec.lot_size_atoms);
    let (mut lots, mut limit, mut cost) = (0, 0, Some(0_i64));
    book.offered(Side::Buy, &mut |price, quantity| {
        let take = quantity.min(wanted_lots - lots);
        cost = cost
            .zip(spec.notional_atoms(price, take))
            .and_then(|(a, b)| a.checked_add(b));
        lots += take;
        limit = price;
        lots < wanted_lots && cost.is_some()
    });
    let cost = cost.ok_or(Shortfall::TooLarge)?;
    Ok((lots == wanted_lots).then_some((lots, limit, cost)))
}

/// Selling base for at least `gross_atoms` of quote: the fewest lots, best bids first.
fn walk_sell(
    spec: &MarketSpec,
    book: &dyn Offers,
    gross_atoms: i64,
) -> Result<Option<(Lots, Ticks, i64)>, Shortfall> {
    let (mut lots, mut limit, mut proceeds, mut overflow) = (0, 0, 0_i64, false);
    book.offered(Side::Sell, &mut |price, quantity| {
        let Some(per_lot) = spec.notional_atoms(price, 1) else {
            overflow = true;
            return false;
        };
        let take = quantity.min(ceil_div(gross_atoms - proceeds, per_lot));
        match spec
            .notional_atoms(price, take)
            .and_then(|atoms| proceeds.checked_add(atoms))
        {
            Some(total) => proceeds = total,
            None => overflow = true,
        }
        lots += take;
        limit = price;
        proceeds < gross_atoms && !overflow
    });
    if overflow {
        return Err(Shortfall::TooLarge);
    }
    Ok((proceeds >= gross_atoms).then_some((lots, limit, proceeds)))
}

/// Sizes a whole route backwards so its last hop delivers at least `net_atoms`; the first
/// hop's `holds_atoms` is what the payer must have available in the source currency.
pub fn size_route(
    hops: &[(&MarketSpec, Step, &dyn Offers)],
    net_atoms: i64,
) -> Result<Vec<SizedHop>, Shortfall> {
    let mut needed = net_atoms;
    let mut sized = Vec::with_capacity(hops.len());
    for &(spec, step, book) in hops.iter().rev() {
        let hop = size_hop(spec, step, book, needed)?;
        needed = hop.holds_atoms;
        sized.push(hop);
    }
    sized.reverse();
    Ok(sized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrip_domain::{CurrencyCode, Scale};

    struct Levels(Vec<(Ticks, Lots)>);

    impl Offers for Levels {
        fn offered(&self, _side: Side, visit: &mut dyn FnMut(Ticks, Lots) -> bool) {
            for &(price, quantity) in &self.0 {
                if !visit(price, quantity) {
                    break;
                }
            }
        }
    }

    /// Two decimals on both sides, tick 0.01, lot 1.00 (a tick-lot is one quote atom).
    fn spec(fee_bps: u32) -> MarketSpec {
        let scale = Scale::new(2).expect("scale");
        let code = |c: &str| CurrencyCode::parse(c).expect("code");
        MarketSpec::new(
            7,
            (CurrencyId::new(1), code("BREAD"), scale),
            (CurrencyId::new(2), code("ALE"), scale),
            1,
            100,
            fee_bps,
        )
        .expect("spec")
    }

    fn edge(market: MarketId, base: i64, quote: i64) -> Edge {
        Edge {
            market,
            base: CurrencyId::new(base),
            quote: CurrencyId::new(quote),
        }
    }

    #[test]
    fn routes_go_through_at_most_max_hops_without_repeating_a_currency() {
        let edges = [
            edge(1, 10, 20),
            edge(2, 20, 30),
            edge(3, 10, 30),
            edge(4, 30, 40),
        ];
        let from = CurrencyId::new(10);
        let to = CurrencyId::new(30);
        let found = routes(&edges, from, to, 2);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            vec![Step {
                market: 3,
                side: Side::Sell
            }]
        );
        assert_eq!(
            found[1],
            vec![
                Step {
                    market: 1,
                    side: Side::Sell
                },
                Step {
                    market: 2,
                    side: Side::Sell
                }
            ]
        );
        assert_eq!(routes(&edges, from, to, 1).len(), 1);
        assert!(routes(&edges, from, CurrencyId::new(99), 3).is_empty());
        // Paying with the quote of market 4 buys its base; paying with the base sells it.
        let buy = routes(&edges, CurrencyId::new(40), to, 1);
        assert_eq!(
            buy,
            vec![vec![Step {
                market: 4,
                side: Side::Buy
            }]]
        );
        let sell = routes(&edges, to, CurrencyId::new(40), 1);
        assert_eq!(
            sell,
            vec![vec![Step {
                market: 4,
                side: Side::Sell
            }]]
        );
    }

    #[test]
    fn the_gross_is_the_least_whose_fee_leaves_the_net() {
        let s = spec(25);
        for net in [1, 399, 400, 401, 9_975, 10_000, 123_456] {
            let gross = gross_for_net(&s, net).expect("fits");
            assert!(gross - s.fee_atoms(gross) >= net);
            assert!(
                gross - 1 - s.fee_atoms(gross - 1) < net,
                "{net}: {gross} is the least"
            );
        }
        assert_eq!(gross_for_net(&spec(0), 500), Some(500));
    }

    #[test]
    fn a_buy_walks_the_asks_and_holds_at_its_worst_price() {
        let s = spec(0);
        let step = Step {
            market: 7,
            side: Side::Buy,
        };
        // 3 lots at 1.00, then 5 at 1.10: 5 lots of base cost 3 x 100 + 2 x 110 atoms.
        let book = Levels(vec![(100, 3), (110, 5)]);
        let hop = size_hop(&s, step, &book, 500).expect("deep enough");
        assert_eq!((hop.lots, hop.limit_ticks), (5, 110));
        assert_eq!(hop.pays_atoms, 3 * 100 + 2 * 110);
        assert_eq!(hop.holds_atoms, 550);
        assert_eq!(hop.net_atoms(), 500);
        assert_eq!(
            size_hop(&s, step, &book, 900),
            Err(Shortfall::Depth { market: 7 })
        );
    }

    #[test]
    fn a_sell_sells_the_fewest_lots_that_raise_the_net_after_the_fee() {
        let s = spec(100);
        let step = Step {
            market: 7,
            side: Side::Sell,
        };
        let book = Levels(vec![(200, 2), (150, 100)]);
        let hop = size_hop(&s, step, &book, 1_000).expect("deep enough");
        assert_eq!((hop.lots, hop.gets_atoms), (7, 1_150));
        assert!(hop.net_atoms() >= 1_000);
        assert_eq!(hop.pays_atoms, hop.holds_atoms);
        let one_less = 400 + 4 * 150;
        assert!(one_less - s.fee_atoms(one_less) < 1_000, "no lot too many");
    }

    #[test]
    fn a_route_is_sized_backwards_each_hop_delivering_what_the_next_holds() {
        let first = spec(30);
        let mut second = spec(30);
        second.id = 8;
        let a = Levels(vec![(120, 1_000)]);
        let b = Levels(vec![(95, 4), (101, 1_000)]);
        let route = [
            (
                &first,
                Step {
                    market: 7,
                    side: Side::Sell,
                },
                &a as &dyn Offers,
            ),
            (
                &second,
                Step {
                    market: 8,
                    side: Side::Buy,
                },
                &b as &dyn Offers,
            ),
        ];
        let sized = size_route(&route, 250).expect("deep enough");
        assert_eq!(sized.len(), 2);
        assert!(sized[1].net_atoms() >= 250);
        assert!(sized[0].net_atoms() >= sized[1].holds_atoms);
    }
}
