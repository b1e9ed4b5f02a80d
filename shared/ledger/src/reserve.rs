//! The reserve of a `backed` currency (API.md "Currency policies", `backing`).
//!
//! The reserve is money the issuer holds in the backing currency, set aside as holds on its own
//! account there (reason `reserve <currency id>`, one hold per deposit, a *tranche*): it stays
//! the issuer's, but it can neither be spent nor charged demurrage (demurrage never takes held
//! funds). Coverage is enforced by the floor: the issuer's floor in the backed currency is
//! minus the smaller of its credit limit and what the reserve backs
//! ([`rules::reserve_backs_atoms`]), so every payment, order hold and fill that would issue
//! more than the reserve covers is refused by the one rule every movement already passes
//! ([`rules::check_change`]). A deposit lowers the floor; a release raises it, and is refused
//! while a tranche is locked (`lock_days` after its deposit) or while what is outstanding needs
//! it (`rules::check_limits`). Both lock the currency row, then the issuer's two accounts in
//! ascending id order (as every writer does), so a reserve change and a payment serialize.

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyId, HoldId};
use scrip_store::DbConn;
use scrip_store::schema::{accounts, holds};

use crate::plan::{HoldRef, Key, Plan};
use crate::policy::{Backing, US_PER_DAY};
use crate::rules::{self, CurrencyRules, ParValue};
use crate::writer::{self, LockedAccount, WriteError};
use crate::{Currency, LedgerError, currency_by_id};

/// The hold reason of a reserve tranche for `currency`.
pub fn reserve_reason(currency: CurrencyId) -> String {
    format!("reserve {}", currency.get())
}

/// The backed currency a hold reason names, when it is a reserve tranche's.
pub fn backed_currency_of(reason: &str) -> Option<CurrencyId> {
    let id = reason.strip_prefix("reserve ")?.parse().ok()?;
    Some(CurrencyId::new(id))
}

/// One deposit into the reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tranche {
    pub hold: HoldId,
    pub deposited_atoms: i64,
    pub remaining_atoms: i64,
    pub deposited_at_us: i64,
    pub unlocks_at_us: i64,
}

/// A backed currency's reserve as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub backing: Backing,
    /// The backing currency (its code and scale, to show the reserve).
    pub backing_currency: Currency,
    /// Oldest first.
    pub tranches: Vec<Tranche>,
    /// What the reserve backs, in the backed currency's atoms.
    pub backs_atoms: i64,
    /// What is outstanding: minus the issuer's balance when it is negative.
    pub outstanding_atoms: i64,
    /// What may be released now (unlocked, and not needed for what is outstanding).
    pub releasable_atoms: i64,
}

/// What the tranches still hold: the reserve.
fn held_atoms(tranches: &[Tranche]) -> i64 {
    tranches.iter().map(|t| t.remaining_atoms).sum()
}

impl Reserve {
    pub fn reserve_atoms(&self) -> i64 {
        held_atoms(&self.tranches)
    }

    pub fn locked_atoms(&self, now_us: i64) -> i64 {
        self.tranches
            .iter()
            .filter(|t| t.unlocks_at_us > now_us)
            .map(|t| t.remaining_atoms)
            .sum()
    }

    /// When the next locked tranche unlocks, if one is locked.
    pub fn next_unlock_us(&self, now_us: i64) -> Option<i64> {
        self.tranches
            .iter()
            .filter(|t| t.unlocks_at_us > now_us && t.remaining_atoms > 0)
            .map(|t| t.unlocks_at_us)
            .min()
    }
}

/// What `reserve_atoms` of the backing currency backs of `currency`.
pub fn backs_atoms(currency: &Currency, backing_currency: &Currency, reserve_atoms: i64) -> i64 {
    let Some(backing) = currency.policies.backing.map(|b| b.ratio_bps) else {
        return 0;
    };
    rules::reserve_backs_atoms(
        reserve_atoms,
        ParValue {
            scale: backing_currency.scale,
            par: backing_currency.par,
        },
        ParValue {
            scale: currency.scale,
            par: currency.par,
        },
        backing,
    )
}

/// The issuer's floor in `currency` for a credit limit of `credit_limit_atoms`: minus the limit,
/// and for a backed currency no lower than its reserve backs.
pub(crate) fn issuer_floor_atoms(
    conn: &mut DbConn,
    currency: &Currency,
    credit_limit_atoms: i64,
) -> Result<i64, LedgerError> {
    let Some(backing) = currency.policies.backing else {
        return Ok(rules::issuer_floor_atoms(credit_limit_atoms, None));
    };
    let backing_currency = currency_by_id(conn, backing.currency)?;
    let reserve_atoms = held_atoms(&tranches(conn, currency, &backing_currency)?);
    let backs = backs_atoms(currency, &backing_currency, reserve_atoms);
    Ok(rules::issuer_floor_atoms(credit_limit_atoms, Some(backs)))
}

