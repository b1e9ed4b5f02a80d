//! Proof of liabilities. A currency's outstanding is what its holders are owed; publishing a
//! figure proves nothing, so the registry publishes the root of a Merkle-sum tree ([`sumtree`])
//! over every positive balance, and each holder fetches the path from its own leaf to that root.
//! If the holder's balance were left out or shrunk, its proof would not reach the published
//! root, or the root's sum would be smaller than what the holders see.
//!
//! The imperative shell: [`build`] reads the balances in one query (a consistent snapshot),
//! gives each new holder a secret salt, builds the tree outside any transaction and records
//! its root when it changed;
//! [`Liabilities`] keeps recent snapshots in a bounded cache so a public endpoint cannot make the
//! server hash every balance on every request.

pub mod sumtree;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rand::RngCore;
use scrip_domain::{CurrencyId, PrincipalId, RegistryId, Scale};
use scrip_ledger::policy::CurrencyKind;
use scrip_ledger::{Currency, Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{accounts, liability_roots, liability_salts, principals};

use crate::sumtree::{Leaf, Node, Side};

/// One holder's leaf, as the snapshot keeps it.
#[derive(Debug, Clone)]
struct Holder {
    principal: PrincipalId,
    address: String,
    salt: [u8; 32],
    balance_atoms: i64,
    node: Node,
}

/// A currency's liabilities at one moment: the leaves in tree order and the root.
#[derive(Debug)]
pub struct Snapshot {
    pub currency: CurrencyId,
    pub code: String,
    pub scale: Scale,
    pub as_of_us: i64,
    pub root: Node,
    holders: Vec<Holder>,
    index: HashMap<PrincipalId, usize>,
    tree: sumtree::Tree,
}

/// A holder's inclusion proof.
#[derive(Debug, Clone)]
pub struct Proof {
    pub address: String,
    pub salt: [u8; 32],
    pub balance_atoms: i64,
    pub leaf: Node,
    pub path: Vec<(Side, Node)>,
    pub root: Node,
    pub as_of_us: i64,
}

impl Snapshot {
    pub fn holders(&self) -> usize {
        self.holders.len()
    }

    /// The total the root commits to, in atoms (every balance fits an `i64`, and so does their
    /// sum: the ledger keeps a currency's accounts summing to zero within `i64`).
    pub fn total_atoms(&self) -> i64 {
        i64::try_from(self.root.sum).expect("the total of i64 balances checked at build")
    }

    /// The largest single balance counted, in atoms (0 without holders).
    pub fn largest_atoms(&self) -> i64 {
        self.holders
            .iter()
            .map(|h| h.balance_atoms)
            .max()
            .unwrap_or(0)
    }

    /// `principal`'s proof; `None` when it holds nothing positive of the currency.
    pub fn proof(&self, principal: PrincipalId) -> Option<Proof> {
        let &at = self.index.get(&principal)?;
        let holder = &self.holders[at];
        Some(Proof {
            address: holder.address.clone(),
            salt: holder.salt,
            balance_atoms: holder.balance_atoms,
            leaf: holder.node,
            path: self.tree.proof(at)?,
            root: self.root,
            as_of_us: self.as_of_us,
        })
    }
}

/// Who is counted: every positive balance, except an issuer-credit issuer's own account (it
/// owes, it is not owed; in mutual credit the steward is a member like any other).
fn counted_balances(
    conn: &mut DbConn,
    currency: &Currency,
) -> Result<Vec<(i64, PrincipalId, String, i64)>, LedgerError> {
    let mut query = accounts::table
        .inner_join(principals::table)
        .filter(accounts::currency_id.eq(currency.id.get()))
        .filter(accounts::balance_atoms.gt(0))
        .select((
            accounts::id,
            accounts::principal_id,
            principals::handle,
            accounts::balance_atoms,
        ))
        .into_boxed();
    if currency.policies.kind != CurrencyKind::MutualCredit {
        query = query.filter(accounts::principal_id.ne(currency.issuer_id.get()));
    }
    Ok(query
        .load::<(i64, i64, String, i64)>(conn)?
        .into_iter()
        .map(|(account, principal, handle, balance)| {
            (account, PrincipalId::new(principal), handle, balance)
        })
        .collect())
}

/// The salts stored for `currency`'s accounts.
fn stored_salts(
    conn: &mut DbConn,
    currency: CurrencyId,
) -> Result<HashMap<i64, [u8; 32]>, LedgerError> {
    let mut known = HashMap::new();
    for (account, salt) in liability_salts::table
        .filter(liability_salts::currency_id.eq(currency.get()))
        .select((liability_salts::account_id, liability_salts::salt))
        .load::<(i64, String)>(conn)?
    {
        let bytes = hex::decode(&salt)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| LedgerError::Invariant(format!("account {account}'s salt")))?;
        known.insert(account, bytes);
    }
    Ok(known)
}

