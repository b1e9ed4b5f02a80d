//! Demurrage: once per period every positive balance of a currency pays `rate_bps` of itself
//! to the collector (the issuer, or `demurrage.to`), zero-sum, journal kind `demurrage`.
//!
//! - **Exactly once per account and period.** A charge is one row of `demurrage_charges`,
//!   whose primary key is `(account, period)`, written in the same transaction as its journal
//!   line. A run charges the periods after the currency's `demurrage_through` that have ended,
//!   one after another, a page of accounts per transaction, skipping accounts that already have
//!   their row; only when every page is done does `demurrage_through` move on (conditionally,
//!   so two runs at once cannot both move it). A run that crashes midway, or runs twice,
//!   charges each account at most once: the rows say who has paid.
//! - **Held funds.** The charge is computed on the whole balance, held funds included, but is
//!   only taken from what is not held ([`rules::demurrage_collectable_atoms`]): a resting
//!   order's hold is reserved money and must stay payable. What could not be taken is carried
//!   into the next period's charge (`due_atoms`), and taken once the funds are free again.
//! - **Missed periods** (the server was down) are charged one by one on the balance as it is
//!   when the run gets to them, so a balance nobody touched pays exactly what compounding
//!   per period would have taken.

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::prelude::*;
use scrip_domain::{CurrencyId, PrincipalId};
use scrip_store::DbConn;
use scrip_store::schema::{accounts, currencies, demurrage_charges};

use crate::model::now_us;
use crate::plan::{Key, Line, Plan};
use crate::policy::{Demurrage, DemurragePeriod};
use crate::rules::{self, CurrencyRules, Position};
use crate::writer::{self, WriteError};
use crate::{Currency, Ledger, LedgerError, TransferKind, currency_by_id};

/// Accounts charged per transaction: bounded work and lock time per commit.
pub const PAGE_ACCOUNTS: i64 = 1_000;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemurrageReport {
    /// Periods charged, over every currency.
    pub periods: u64,
    /// Accounts that paid something.
    pub accounts_charged: u64,
    /// What was taken, per currency, in atoms.
    pub charged_atoms: HashMap<CurrencyId, i128>,
}

/// Charges every period that has ended and is not charged yet, for every currency with
/// demurrage. Safe to run at any time, as often as wanted, from several processes.
pub fn run_due(ledger: &Ledger, now_us: i64) -> Result<DemurrageReport, LedgerError> {
    let ids: Vec<i64> = ledger.read(|conn| {
        Ok(currencies::table
            .filter(currencies::demurrage_rate_bps.is_not_null())
            .select(currencies::id)
            .order(currencies::id)
            .load(conn)?)
    })?;
    let mut report = DemurrageReport::default();
    for id in ids {
        while let Some((currency, demurrage, period)) =
            next_period(ledger, CurrencyId::new(id), now_us)?
        {
            charge_period(ledger, &currency, demurrage, period, &mut report)?;
            ledger.write(|conn| mark_charged(conn, currency.id, period))?;
            report.periods += 1;
        }
    }
    Ok(report)
}

/// The next period of the currency to charge, if one has ended.
fn next_period(
    ledger: &Ledger,
    id: CurrencyId,
    now_us: i64,
) -> Result<Option<(Currency, Demurrage, i64)>, LedgerError> {
    let currency = ledger.read(|conn| currency_by_id(conn, id))?;
    let (Some(demurrage), Some(through)) =
        (currency.policies.demurrage, currency.demurrage_through)
    else {
        return Ok(None);
    };
    let period = through + 1;
    let ended = demurrage.period.start_us(period + 1) <= now_us;
    Ok(ended.then_some((currency, demurrage, period)))
}

/// `demurrage_through` moves from `period - 1` to `period`, only if nobody moved it already.
fn mark_charged(conn: &mut DbConn, currency: CurrencyId, period: i64) -> Result<(), LedgerError> {
    diesel::update(
        currencies::table
            .find(currency.get())
            .filter(currencies::demurrage_through.eq(period - 1)),
    )
    .set(currencies::demurrage_through.eq(period))
    .execute(conn)?;
    Ok(())
}

fn charge_period(
    ledger: &Ledger,
    currency: &Currency,
    demurrage: Demurrage,
    period: i64,
    report: &mut DemurrageReport,
) -> Result<(), LedgerError> {
    let mut after_account = 0_i64;
    loop {
        let page =
            ledger.write(|conn| charge_page(conn, currency, demurrage, period, after_account))?;
        let Some(page) = page else { return Ok(()) };
        after_account = page.last_account;
        report.accounts_charged += page.accounts_charged;
        *report.charged_atoms.entry(currency.id).or_default() += page.charged_atoms;
    }
}

struct PageCharged {
    last_account: i64,
    accounts_charged: u64,
    charged_atoms: i128,
}

