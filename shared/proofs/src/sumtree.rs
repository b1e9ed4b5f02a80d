//! A SHA-256 Merkle-sum tree: every node commits to its children's hashes and to the sum of
//! their balances, so the root's sum is the total and no holder's balance can be left out or
//! shrunk without changing the root. Pure: no I/O.
//!
//! Encoding (version 1), all integers unsigned big-endian, text UTF-8:
//! - a leaf is `SHA-256(0x00 || "scrip-liabilities-v1" || 0x00 || CODE || 0x00 || SALT ||
//!   ADDRESS || 0x00 || BALANCE)`, where `CODE` is the currency code, `SALT` the holder's 32
//!   secret bytes (given only to it), `ADDRESS` its `handle@registry`, and `BALANCE` its
//!   balance in atoms as 16 bytes; the leaf's sum is that balance;
//! - a node is `SHA-256(0x01 || LEFT || LEFT_SUM || RIGHT || RIGHT_SUM)` with each sum as 16
//!   bytes; its sum is `LEFT_SUM + RIGHT_SUM`;
//! - leaves are ordered by their hash (bytewise), which says nothing about who holds what; a
//!   tree of `n > 1` leaves is the node of its first `k` leaves and its last `n - k`, `k` the
//!   largest power of two below `n` (RFC 6962's shape); one leaf is its own root; no leaf:
//!   `SHA-256("")` with sum 0;
//! - a proof lists, from the leaf up, each sibling's hash, sum and side (`left`/`right`);
//!   checking it folds the leaf with each sibling and compares hash and sum with the root.
//!
//! Sums are unsigned: a node can never carry a negative sum that would hide a balance (the
//! flaw of a plain Merkle-sum tree that allows them).

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;
const CONTEXT: &[u8] = b"scrip-liabilities-v1";

/// A hash with the sum of the balances under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub hash: Hash,
    pub sum: u128,
}

/// What a leaf commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf<'a> {
    pub currency: &'a str,
    pub salt: &'a [u8; 32],
    pub address: &'a str,
    pub balance_atoms: u128,
}

impl Leaf<'_> {
    pub fn node(&self) -> Node {
        let mut hasher = Sha256::new();
        hasher.update([LEAF]);
        hasher.update(CONTEXT);
        hasher.update([0]);
        hasher.update(self.currency.as_bytes());
        hasher.update([0]);
        hasher.update(self.salt);
        hasher.update(self.address.as_bytes());
        hasher.update([0]);
        hasher.update(self.balance_atoms.to_be_bytes());
        Node {
            hash: hasher.finalize().into(),
            sum: self.balance_atoms,
        }
    }
}

/// The parent of two nodes; `None` when the sums overflow (they cannot for balances that fit
/// an `i64`, but a forged proof may try).
pub fn parent(left: &Node, right: &Node) -> Option<Node> {
    let sum = left.sum.checked_add(right.sum)?;
    let mut hasher = Sha256::new();
    hasher.update([NODE]);
    hasher.update(left.hash);
    hasher.update(left.sum.to_be_bytes());
    hasher.update(right.hash);
    hasher.update(right.sum.to_be_bytes());
    Some(Node {
        hash: hasher.finalize().into(),
        sum,
    })
}

/// The empty tree's root.
pub fn empty() -> Node {
    Node {
        hash: Sha256::digest([]).into(),
        sum: 0,
    }
}

/// The largest power of two below `n` (`n >= 2`): where RFC 6962 splits a tree of `n`.
pub fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over `leaves` (already in tree order: sorted by hash). `None` if sums overflow.
pub fn root(leaves: &[Node]) -> Option<Node> {
    match leaves {
        [] => Some(empty()),
        [only] => Some(*only),
        _ => {
            let k = split(leaves.len());
            parent(&root(&leaves[..k])?, &root(&leaves[k..])?)
        }
    }
}

/// Which side of the running node a sibling is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Right => "right",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "left" => Some(Self::Left),
            "right" => Some(Self::Right),
            _ => None,
        }
    }
}

/// The path from leaf `index` to the root, leaf first; `None` when there is no such leaf.
pub fn proof(leaves: &[Node], index: usize) -> Option<Vec<(Side, Node)>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    collect(leaves, index, &mut path)?;
    Some(path)
}

fn collect(leaves: &[Node], index: usize, path: &mut Vec<(Side, Node)>) -> Option<()> {
    if leaves.len() <= 1 {
        return Some(());
    }
    let k = split(leaves.len());
    if index < k {
        collect(&leaves[..k], index, path)?;
        path.push((Side::Right, root(&leaves[k..])?));
    } else {
        collect(&leaves[k..], index - k, path)?;
        path.push((Side::Left, root(&leaves[..k])?));
    }
    Some(())
}