/// The reserve of a backed currency (`BadPolicy` for any other), read in the caller's
/// transaction.
pub fn reserve_of(
    conn: &mut DbConn,
    currency: &Currency,
    now_us: i64,
) -> Result<Reserve, LedgerError> {
    let backing = backing_of(currency)?;
    let backing_currency = currency_by_id(conn, backing.currency)?;
    let tranches = tranches(conn, currency, &backing_currency)?;
    let issuer = crate::account(conn, currency.issuer_id, currency.id)?
        .ok_or_else(|| LedgerError::Invariant("a currency without its issuer's account".into()))?;
    let needed_atoms = issuer.held.atoms() - issuer.balance.atoms();
    Ok(summarize(
        (currency, &backing_currency, backing),
        tranches,
        (issuer.balance.atoms(), needed_atoms),
        now_us,
    ))
}

fn summarize(
    (currency, backing_currency, backing): (&Currency, &Currency, Backing),
    tranches: Vec<Tranche>,
    (balance_atoms, needed_atoms): (i64, i64),
    now_us: i64,
) -> Reserve {
    let reserve_atoms = held_atoms(&tranches);
    let unlocked_atoms: i64 = tranches
        .iter()
        .filter(|t| t.unlocks_at_us <= now_us)
        .map(|t| t.remaining_atoms)
        .sum();
    let backs = |r| backs_atoms(currency, backing_currency, r);
    let releasable_atoms =
        rules::reserve_releasable_atoms(reserve_atoms, needed_atoms, backs).min(unlocked_atoms);
    Reserve {
        backing,
        backing_currency: backing_currency.clone(),
        backs_atoms: backs(reserve_atoms),
        outstanding_atoms: (-balance_atoms).max(0),
        releasable_atoms,
        tranches,
    }
}

fn backing_of(currency: &Currency) -> Result<Backing, LedgerError> {
    currency.policies.backing.ok_or_else(|| {
        LedgerError::bad_policy(
            "kind",
            format!(
                "{} is not a backed currency: it has no reserve",
                currency.code
            ),
        )
    })
}

/// The open tranches of a currency's reserve, oldest first.
fn tranches(
    conn: &mut DbConn,
    currency: &Currency,
    backing_currency: &Currency,
) -> Result<Vec<Tranche>, LedgerError> {
    let lock_days = currency.policies.backing.map_or(0, |b| b.lock_days);
    let rows: Vec<(i64, i64, i64, i64)> = holds::table
        .inner_join(accounts::table)
        .filter(accounts::principal_id.eq(currency.issuer_id.get()))
        .filter(accounts::currency_id.eq(backing_currency.id.get()))
        .filter(holds::reason.eq(reserve_reason(currency.id)))
        .filter(holds::remaining_atoms.gt(0))
        .order((holds::created_at_us, holds::id))
        .select((
            holds::id,
            holds::amount_atoms,
            holds::remaining_atoms,
            holds::created_at_us,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, amount, remaining, at)| Tranche {
            hold: HoldId::new(id),
            deposited_atoms: amount,
            remaining_atoms: remaining,
            deposited_at_us: at,
            unlocks_at_us: at.saturating_add(lock_days.saturating_mul(US_PER_DAY)),
        })
        .collect())
}

/// The issuer's accounts in the backed and the backing currency, locked in ascending id order
/// after the currency row.
struct LockedReserve {
    backing_currency: Currency,
    backing: Backing,
    backed_key: Key,
    backing_key: Key,
    accounts: writer::Locked,
}

impl LockedReserve {
    fn lock(conn: &mut DbConn, currency: &Currency) -> Result<Self, LedgerError> {
        let backing = backing_of(currency)?;
        crate::transfer::lock_currency(conn, currency.id)?;
        let backing_currency = currency_by_id(conn, backing.currency)?;
        let issuer = currency.issuer_id;
        let (backed_key, backing_key) = ((issuer, currency.id), (issuer, backing_currency.id));
        let rules = HashMap::from([
            (currency.id, CurrencyRules::of(currency)),
            (backing_currency.id, CurrencyRules::of(&backing_currency)),
        ]);
        let keys = BTreeSet::from([backed_key, backing_key]);
        let accounts = writer::lock(conn, &keys, &BTreeSet::new(), &rules)?;
        Ok(Self {
            backing_currency,
            backing,
            backed_key,
            backing_key,
            accounts,
        })
    }