/// One charge decided for one account.
struct Charge {
    account_id: i64,
    due_atoms: i64,
    charged_atoms: i64,
    /// The index of its journal line in the plan, when something was taken.
    line: Option<usize>,
}

/// Charges one page of accounts (ids after `after_account`) in the caller's transaction.
fn charge_page(
    conn: &mut DbConn,
    currency: &Currency,
    demurrage: Demurrage,
    period: i64,
    after_account: i64,
) -> Result<Option<PageCharged>, LedgerError> {
    let collector = demurrage.to.unwrap_or(currency.issuer_id);
    let page: Vec<(i64, i64)> = accounts::table
        .filter(accounts::currency_id.eq(currency.id.get()))
        .filter(accounts::balance_atoms.gt(0))
        .filter(accounts::id.gt(after_account))
        .filter(accounts::principal_id.ne(collector.get()))
        .order(accounts::id)
        .limit(PAGE_ACCOUNTS)
        .select((accounts::id, accounts::principal_id))
        .load(conn)?;
    let Some(&(last_account, _)) = page.last() else {
        return Ok(None);
    };
    let collector_key = (collector, currency.id);
    let mut keys: BTreeSet<Key> = page
        .iter()
        .map(|&(_, principal)| (PrincipalId::new(principal), currency.id))
        .collect();
    keys.insert(collector_key);
    let rules = HashMap::from([(currency.id, CurrencyRules::of(currency))]);
    let locked = writer::lock(conn, &keys, &BTreeSet::from([collector_key]), &rules)?;
    // Read under the accounts' locks: a run that charged them a moment ago has committed its
    // rows by now, so they are seen and skipped (and the primary key would refuse a second).
    let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
    let charged_before: HashSet<i64> = charges_of(conn, &ids, period)?.into_keys().collect();
    let carried = charges_of(conn, &ids, period - 1)?;
    let mut positions: HashMap<Key, Position> = locked
        .accounts
        .iter()
        .map(|(key, account)| (*key, account.position))
        .collect();
    let memo = format!("demurrage {}", period_label(demurrage.period, period));
    let mut plan = Plan::default();
    let mut charges = Vec::new();
    for &(account_id, principal) in &page {
        if charged_before.contains(&account_id) {
            continue;
        }
        let key = (PrincipalId::new(principal), currency.id);
        let carried_atoms = carried.get(&account_id).copied().unwrap_or(0);
        if let Some(charge) = decide(
            &mut positions,
            key,
            collector_key,
            demurrage,
            carried_atoms,
            account_id,
        ) {
            let line = (charge.charged_atoms > 0).then(|| {
                plan.pay(Line {
                    currency: currency.id,
                    from: key,
                    to: collector_key,
                    atoms: charge.charged_atoms,
                    kind: TransferKind::Demurrage,
                    memo: Some(memo.clone()),
                    hold: None,
                });
                plan.line_count() - 1
            });
            charges.push(Charge { line, ..charge });
        }
    }
    let applied = writer::apply_plan(conn, &plan, &locked).map_err(|error| match error {
        WriteError::Refused { reason, .. } => LedgerError::Invariant(format!(
            "a demurrage plan was refused where it was written: {reason}"
        )),
        WriteError::Ledger(error) => error,
    })?;
    record_charges(conn, currency.id, period, &charges, &applied.line_ids)?;
    Ok(Some(PageCharged {
        last_account,
        accounts_charged: charges.iter().filter(|c| c.charged_atoms > 0).count() as u64,
        charged_atoms: charges.iter().map(|c| i128::from(c.charged_atoms)).sum(),
    }))
}

/// One account's charge for the period against the locked positions: what is due (this
/// period's share of the balance plus what was carried), and what the rules let it pay now.
fn decide(
    positions: &mut HashMap<Key, Position>,
    key: Key,
    collector_key: Key,
    demurrage: Demurrage,
    carried_atoms: i64,
    account_id: i64,
) -> Option<Charge> {
    let mut payer = *positions.get(&key)?;
    let due_atoms = rules::demurrage_due_atoms(payer.balance_atoms, demurrage.rate_bps)
        .saturating_add(carried_atoms)
        .min(crate::MAX_AMOUNT_ATOMS);
    if due_atoms <= 0 {
        return None;
    }
    let mut collector = *positions.get(&collector_key)?;
    let take = rules::demurrage_collectable_atoms(&payer, due_atoms);
    // A frozen account, or a collector at its ceiling, pays nothing now: carried.
    let charged_atoms = if take > 0 && rules::pay(&mut payer, &mut collector, take).is_ok() {
        positions.insert(key, payer);
        positions.insert(collector_key, collector);
        take
    } else {
        0
    };
    Some(Charge {
        account_id,
        due_atoms,
        charged_atoms,
        line: None,
    })
}