/// Whether `path` leads from `leaf` to `expected` (hash and sum).
pub fn verify(leaf: &Node, path: &[(Side, Node)], expected: &Node) -> bool {
    let mut running = *leaf;
    for (side, sibling) in path {
        let next = match side {
            Side::Left => parent(sibling, &running),
            Side::Right => parent(&running, sibling),
        };
        match next {
            Some(node) => running = node,
            None => return false,
        }
    }
    running == *expected
}

/// A tree built once with every inner node kept, so each proof is a walk of `log n` lookups
/// instead of hashing the whole tree again.
#[derive(Debug, Clone)]
pub struct Tree {
    leaves: usize,
    /// The node over leaves `start..start + len`, for every node of the tree.
    nodes: std::collections::HashMap<(usize, usize), Node>,
}

impl Tree {
    /// `None` when the sums overflow.
    pub fn new(leaves: &[Node]) -> Option<Self> {
        let mut nodes = std::collections::HashMap::with_capacity(leaves.len() * 2);
        fn fill(
            leaves: &[Node],
            start: usize,
            nodes: &mut std::collections::HashMap<(usize, usize), Node>,
        ) -> Option<Node> {
            let node = match leaves {
                [] => empty(),
                [only] => *only,
                _ => {
                    let k = split(leaves.len());
                    let left = fill(&leaves[..k], start, nodes)?;
                    let right = fill(&leaves[k..], start + k, nodes)?;
                    parent(&left, &right)?
                }
            };
            nodes.insert((start, leaves.len()), node);
            Some(node)
        }
        fill(leaves, 0, &mut nodes)?;
        Some(Self {
            leaves: leaves.len(),
            nodes,
        })
    }

    pub fn root(&self) -> Node {
        self.nodes
            .get(&(0, self.leaves))
            .copied()
            .unwrap_or_else(empty)
    }

    /// The path from leaf `index` up, as [`proof`] gives it.
    pub fn proof(&self, index: usize) -> Option<Vec<(Side, Node)>> {
        if index >= self.leaves {
            return None;
        }
        let mut path = Vec::new();
        let (mut start, mut len) = (0, self.leaves);
        while len > 1 {
            let k = split(len);
            if index < start + k {
                path.push((Side::Right, *self.nodes.get(&(start + k, len - k))?));
                len = k;
            } else {
                path.push((Side::Left, *self.nodes.get(&(start, k))?));
                start += k;
                len -= k;
            }
        }
        path.reverse();
        Some(path)
    }
}

/// Sorts leaves into tree order.
pub fn order(leaves: &mut [Node]) {
    leaves.sort_unstable_by_key(|leaf| leaf.hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8, balance: u128) -> Node {
        Leaf {
            currency: "BREAD",
            salt: &[i; 32],
            address: "someone@gm",
            balance_atoms: balance,
        }
        .node()
    }

    #[test]
    fn the_root_sums_every_balance() {
        let mut leaves: Vec<Node> = (1..=5).map(|i| leaf(i, u128::from(i) * 100)).collect();
        order(&mut leaves);
        let top = root(&leaves).expect("fits");
        assert_eq!(top.sum, 1_500);
        let tree = Tree::new(&leaves).expect("fits");
        assert_eq!(tree.root(), top);
        for i in 0..leaves.len() {
            let path = proof(&leaves, i).expect("a leaf");
            assert!(verify(&leaves[i], &path, &top));
            assert_eq!(
                tree.proof(i),
                Some(path),
                "the kept tree gives the same path"
            );
        }
        assert_eq!(root(&[]).expect("empty"), empty());
        assert!(proof(&leaves, 5).is_none());
    }

    #[test]
    fn a_changed_balance_or_sibling_fails() {
        let mut leaves: Vec<Node> = (1..=4).map(|i| leaf(i, 10)).collect();
        order(&mut leaves);
        let top = root(&leaves).expect("fits");
        let path = proof(&leaves, 2).expect("a leaf");
        let mut shrunk = leaves[2];
        shrunk.sum -= 1;
        assert!(!verify(&shrunk, &path, &top));
        let mut wrong = path.clone();
        wrong[0].1.sum += 1;
        assert!(!verify(&leaves[2], &wrong, &top));
        let mut flipped = path;
        flipped[0].0 = match flipped[0].0 {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        };
        assert!(!verify(&leaves[2], &flipped, &top));
    }
}