/// Gives a fresh random salt to each of `accounts` (which had none) and returns every salt of
/// `currency`, a salt another build gave meanwhile winning. Run in a write transaction.
fn add_salts(
    conn: &mut DbConn,
    currency: CurrencyId,
    accounts: &[i64],
) -> Result<HashMap<i64, [u8; 32]>, LedgerError> {
    let fresh: Vec<_> = accounts
        .iter()
        .map(|&account| {
            let mut salt = [0_u8; 32];
            rand::rng().fill_bytes(&mut salt);
            (
                liability_salts::account_id.eq(account),
                liability_salts::currency_id.eq(currency.get()),
                liability_salts::salt.eq(hex::encode(salt)),
            )
        })
        .collect();
    for chunk in fresh.chunks(500) {
        let insert = diesel::insert_into(liability_salts::table)
            .values(chunk.to_vec())
            .on_conflict_do_nothing();
        // A multi-row insert is spelled per backend (diesel's multi-backend has no batch form).
        match conn {
            DbConn::Postgres(pg) => insert.execute(pg)?,
            DbConn::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
    }
    stored_salts(conn, currency)
}

/// Builds the tree of `currency` from the balances as they are now (one query, so one
/// consistent moment), and records its root if it differs from the last one recorded. The
/// hashing runs outside any transaction: only new holders' salts and a new root are written,
/// each in a short write of its own, so payments never wait for the tree.
pub fn build(
    ledger: &Ledger,
    currency: &Currency,
    registry: &RegistryId,
) -> Result<Snapshot, LedgerError> {
    let as_of_us = now_us();
    let (balances, mut salts) = ledger.read(|conn| {
        Ok((
            counted_balances(conn, currency)?,
            stored_salts(conn, currency.id)?,
        ))
    })?;
    let missing: Vec<i64> = balances
        .iter()
        .map(|b| b.0)
        .filter(|account| !salts.contains_key(account))
        .collect();
    if !missing.is_empty() {
        salts = ledger.write(|conn| add_salts(conn, currency.id, &missing))?;
    }
    let code = currency.code.to_string();
    let mut holders = Vec::with_capacity(balances.len());
    for (account, principal, handle, balance_atoms) in balances {
        let salt = *salts
            .get(&account)
            .ok_or_else(|| LedgerError::Invariant(format!("account {account} has no salt")))?;
        let address = format!("{handle}@{registry}");
        let node = Leaf {
            currency: &code,
            salt: &salt,
            address: &address,
            balance_atoms: u128::from(balance_atoms.unsigned_abs()),
        }
        .node();
        holders.push(Holder {
            principal,
            address,
            salt,
            balance_atoms,
            node,
        });
    }
    holders.sort_unstable_by_key(|h| h.node.hash);
    let leaves: Vec<Node> = holders.iter().map(|h| h.node).collect();
    let tree = sumtree::Tree::new(&leaves)
        .filter(|t| i64::try_from(t.root().sum).is_ok())
        .ok_or_else(|| LedgerError::Invariant(format!("{code}'s liabilities overflow")))?;
    let root = tree.root();
    let hex_root = hex::encode(root.hash);
    if ledger.read(|conn| last_root(conn, currency.id))?.as_deref() != Some(hex_root.as_str()) {
        ledger.write(|conn| record_root(conn, currency.id, &root, holders.len(), as_of_us))?;
    }
    let index = holders
        .iter()
        .enumerate()
        .map(|(i, h)| (h.principal, i))
        .collect();
    Ok(Snapshot {
        currency: currency.id,
        code,
        scale: currency.scale,
        as_of_us,
        root,
        holders,
        index,
        tree,
    })
}

/// Microseconds since the Unix epoch.
fn now_us() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// A root as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRoot {
    pub id: i64,
    pub root: String,
    pub total_atoms: i64,
    pub holders: i64,
    pub as_of_us: i64,
}

/// The root recorded last for `currency` (hex).
fn last_root(conn: &mut DbConn, currency: CurrencyId) -> Result<Option<String>, LedgerError> {
    Ok(liability_roots::table
        .filter(liability_roots::currency_id.eq(currency.get()))
        .order(liability_roots::id.desc())
        .select(liability_roots::root)
        .first(conn)
        .optional()?)
}

/// Records a root (unless it is the last one already: two builds may race to it).
fn record_root(
    conn: &mut DbConn,
    currency: CurrencyId,
    root: &Node,
    holders: usize,
    as_of_us: i64,
) -> Result<(), LedgerError> {
    let hex_root = hex::encode(root.hash);
    if last_root(conn, currency)?.as_deref() == Some(hex_root.as_str()) {
        return Ok(());
    }
    let count = |n: u128| {
        i64::try_from(n).map_err(|_| LedgerError::Invariant("a root's figure does not fit".into()))
    };
    diesel::insert_into(liability_roots::table)
        .values((
            liability_roots::currency_id.eq(currency.get()),
            liability_roots::root.eq(hex_root),
            liability_roots::total_atoms.eq(count(root.sum)?),
            liability_roots::holders.eq(count(holders as u128)?),
            liability_roots::as_of_us.eq(as_of_us),
        ))
        .execute(conn)?;
    Ok(())
}

