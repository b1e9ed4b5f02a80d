//! Property tests of the Merkle-sum tree: for any set of balances, every holder's proof
//! reaches the root and the root's sum is the total; a changed balance, a changed sibling
//! (hash or sum) or a proof for another holder's leaf never does.

use proptest::prelude::*;
use scrip_proofs::sumtree::{self, Leaf, Node};

fn leaves(balances: &[u64]) -> Vec<Node> {
    let mut leaves: Vec<Node> = balances
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let salt = [u8::try_from(i % 256).unwrap_or(0); 32];
            let address = format!("holder{i}@gm");
            Leaf {
                currency: "BREAD",
                salt: &salt,
                address: &address,
                balance_atoms: u128::from(b),
            }
            .node()
        })
        .collect();
    sumtree::order(&mut leaves);
    leaves
}

proptest! {
    #[test]
    fn every_proof_verifies_and_tampering_fails(
        balances in proptest::collection::vec(1_u64..1_000_000_000, 1..60),
        pick in any::<prop::sample::Index>(),
        bump in 1_u128..1_000,
    ) {
        let leaves = leaves(&balances);
        let root = sumtree::root(&leaves).expect("fits");
        prop_assert_eq!(root.sum, balances.iter().map(|&b| u128::from(b)).sum::<u128>());
        let tree = sumtree::Tree::new(&leaves).expect("fits");
        prop_assert_eq!(tree.root(), root);
        for (i, leaf) in leaves.iter().enumerate() {
            let path = sumtree::proof(&leaves, i).expect("a leaf");
            prop_assert!(sumtree::verify(leaf, &path, &root));
            prop_assert_eq!(tree.proof(i), Some(path));
        }
        let i = pick.index(leaves.len());
        let path = sumtree::proof(&leaves, i).expect("a leaf");
        let mut shrunk = leaves[i];
        shrunk.sum = shrunk.sum.saturating_sub(bump);
        prop_assert!(!sumtree::verify(&shrunk, &path, &root), "a changed balance");
        if !path.is_empty() {
            let mut wrong = path.clone();
            wrong[0].1.sum += bump;
            prop_assert!(!sumtree::verify(&leaves[i], &wrong, &root), "a changed sibling sum");
            let mut wrong = path.clone();
            wrong[0].1.hash[0] ^= 1;
            prop_assert!(!sumtree::verify(&leaves[i], &wrong, &root), "a changed sibling hash");
            let other = (i + 1) % leaves.len();
            prop_assert!(!sumtree::verify(&leaves[other], &path, &root), "another leaf");
        }
    }
}
