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

/// An accepted obligation with something left to pay, in atoms of the unit (8 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenObligation {
    pub id: i64,
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub remaining_atoms: i64,
}

/// A holder's standing swap intent: it gives up to `available_atoms` of `give` (what is left
/// of the intent, and no more than it holds) for `want`, at par.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    pub id: i64,
    pub holder: PrincipalId,
    pub give: (CurrencyId, Scale, Par),
    pub want: (CurrencyId, Scale, Par),
    pub available_atoms: i64,
}

/// An intent as the solver sees it: an edge from the currency given to the currency wanted,
/// carrying up to `granules` of value. Conservation at a currency's node is what a ring
/// trade needs: as much of it is given as is received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentEdge {
    pub id: i64,
    pub holder: PrincipalId,
    pub give: CurrencyId,
    pub want: CurrencyId,
    pub granules: u64,
    pub give_atoms_per_granule: i64,
    pub want_atoms_per_granule: i64,
    pub give_scale: Scale,
    pub want_scale: Scale,
}

/// What an edge is made of, and how a granule of it converts back to whole atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The creditor holds the debtor's currency.
    Holding {
        currency: CurrencyId,
        scale: Scale,
        atoms_per_granule: i64,
    },
    /// An accepted obligation; atoms of the unit at 8 decimals.
    Obligation { id: i64, atoms_per_granule: i64 },
}

impl Source {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Holding { .. } => "holding",
            Self::Obligation { .. } => "obligation",
        }
    }

    pub fn atoms_per_granule(&self) -> i64 {
        match *self {
            Self::Holding {
                atoms_per_granule, ..
            }
            | Self::Obligation {
                atoms_per_granule, ..
            } => atoms_per_granule,
        }
    }
}

/// One edge of the graph: `debtor` owes `creditor` `granules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub granules: u64,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Value of one granule, in 10^-16 units.
    pub granule_value: u128,
    pub edges: Vec<Edge>,
    /// Holders' swap intents, solved in the same circulation as the debts; after the edges
    /// in the solver's input.
    pub intents: Vec<IntentEdge>,
    /// The intents' own granule, in 10^-16 units (see [`build_with_intents`]).
    pub intent_granule_value: u128,
}

