use scrip_domain::{Amount, Par};

/// The registry's policy for issuers: the largest credit limit a currency may have, in units of
/// account (`credit_limit x par`), so a currency cannot sidestep it with a tiny par.
#[derive(Debug, Clone, Copy)]
pub struct IssuerPolicy {
    pub max_credit_limit_units: i64,
}

impl Default for IssuerPolicy {
    fn default() -> Self {
        Self {
            max_credit_limit_units: 1_000_000,
        }
    }
}

impl IssuerPolicy {
    /// Exact check in integers: `limit_atoms / 10^scale * par_e8 / 10^8 <= max`.
    pub fn allows(&self, credit_limit: Amount, par: Par) -> bool {
        let value = i128::from(credit_limit.atoms()) * i128::from(par.numerator_e8());
        let max = i128::from(self.max_credit_limit_units)
            * i128::from(credit_limit.scale().atoms_per_unit())
            * 100_000_000;
        value <= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrip_domain::Scale;

    #[test]
    fn the_maximum_is_in_units_of_account() {
        let policy = IssuerPolicy {
            max_credit_limit_units: 1_000,
        };
        let scale = Scale::new(2).expect("scale");
        let one = Par::one();
        assert!(policy.allows(Amount::from_atoms(100_000, scale), one));
        assert!(!policy.allows(Amount::from_atoms(100_001, scale), one));
        let half = Par::parse("0.5").expect("par");
        assert!(policy.allows(Amount::from_atoms(200_000, scale), half));
        assert!(!policy.allows(Amount::from_atoms(200_001, scale), half));
    }
}