/// Recorded roots of `currency`, newest first (`id < before`).
pub fn roots(
    conn: &mut DbConn,
    currency: CurrencyId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RecordedRoot>, LedgerError> {
    let mut query = liability_roots::table
        .filter(liability_roots::currency_id.eq(currency.get()))
        .order(liability_roots::id.desc())
        .limit(limit)
        .select((
            liability_roots::id,
            liability_roots::root,
            liability_roots::total_atoms,
            liability_roots::holders,
            liability_roots::as_of_us,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(liability_roots::id.lt(before));
    }
    Ok(query
        .load::<(i64, String, i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(id, root, total_atoms, holders, as_of_us)| RecordedRoot {
            id,
            root,
            total_atoms,
            holders,
            as_of_us,
        })
        .collect())
}

/// How long a snapshot is served before the tree is built again.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// The cache holds at most this many leaves in all (about 350 bytes each with the tree's
/// nodes, so some 70 MB): the oldest snapshots are dropped first.
const MAX_CACHED_LEAVES: usize = 200_000;

/// Snapshots with the moment each was built, oldest first.
type Cached = VecDeque<(Instant, Arc<Snapshot>)>;

/// Recent snapshots by currency, bounded by their total number of leaves.
#[derive(Clone)]
pub struct Liabilities {
    ledger: Ledger,
    registry: RegistryId,
    cache: Arc<Mutex<Cached>>,
    /// Held while a tree is built: one build at a time, so a burst of requests for
    /// currencies not cached costs one build each, one after the other, never all at once.
    building: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Liabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liabilities")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Liabilities {
    pub fn new(ledger: Ledger, registry: RegistryId) -> Self {
        Self {
            ledger,
            registry,
            cache: Arc::default(),
            building: Arc::default(),
        }
    }

    /// The snapshot of `currency`: a cached one at most [`FRESH_FOR`] old, or a new one.
    /// Blocking: call it off the async runtime.
    pub fn current(&self, currency: &Currency) -> Result<Arc<Snapshot>, LedgerError> {
        if let Some(hit) = self.cached(currency.id) {
            return Ok(hit);
        }
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        // Another request may have built it while this one waited.
        if let Some(hit) = self.cached(currency.id) {
            return Ok(hit);
        }
        let snapshot = Arc::new(build(&self.ledger, currency, &self.registry)?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(_, s)| s.currency != currency.id);
        cache.push_back((Instant::now(), snapshot.clone()));
        let mut leaves: usize = cache.iter().map(|(_, s)| s.holders()).sum();
        while leaves > MAX_CACHED_LEAVES && cache.len() > 1 {
            if let Some((_, dropped)) = cache.pop_front() {
                leaves -= dropped.holders();
            }
        }
        Ok(snapshot)
    }

    fn cached(&self, currency: CurrencyId) -> Option<Arc<Snapshot>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .find(|(at, s)| s.currency == currency && at.elapsed() < FRESH_FOR)
            .map(|(_, s)| s.clone())
    }
}

/// Checks a proof as the API writes it: the leaf made from `(currency, salt, address,
/// balance_atoms)` folded with `path` (`(side, hash, sum_atoms)`) must give `root_hex` with
/// sum `total_atoms`. `Err` says what is malformed.
pub fn check(
    leaf: (&str, &str, &str, u128),
    path: &[(&str, &str, u128)],
    (root_hex, total_atoms): (&str, u128),
) -> Result<bool, String> {
    let parse = |what: &str, raw: &str| -> Result<[u8; 32], String> {
        hex::decode(raw.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(format!("{what} is not 64 hex digits"))
    };
    let (currency, salt, address, balance_atoms) = leaf;
    let salt = parse("the salt", salt)?;
    let root = Node {
        hash: parse("the root", root_hex)?,
        sum: total_atoms,
    };
    let mut steps = Vec::with_capacity(path.len());
    for (i, (side, hash, sum)) in path.iter().enumerate() {
        let side = Side::parse(side).ok_or(format!("step {i}: side is left or right"))?;
        steps.push((
            side,
            Node {
                hash: parse(&format!("step {i}'s hash"), hash)?,
                sum: *sum,
            },
        ));
    }
    let leaf = Leaf {
        currency,
        salt: &salt,
        address,
        balance_atoms,
    }
    .node();
    Ok(sumtree::verify(&leaf, &steps, &root))
}