/// The value of one atom of a currency of `scale` at `par`, in 10^-16 of the unit.
pub fn atom_value(scale: Scale, par: Par) -> u128 {
    u128::from(par.numerator_e8().unsigned_abs()) * 10_u128.pow(8 - u32::from(scale.decimals()))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Value of one atom of an obligation's unit (8 decimals), in 10^-16 units.
const OBLIGATION_ATOM_VALUE: u128 = 100_000_000;

/// The coarsest granule a run accepts: 100 units of account. A currency whose atom value would
/// push the granule past it (an odd par such as `1.00000001`) is left out of the run rather than
/// allowed to make every other debt too small to clear.
pub const MAX_GRANULE_VALUE: u128 = 100 * 10_u128.pow(VALUE_DECIMALS);

fn lcm(a: u128, b: u128) -> Option<u128> {
    (a / gcd(a, b)).checked_mul(b)
}

/// Atom values that divide this are decimal (par and scale of at most 8 decimals each): any
/// set of them has an lcm no larger than it, so they always clear together.
const DECIMAL_VALUES: u128 = 10_u128.pow(VALUE_DECIMALS);

/// The granule: the lcm of the atom values. Decimal atom values come first (all of them fit
/// together), then the others greedily from the value held most to the least, skipping any
/// that would exceed [`MAX_GRANULE_VALUE`]. So one odd currency, however much of it is held,
/// can never push the ordinary ones out of a run. Returns the granule and the atom values
/// that were left out.
fn granule(values: &[(u128, u128)]) -> (u128, Vec<u128>) {
    let mut by_weight = values.to_vec();
    let decimal = |value: u128| DECIMAL_VALUES.is_multiple_of(value);
    by_weight.sort_unstable_by(|a, b| {
        decimal(b.0)
            .cmp(&decimal(a.0))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    let mut granule_value: u128 = 1;
    let mut excluded = Vec::new();
    for (atom_value, _) in by_weight {
        match lcm(granule_value, atom_value) {
            Some(next) if next <= MAX_GRANULE_VALUE => granule_value = next,
            _ => excluded.push(atom_value),
        }
    }
    (granule_value, excluded)
}

/// Builds the graph from holdings and obligations (already filtered to participating
/// businesses and to one unit of account).
pub fn build(holdings: &[Holding], obligations: &[OpenObligation]) -> Graph {
    build_with_intents(holdings, obligations, &[])
}

/// [`build`] with holders' swap intents (both currencies in the same unit).
pub fn build_with_intents(
    holdings: &[Holding],
    obligations: &[OpenObligation],
    intents: &[Intent],
) -> Graph {
    let holdings: Vec<&Holding> = holdings
        .iter()
        .filter(|h| h.available_atoms > 0 && h.holder != h.issuer)
        .collect();
    let obligations: Vec<&OpenObligation> = obligations
        .iter()
        .filter(|o| o.remaining_atoms > 0 && o.debtor != o.creditor)
        .collect();
    // (atom value, total value held in it), one entry per distinct atom value.
    let mut weights: std::collections::BTreeMap<u128, u128> = std::collections::BTreeMap::new();
    for h in &holdings {
        let value = atom_value(h.scale, h.par);
        let held = value.saturating_mul(u128::try_from(h.available_atoms).unwrap_or(0));
        let entry = weights.entry(value).or_default();
        *entry = entry.saturating_add(held);
    }
    for o in &obligations {
        let held =
            OBLIGATION_ATOM_VALUE.saturating_mul(u128::try_from(o.remaining_atoms).unwrap_or(0));
        let entry = weights.entry(OBLIGATION_ATOM_VALUE).or_default();
        *entry = entry.saturating_add(held);
    }
    // The intents count in a granule of their own: they share no node with the businesses'
    // debts (currencies are their nodes), so the solver never mixes the two, and an odd
    // currency wanted in a swap can never coarsen the granule every debt is counted in.
    let intents: Vec<&Intent> = intents.iter().filter(|i| i.available_atoms > 0).collect();
    let mut intent_weights: std::collections::BTreeMap<u128, u128> =
        std::collections::BTreeMap::new();
    for i in &intents {
        let give = atom_value(i.give.1, i.give.2);
        let held = give.saturating_mul(u128::try_from(i.available_atoms).unwrap_or(0));
        let entry = intent_weights.entry(give).or_default();
        *entry = entry.saturating_add(held);
        intent_weights
            .entry(atom_value(i.want.1, i.want.2))
            .or_default();
    }
    let (intent_granule, intent_excluded) =
        granule(&intent_weights.into_iter().collect::<Vec<_>>());
    let per_intent_granule = |atom_value: u128| {
        (!intent_excluded.contains(&atom_value) && intent_granule % atom_value == 0)
            .then(|| i64::try_from(intent_granule / atom_value).ok())
            .flatten()
    };
    let (granule_value, excluded) = granule(&weights.into_iter().collect::<Vec<_>>());
    // Only atom values that divide the granule convert exactly; the others sit this run out.
    let per_granule = |atom_value: u128| {
        (!excluded.contains(&atom_value) && granule_value % atom_value == 0)
            .then(|| i64::try_from(granule_value / atom_value).ok())
            .flatten()
    };
    let from_holdings = holdings.into_iter().filter_map(|h| {
        let atoms_per_granule = per_granule(atom_value(h.scale, h.par))?;
        let granules = u64::try_from(h.available_atoms / atoms_per_granule).ok()?;
        (granules > 0).then_some(Edge {
            debtor: h.issuer,
            creditor: h.holder,
            granules,
            source: Source::Holding {
                currency: h.currency,
                scale: h.scale,
                atoms_per_granule,
            },
        })
    });
    let from_obligations = obligations.into_iter().filter_map(|o| {
        let atoms_per_granule = per_granule(OBLIGATION_ATOM_VALUE)?;
        let granules = u64::try_from(o.remaining_atoms / atoms_per_granule).ok()?;
        (granules > 0).then_some(Edge {
            debtor: o.debtor,
            creditor: o.creditor,
            granules,
            source: Source::Obligation {
                id: o.id,
                atoms_per_granule,
            },
        })
    });
    let edges = from_holdings.chain(from_obligations).collect();
    let intents = intents
        .into_iter()
        .filter_map(|i| {
            let give_atoms_per_granule = per_intent_granule(atom_value(i.give.1, i.give.2))?;
            let want_atoms_per_granule = per_intent_granule(atom_value(i.want.1, i.want.2))?;
            let granules = u64::try_from(i.available_atoms / give_atoms_per_granule).ok()?;
            (granules > 0).then_some(IntentEdge {
                id: i.id,
                holder: i.holder,
                give: i.give.0,
                want: i.want.0,
                granules,
                give_atoms_per_granule,
                want_atoms_per_granule,
                give_scale: i.give.1,
                want_scale: i.want.1,
            })
        })
        .collect();
    Graph {
        granule_value,
        edges,
        intents,
        intent_granule_value: intent_granule,
    }
}

impl Graph {
    /// Dense party numbering and the solver's view: the debts' edges first, in order, then
    /// the intents' (between currency nodes numbered after every business).
    pub fn to_obligations(&self) -> (Vec<PrincipalId>, Vec<Obligation>) {
        let mut index: HashMap<PrincipalId, u32> = HashMap::new();
        let mut parties = Vec::new();
        let mut id = |p: PrincipalId| {
            *index.entry(p).or_insert_with(|| {
                parties.push(p);
                u32::try_from(parties.len() - 1).unwrap_or(u32::MAX)
            })
        };
        let mut obligations: Vec<Obligation> = self
            .edges
            .iter()
            .map(|e| Obligation {
                debtor: id(e.debtor),
                creditor: id(e.creditor),
                amount: e.granules,
            })
            .collect();
        let businesses = parties.len();
        let mut currency_nodes: HashMap<CurrencyId, u32> = HashMap::new();
        let mut node = |c: CurrencyId| {
            let next = u32::try_from(businesses + currency_nodes.len()).unwrap_or(u32::MAX);
            *currency_nodes.entry(c).or_insert(next)
        };
        for i in &self.intents {
            obligations.push(Obligation {
                debtor: node(i.give),
                creditor: node(i.want),
                amount: i.granules,
            });
        }
        // A currency node stands in the party list as no one: it never owes or is owed
        // money, only routes value between the intents that give and want its currency.
        let mut nodes: Vec<(u32, CurrencyId)> =
            currency_nodes.into_iter().map(|(c, n)| (n, c)).collect();
        nodes.sort_unstable();
        parties.extend(nodes.into_iter().map(|_| PrincipalId::new(0)));
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
        let g = build(
            &[holding(1, 2, 1_050, 2, "1"), holding(2, 1, 7, 0, "1")],
            &[],
        );
        assert_eq!(g.value(1), "1");
        assert_eq!(
            g.edges[0].granules, 10,
            "10.50 -> 10 whole units, 0.50 stays"
        );
        assert_eq!(g.edges[0].source.atoms_per_granule(), 100);
        assert_eq!(g.edges[1].granules, 7);
    }

    #[test]
    fn par_changes_the_value() {
        let g = build(&[holding(1, 2, 400, 2, "0.5")], &[]);
        assert_eq!(g.value(u128::from(g.edges[0].granules)), "2");
        assert_eq!(format_value(12_500_000_000_000_000), "1.25");
    }

    #[test]
    fn nothing_to_clear_from_empty_or_own_holdings() {
        assert!(
            build(&[holding(1, 1, 100, 2, "1"), holding(1, 2, 0, 2, "1")], &[])
                .edges
                .is_empty()
        );
    }

    /// Two ordinary cent holdings and one of an odd par (`1.00000001`), held `odd_atoms` at
    /// `odd_scale`.
    fn with_an_odd_par(odd_atoms: i64, odd_scale: i64) -> Graph {
        let odd = Holding {
            par: Par::parse("1.00000001").expect("par"),
            ..holding(3, 1, odd_atoms, odd_scale, "1")
        };
        build(
            &[
                holding(1, 2, 5_000, 2, "1"),
                holding(2, 1, 7_000, 2, "1"),
                odd,
            ],
            &[],
        )
    }

    #[test]
    fn an_odd_par_sits_out_instead_of_coarsening_everything() {
        let g = with_an_odd_par(1, 2);
        assert_eq!(g.value(1), "0.01", "the cent granule survives");
        assert_eq!(g.edges.len(), 2, "the odd currency is left out");
    }

    #[test]
    fn an_odd_par_held_most_still_cannot_switch_clearing_off() {
        // The odd currency is held far more than the ordinary ones: it still sits out.
        let g = with_an_odd_par(900_000_000_000, 8);
        assert_eq!(g.value(1), "0.01", "the cent granule survives");
        assert_eq!(g.edges.len(), 2, "the odd currency is left out");
    }

    #[test]
    fn obligations_count_in_the_same_granules() {
        let owes = OpenObligation {
            id: 9,
            debtor: PrincipalId::new(2),
            creditor: PrincipalId::new(1),
            remaining_atoms: 4_000_000_000, // 40 units
        };
        let g = build(&[holding(2, 1, 5_000, 2, "1")], &[owes]);
        assert_eq!(g.value(1), "0.01", "a cent is the coarsest atom");
        assert_eq!(g.edges[1].granules, 4_000);
        assert_eq!(
            g.edges[1].source,
            Source::Obligation {
                id: 9,
                atoms_per_granule: 1_000_000
            }
        );
    }
}
