//! Properties of the approvals core: a proposal is approved exactly when enough distinct
//! current owners approved it, whatever else was sent, and a rejection is final only when
//! it can no longer pass.

use std::collections::BTreeSet;

use proptest::prelude::*;
use scrip_domain::PrincipalId;
use scrip_governance::rule::{Tally, tally};

proptest! {
    #[test]
    fn approved_exactly_with_enough_distinct_owner_approvals(
        owners in proptest::collection::btree_set(1_i64..10, 1..6),
        votes in proptest::collection::vec((1_i64..14, any::<bool>()), 0..20),
        required in 1_u32..6,
    ) {
        let owners: BTreeSet<PrincipalId> = owners.into_iter().map(PrincipalId::new).collect();
        let votes: Vec<(PrincipalId, bool)> =
            votes.into_iter().map(|(id, yes)| (PrincipalId::new(id), yes)).collect();
        let approving: BTreeSet<PrincipalId> = votes
            .iter()
            .filter(|(who, yes)| *yes && owners.contains(who))
            .map(|(who, _)| *who)
            .collect();
        let rejecting: BTreeSet<PrincipalId> = votes
            .iter()
            .filter(|(who, yes)| !*yes && owners.contains(who))
            .map(|(who, _)| *who)
            .collect();
        let outcome = tally(required, &owners, &votes);
        let enough = approving.len() as u32 >= required;
        prop_assert_eq!(outcome == Tally::Approved, enough);
        if let Tally::Open { missing } = outcome {
            prop_assert_eq!(missing, required - approving.len() as u32);
            prop_assert!((owners.len() - rejecting.len()) as u32 >= required);
        }
        if outcome == Tally::Rejected {
            prop_assert!(((owners.len() - rejecting.len()) as u32) < required);
        }
    }
}
