//! The debt graph among businesses, valued exactly in one unit of account. Pure: no I/O.
//!
//! An edge `I -> H` is "I owes H": business H holds an available balance of a currency
//! issued by business I. Values must convert back to whole atoms of every currency, so the
//! graph counts in *granules*: the least common multiple of the value of one atom of each
//! currency involved. Every flow in granules is then an exact number of atoms of each currency
//! (a remainder smaller than one granule stays uncleared).

use std::collections::HashMap;

use scrip_domain::{CurrencyId, Par, PrincipalId, Scale};
use scrip_netting::Obligation;

/// Values are counted in units of 10^-16 of the unit of account: one atom of a currency with
/// scale `s` and par `p` is worth `p x 10^8 x 10^(8 - s)` of them, always a whole number.
pub const VALUE_DECIMALS: u32 = 16;

/// A business's available balance of a currency issued by another business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub holder: PrincipalId,
    pub issuer: PrincipalId,
    pub currency: CurrencyId,
    pub available_atoms: i64,
    pub scale: Scale,
    pub par: Par,
}

/// One edge of the graph: `debtor` owes `creditor` `granules` through a holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub currency: CurrencyId,
    pub granules: u64,
    /// Atoms of the currency in one granule.
    pub atoms_per_granule: i64,
    pub scale: Scale,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Value of one granule, in 10^-16 units.
    pub granule_value: u128,
    pub edges: Vec<Edge>,
}

fn atom_value(scale: Scale, par: Par) -> u128 {
    u128::from(par.numerator_e8().unsigned_abs()) * 10_u128.pow(8 - u32::from(scale.decimals()))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Builds the graph from holdings (already filtered to participating businesses).
pub fn build(holdings: &[Holding]) -> Graph {
    let positive: Vec<&Holding> = holdings
        .iter()
        .filter(|h| h.available_atoms > 0 && h.holder != h.issuer)
        .collect();
    let mut granule_value: u128 = 1;
    for h in &positive {
        let value = atom_value(h.scale, h.par);
        // lcm, saturating: an absurd mix of pars only makes the granule coarser.
        granule_value = (granule_value / gcd(granule_value, value)).saturating_mul(value);
    }
    let edges = positive
        .into_iter()
        .filter_map(|h| {
            let atoms_per_granule =
                i64::try_from(granule_value / atom_value(h.scale, h.par)).ok()?;
            let granules = u64::try_from(h.available_atoms / atoms_per_granule).ok()?;
            (granules > 0).then_some(Edge {
                debtor: h.issuer,
                creditor: h.holder,
                currency: h.currency,
                granules,
                atoms_per_granule,
                scale: h.scale,
            })
        })
        .collect();
    Graph {
        granule_value,
        edges,
    }
}

impl Graph {
    /// Dense party numbering and the solver's view of the edges.
    pub fn to_obligations(&self) -> (Vec<PrincipalId>, Vec<Obligation>) {
        let mut index: HashMap<PrincipalId, u32> = HashMap::new();
        let mut parties = Vec::new();
        let mut id = |p: PrincipalId| {
            *index.entry(p).or_insert_with(|| {
                parties.push(p);
                u32::try_from(parties.len() - 1).unwrap_or(u32::MAX)
            })
        };
        let obligations = self
            .edges
            .iter()
            .map(|e| Obligation {
                debtor: id(e.debtor),
                creditor: id(e.creditor),
                amount: e.granules,
            })
            .collect();
        (parties, obligations)
    }

    /// The exact value of `granules`, as a decimal string in the unit of account.
    pub fn value(&self, granules: u128) -> String {
        format_value(granules.saturating_mul(self.granule_value))
    }
}

/// `value` in 10^-16 units as the shortest exact decimal string.
pub fn format_value(value: u128) -> String {
    let scale = 10_u128.pow(VALUE_DECIMALS);
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:016}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(holder: i64, issuer: i64, atoms: i64, scale: i64, par: &str) -> Holding {
        Holding {
            holder: PrincipalId::new(holder),
            issuer: PrincipalId::new(issuer),
            currency: CurrencyId::new(issuer),
            available_atoms: atoms,
            scale: Scale::new(scale).expect("scale"),
            par: Par::parse(par).expect("par"),
        }
    }

    #[test]
    fn mixed_scales_count_in_the_coarsest_atom() {
        // A cent (scale 2) and a whole token (scale 0), both at par 1: one granule is 1 unit.
        let g = build(&[holding(1, 2, 1_050, 2, "1"), holding(2, 1, 7, 0, "1")]);
        assert_eq!(g.value(1), "1");
        assert_eq!(
            g.edges[0].granules, 10,
            "10.50 -> 10 whole units, 0.50 stays"
        );
        assert_eq!(g.edges[0].atoms_per_granule, 100);
        assert_eq!(g.edges[1].granules, 7);
    }

    #[test]
    fn par_changes_the_value() {
        let g = build(&[holding(1, 2, 400, 2, "0.5")]);
        assert_eq!(g.value(u128::from(g.edges[0].granules)), "2");
        assert_eq!(format_value(12_500_000_000_000_000), "1.25");
    }

    #[test]
    fn nothing_to_clear_from_empty_or_own_holdings() {
        assert!(
            build(&[holding(1, 1, 100, 2, "1"), holding(1, 2, 0, 2, "1")])
                .edges
                .is_empty()
        );
    }
}