/// `account -> due - charged` of the charges of `period` for these accounts.
fn charges_of(
    conn: &mut DbConn,
    accounts: &[i64],
    period: i64,
) -> Result<HashMap<i64, i64>, LedgerError> {
    let rows: Vec<(i64, i64, i64)> = demurrage_charges::table
        .filter(demurrage_charges::period.eq(period))
        .filter(demurrage_charges::account_id.eq_any(accounts))
        .select((
            demurrage_charges::account_id,
            demurrage_charges::due_atoms,
            demurrage_charges::charged_atoms,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(account, due, charged)| (account, due - charged))
        .collect())
}

fn record_charges(
    conn: &mut DbConn,
    currency: CurrencyId,
    period: i64,
    charges: &[Charge],
    line_ids: &[scrip_domain::TransferId],
) -> Result<(), LedgerError> {
    let now = now_us();
    let rows: Vec<_> = charges
        .iter()
        .map(|c| {
            (
                demurrage_charges::account_id.eq(c.account_id),
                demurrage_charges::period.eq(period),
                demurrage_charges::currency_id.eq(currency.get()),
                demurrage_charges::due_atoms.eq(c.due_atoms),
                demurrage_charges::charged_atoms.eq(c.charged_atoms),
                demurrage_charges::transfer_id.eq(c.line.map(|i| line_ids[i].get())),
                demurrage_charges::created_at_us.eq(now),
            )
        })
        .collect();
    for chunk in rows.chunks(scrip_store::INSERT_CHUNK_ROWS) {
        let insert = diesel::insert_into(demurrage_charges::table).values(chunk);
        match conn {
            DbConn::Postgres(pg) => insert.execute(pg)?,
            DbConn::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
    }
    Ok(())
}

/// A period as people write it: `2026-12-01`, `week of 2026-11-30`, `2026-12`.
pub fn period_label(period: DemurragePeriod, index: i64) -> String {
    let start = chrono::DateTime::from_timestamp_micros(period.start_us(index))
        .map(|t| t.date_naive())
        .unwrap_or_default();
    match period {
        DemurragePeriod::Day => start.format("%Y-%m-%d").to_string(),
        DemurragePeriod::Week => format!("week of {}", start.format("%Y-%m-%d")),
        DemurragePeriod::Month => start.format("%Y-%m").to_string(),
    }
}

/// The next charge of an account, as the wallet shows it: what would be due at the end of the
/// current period on the balance as it is, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextCharge {
    pub due_atoms: i64,
    pub at_us: i64,
}

/// See [`NextCharge`]; `None` without demurrage or for the collector's own account.
pub fn next_charge(
    conn: &mut DbConn,
    currency: &Currency,
    principal: PrincipalId,
    balance_atoms: i64,
    now_us: i64,
) -> Result<Option<NextCharge>, LedgerError> {
    let Some(demurrage) = currency.policies.demurrage else {
        return Ok(None);
    };
    if demurrage.to.unwrap_or(currency.issuer_id) == principal {
        return Ok(None);
    }
    let current = demurrage.period.index_at(now_us);
    let Some(at_us) = next_charge_at_us(currency, now_us) else {
        return Ok(None);
    };
    let carried: i64 = demurrage_charges::table
        .inner_join(accounts::table)
        .filter(accounts::principal_id.eq(principal.get()))
        .filter(accounts::currency_id.eq(currency.id.get()))
        .filter(demurrage_charges::period.eq(current - 1))
        .select((
            demurrage_charges::due_atoms,
            demurrage_charges::charged_atoms,
        ))
        .first::<(i64, i64)>(conn)
        .optional()?
        .map_or(0, |(due, charged)| due - charged);
    let due_atoms = rules::demurrage_due_atoms(balance_atoms, demurrage.rate_bps) + carried;
    Ok(Some(NextCharge { due_atoms, at_us }))
}

/// When the next charge is taken: at the end of the next period to charge (the first period
/// after demurrage was turned on is the first charged, never the one it was turned on in).
pub fn next_charge_at_us(currency: &Currency, now_us: i64) -> Option<i64> {
    let demurrage = currency.policies.demurrage?;
    let current = demurrage.period.index_at(now_us);
    let next = currency
        .demurrage_through
        .map_or(current, |through| (through + 1).max(current));
    Some(demurrage.period.start_us(next + 1))
}

#[derive(diesel::QueryableByName)]
struct Total {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total_atoms: i64,
}

/// Demurrage collected in a currency over every period charged so far (the shop console).
pub fn collected_atoms(conn: &mut DbConn, currency: CurrencyId) -> Result<i64, LedgerError> {
    // Only an integer from a typed id is inlined. Bounded: every charge is at most one
    // balance, and what was collected is still somewhere in the currency's sum of zero.
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(charged_atoms), 0) AS BIGINT) AS total_atoms \
         FROM demurrage_charges WHERE currency_id = {}",
        currency.get()
    );
    let rows: Vec<Total> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.first().map_or(0, |t| t.total_atoms))
}
