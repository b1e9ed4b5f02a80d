//! The member directory of a currency that requires admission, as a SHA-256 Merkle tree
//! anyone can check: the registry publishes the root; a member's inclusion proof is the path
//! from its leaf to the root.
//!
//! Encoding (RFC 6962's Merkle tree hash, with its domain separation):
//! - a leaf is `SHA-256(0x00 || "scrip-directory-v1" || 0x00 || CODE || 0x00 || ADDRESS)`, where
//!   `CODE` is the currency code and `ADDRESS` the member's `handle@registry`, both UTF-8;
//! - leaves are ordered by `ADDRESS` (bytewise); a node is `SHA-256(0x01 || left || right)`;
//! - a tree of `n > 1` leaves is the node of its first `k` leaves and its last `n - k`, `k` the
//!   largest power of two below `n`; one leaf is its own hash; no leaf: `SHA-256("")`;
//! - a proof lists, from the leaf up, each sibling's hash and whether it is on the `left` or the
//!   `right`; checking it folds the leaf with each sibling and compares with the root.
//!
//! Hashes are written as lowercase hex.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;
const CONTEXT: &[u8] = b"scrip-directory-v1";

/// The leaf of `address` (a member's `handle@registry`) in `currency`'s directory.
pub fn leaf_hash(currency: &str, address: &str) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF]);
    hasher.update(CONTEXT);
    hasher.update([0]);
    hasher.update(currency.as_bytes());
    hasher.update([0]);
    hasher.update(address.as_bytes());
    hasher.finalize().into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root over `leaves` (in directory order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [only] => *only,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Which side of the running hash a sibling is on: the same tree shape as the liabilities'.
pub use scrip_proofs::sumtree::Side;
use scrip_proofs::sumtree::split;

/// The path from leaf `index` to the root, leaf first; `None` when there is no such leaf.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<(Side, Hash)>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    collect(leaves, index, &mut path);
    Some(path)
}

fn collect(leaves: &[Hash], index: usize, path: &mut Vec<(Side, Hash)>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if index < k {
        collect(&leaves[..k], index, path);
        path.push((Side::Right, root(&leaves[k..])));
    } else {
        collect(&leaves[k..], index - k, path);
        path.push((Side::Left, root(&leaves[..k])));
    }
}

/// Whether `path` leads from `leaf` to `root`.
pub fn verify(leaf: &Hash, path: &[(Side, Hash)], expected_root: &Hash) -> bool {
    let folded = path
        .iter()
        .fold(*leaf, |running, (side, sibling)| match side {
            Side::Left => node_hash(sibling, &running),
            Side::Right => node_hash(&running, sibling),
        });
    &folded == expected_root
}

/// A hash from its hex form.
pub fn parse_hash(raw: &str) -> Option<Hash> {
    let bytes = hex::decode(raw.trim()).ok()?;
    bytes.try_into().ok()
}

/// Checks a proof as the API writes it (hex hashes, `left`/`right` sides): whether `address`
/// is a member of `currency` under `root_hex`. `Err` says what is malformed.
pub fn check(
    (currency, address): (&str, &str),
    path: &[(&str, &str)],
    root_hex: &str,
) -> Result<bool, String> {
    let root = parse_hash(root_hex).ok_or("the root is not 64 hex digits")?;
    let mut steps = Vec::with_capacity(path.len());
    for (i, (side, hash)) in path.iter().enumerate() {
        let side = Side::parse(side).ok_or(format!("step {i}: side is left or right"))?;
        let hash = parse_hash(hash).ok_or(format!("step {i}: the hash is not 64 hex digits"))?;
        steps.push((side, hash));
    }
    Ok(verify(&leaf_hash(currency, address), &steps, &root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash("BREAD", &format!("member{i:03}@local")))
            .collect()
    }

    #[test]
    fn every_members_proof_checks_and_a_forged_one_does_not() {
        for n in 1..=17 {
            let all = leaves(n);
            let top = root(&all);
            for (i, leaf) in all.iter().enumerate() {
                let path = proof(&all, i).expect("proof");
                assert!(verify(leaf, &path, &top), "n={n} i={i}");
                let stranger = leaf_hash("BREAD", "mallory@local");
                assert!(!verify(&stranger, &path, &top), "n={n} i={i}");
                if let Some((side, hash)) = path.first().copied() {
                    let mut forged = path.clone();
                    let mut flipped = hash;
                    flipped[0] ^= 1;
                    forged[0] = (side, flipped);
                    assert!(!verify(leaf, &forged, &top), "n={n} i={i}");
                }
            }
        }
    }

    #[test]
    fn leaves_are_bound_to_their_currency_and_nodes_cannot_pass_for_leaves() {
        assert_ne!(
            leaf_hash("BREAD", "carl@local"),
            leaf_hash("ALE", "carl@local")
        );
        // A node is hashed with another prefix than a leaf: the two can never be confused.
        let all = leaves(2);
        assert_eq!(root(&all), node_hash(&all[0], &all[1]));
        let as_leaf: Hash = Sha256::digest([[LEAF].as_slice(), &all[0], &all[1]].concat()).into();
        assert_ne!(root(&all), as_leaf);
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