    fn account(&self, key: Key) -> Option<LockedAccount> {
        self.accounts.accounts.get(&key).copied()
    }

    fn issuer(&self) -> Result<LockedAccount, LedgerError> {
        self.account(self.backed_key)
            .ok_or_else(|| LedgerError::Invariant("a currency without its issuer's account".into()))
    }

    /// Writes `plan` (the tranches' holds) and the issuer's new floor for `reserve_atoms`.
    fn apply(
        &self,
        conn: &mut DbConn,
        currency: &Currency,
        plan: &Plan,
        reserve_atoms: i64,
    ) -> Result<(), LedgerError> {
        writer::apply_plan(conn, plan, &self.accounts).map_err(|e| match e {
            WriteError::Refused { reason, .. } => reason,
            WriteError::Ledger(error) => error,
        })?;
        let issuer = self.issuer()?;
        let backs = backs_atoms(currency, &self.backing_currency, reserve_atoms);
        let floor_atoms = rules::issuer_floor_atoms(currency.credit_limit.atoms(), Some(backs));
        rules::check_limits(&issuer.position, floor_atoms, None)?;
        writer::set_floor(conn, issuer.account_id, floor_atoms)
    }
}

/// Sets `atoms` of the issuer's available balance in the backing currency aside as a new
/// tranche of the reserve, in the caller's transaction; the issuer may then issue what it backs.
pub fn deposit(
    conn: &mut DbConn,
    currency: &Currency,
    amount: Amount,
    now_us: i64,
) -> Result<Reserve, LedgerError> {
    let locked = LockedReserve::lock(conn, currency)?;
    let atoms = CurrencyRules::of(&locked.backing_currency).atoms(amount)?;
    let Some(account) = locked.account(locked.backing_key) else {
        return Err(LedgerError::InsufficientFunds);
    };
    // Asked first as its own rule, so a refusal names the reserve's account.
    let mut position = account.position;
    rules::hold(&mut position, atoms)?;
    let before = held_atoms(&tranches(conn, currency, &locked.backing_currency)?);
    let mut plan = Plan::default();
    plan.place_hold(locked.backing_key, atoms, reserve_reason(currency.id));
    locked.apply(conn, currency, &plan, before + atoms)?;
    reserve_of(conn, currency, now_us)
}

/// Gives `amount` of the reserve back to the issuer's available balance, oldest unlocked
/// tranches first. Refused (changing nothing) with `ReserveLocked` when less is unlocked, and
/// `ReserveInUse` when what is outstanding still needs it.
pub fn release(
    conn: &mut DbConn,
    currency: &Currency,
    amount: Amount,
    now_us: i64,
) -> Result<Reserve, LedgerError> {
    let locked = LockedReserve::lock(conn, currency)?;
    let atoms = CurrencyRules::of(&locked.backing_currency).atoms(amount)?;
    let issuer = locked.issuer()?.position;
    let reserve = summarize(
        (currency, &locked.backing_currency, locked.backing),
        tranches(conn, currency, &locked.backing_currency)?,
        (
            issuer.balance_atoms,
            issuer.held_atoms - issuer.balance_atoms,
        ),
        now_us,
    );
    let show = |atoms| Amount::from_atoms(atoms, locked.backing_currency.scale).to_string();
    let unlocked_atoms = reserve.reserve_atoms() - reserve.locked_atoms(now_us);
    if atoms > unlocked_atoms {
        let next = reserve.next_unlock_us(now_us).and_then(|at| {
            chrono::DateTime::from_timestamp_micros(at).map(|t| {
                format!(
                    "; the next deposit unlocks at {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            })
        });
        return Err(LedgerError::ReserveLocked {
            releasable: show(unlocked_atoms.min(reserve.releasable_atoms)),
            next_unlock: next.unwrap_or_default(),
        });
    }
    if atoms > reserve.releasable_atoms {
        return Err(LedgerError::ReserveInUse {
            releasable: show(reserve.releasable_atoms),
        });
    }
    let mut plan = Plan::default();
    let mut left = atoms;
    for tranche in reserve
        .tranches
        .iter()
        .filter(|t| t.unlocks_at_us <= now_us)
    {
        let take = left.min(tranche.remaining_atoms);
        if take > 0 {
            plan.release(HoldRef::Existing(tranche.hold), locked.backing_key, take)?;
            left -= take;
        }
    }
    debug_assert_eq!(left, 0, "the unlocked tranches cover the release");
    locked.apply(conn, currency, &plan, reserve.reserve_atoms() - atoms)?;
    reserve_of(conn, currency, now_us)
}
