//! The audit: recomputes every balance from the journal and checks every invariant of
//! DESIGN.md that the stored data can show. It reads one consistent snapshot and writes nothing.

use std::collections::HashMap;
use std::fmt;

use diesel::prelude::*;
use scrip_store::DbConn;
use scrip_store::schema::{accounts, currencies, currency_members, holds, transfers};

use crate::LedgerError;
use crate::model::AccountRow;

/// Journal rows read per query, so an audit of a large ledger runs in bounded memory per page.
const PAGE_ROWS: i64 = 10_000;

/// One broken invariant, with what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Invariant 1: money was created or destroyed.
    NonZeroSum { currency: String, sum_atoms: i128 },
    /// Invariant 2: a member below zero, an issuer below its credit limit, or a floor that
    /// does not match the currency's policy.
    WrongFloor {
        account: i64,
        floor_atoms: i64,
        expected_atoms: i64,
    },
    WrongCeiling {
        account: i64,
        ceiling_atoms: Option<i64>,
        expected_atoms: Option<i64>,
    },
    BelowFloor {
        account: i64,
        balance_atoms: i64,
        floor_atoms: i64,
    },
    AboveCeiling {
        account: i64,
        balance_atoms: i64,
        ceiling_atoms: i64,
    },
    /// Invariant 3: held funds that are not covered.
    OverHeld { account: i64, available_atoms: i64 },
    /// Invariant 4: a balance that the journal does not explain.
    JournalMismatch {
        account: i64,
        balance_atoms: i64,
        journal_atoms: i128,
    },
    HoldsMismatch {
        account: i64,
        held_atoms: i64,
        holds_atoms: i128,
    },
    /// A journal line between accounts of other currencies than its own.
    ForeignLeg { transfer: i64 },
    /// A demurrage journal line without its charge row (so nothing shows it was the only
    /// charge of its account and period), or with another amount or account.
    UnrecordedDemurrage { transfer: i64 },
    /// An account frozen in a currency that was not declared freezable.
    FrozenUnfreezable { account: i64 },
    /// A row whose reference to another row does not resolve (the references that PostgreSQL
    /// does not check on the exchange's write path, see [`UNCHECKED_REFERENCES`]).
    DanglingReference { reference: &'static str, row: i64 },
    /// A hold placed for an order still holds funds though the order is no longer open: money
    /// left locked behind.
    HoldLeftBehind { hold: i64, order: i64 },
    /// A clearing run's recorded position of a business does not match the settlements it
    /// took part in, or its net position changed.
    ClearingMismatch { run: i64, business: i64 },
    /// A paid marketplace deal whose payment (the buyer's transfer and the onboarding fund's
    /// share) is not its amount in its currency, or that has no payment.
    DealMismatch { deal: i64 },
    /// An onboarding payment that no deal of its seller records.
    UnmatchedOnboarding { transfer: i64 },
    /// A person's onboarding allowance used is not what the fund paid of its purchases.
    AllowanceMismatch { principal: i64 },
    /// A backed currency's issuer owes more than its reserve backs.
    ReserveShort {
        currency: String,
        outstanding_atoms: i64,
        backs_atoms: i64,
    },
    /// A reserve hold that is not on the issuer's account in the backing currency.
    ReserveMisplaced { hold: i64 },
}

/// References written by the exchange's single writer that PostgreSQL does not check with a
/// foreign key (migration `writer_references`: on that path the checks cost more than the
/// inserts). The audit checks them instead: `(table.column, table it points at by id)`.
pub const UNCHECKED_REFERENCES: [(&str, &str); 8] = [
    ("transfers.currency_id", "currencies"),
    ("transfers.hold_id", "holds"),
    ("orders.market_id", "markets"),
    ("orders.owner_id", "principals"),
    ("orders.hold_id", "holds"),
    ("trades.market_id", "markets"),
    ("trades.taker_order_id", "orders"),
    ("trades.maker_order_id", "orders"),
];

/// Most dangling rows reported per reference (one is enough to fail the audit).
const DANGLING_REPORTED: usize = 20;

#[derive(QueryableByName)]
struct RowId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    row_id: i64,
}

/// Rows above `after` (their ids per table) whose unchecked references do not resolve.
fn dangling_references(conn: &mut DbConn, after: &Marks) -> Result<Vec<Violation>, LedgerError> {
    let mut violations = Vec::new();
    for (reference, target) in UNCHECKED_REFERENCES {
        let (table, column) = reference.split_once('.').unwrap_or((reference, "id"));
        let after_id = after.of(table);
        // Constant names and integers only, nothing from a request.
        let sql = format!(
            "SELECT c.id AS row_id FROM {table} c WHERE c.id > {after_id} AND c.{column} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM {target} t WHERE t.id = c.{column}) \
             ORDER BY c.id LIMIT {DANGLING_REPORTED}"
        );
        let rows: Vec<RowId> = diesel::sql_query(sql).load(conn)?;
        violations.extend(rows.into_iter().map(|r| Violation::DanglingReference {
            reference,
            row: r.row_id,
        }));
    }
    Ok(violations)
}

/// Paid deals (paid since `after_id` by their transfer) whose payment is not their amount, and
/// onboarding lines that no deal of their payee records.
fn deal_mismatches(conn: &mut DbConn, after_id: i64) -> Result<Vec<Violation>, LedgerError> {
    let deals_sql = format!(
        "SELECT d.id AS row_id FROM deals d LEFT JOIN transfers t ON t.id = d.transfer_id \
         LEFT JOIN accounts fa ON fa.id = t.from_account_id LEFT JOIN accounts ta ON ta.id = t.to_account_id \
         WHERE d.status = 'paid' AND (d.transfer_id IS NULL OR (t.id > {after_id} AND \
         (t.amount_atoms + d.onboarding_atoms <> d.amount_atoms OR t.currency_id <> d.currency_id \
         OR fa.principal_id <> d.buyer_id OR ta.principal_id <> d.seller_id))) \
         ORDER BY d.id LIMIT {DANGLING_REPORTED}"
    );
    let deals: Vec<RowId> = diesel::sql_query(deals_sql).load(conn)?;
    let onboarding_sql = format!(
        "SELECT t.id AS row_id FROM transfers t JOIN accounts a ON a.id = t.to_account_id \
         WHERE t.id > {after_id} AND t.kind = 'onboarding' AND NOT EXISTS \
         (SELECT 1 FROM deals d WHERE d.seller_id = a.principal_id AND d.currency_id = t.currency_id \
         AND d.onboarding_atoms = t.amount_atoms) ORDER BY t.id LIMIT {DANGLING_REPORTED}"
    );
    let onboarding: Vec<RowId> = diesel::sql_query(onboarding_sql).load(conn)?;
    // Each person's allowance used is what the fund paid of its purchases, no more.
    let allowances_sql = format!(
        "SELECT a.principal_id AS row_id FROM onboarding_allowances a WHERE a.used_atoms <> \
         (SELECT COALESCE(SUM(d.onboarding_atoms), 0) FROM deals d WHERE d.buyer_id = a.principal_id) \
         ORDER BY a.principal_id LIMIT {DANGLING_REPORTED}"
    );
    let allowances: Vec<RowId> = diesel::sql_query(allowances_sql).load(conn)?;
    Ok(deals
        .into_iter()
        .map(|r| Violation::DealMismatch { deal: r.row_id })
        .chain(
            onboarding
                .into_iter()
                .map(|r| Violation::UnmatchedOnboarding { transfer: r.row_id }),
        )
        .chain(
            allowances
                .into_iter()
                .map(|r| Violation::AllowanceMismatch {
                    principal: r.row_id,
                }),
        )
        .collect())
}

/// Demurrage lines that no charge row records with the same account and amount: the rows
/// (primary key: account and period) are what shows each period was charged at most once.
fn unrecorded_demurrage(conn: &mut DbConn, after_id: i64) -> Result<Vec<Violation>, LedgerError> {
    let sql = format!(
        "SELECT t.id AS row_id FROM transfers t WHERE t.id > {after_id} AND t.kind = 'demurrage' AND NOT EXISTS \
         (SELECT 1 FROM demurrage_charges c WHERE c.transfer_id = t.id \
         AND c.account_id = t.from_account_id AND c.charged_atoms = t.amount_atoms) \
         ORDER BY t.id LIMIT {DANGLING_REPORTED}"
    );
    let rows: Vec<RowId> = diesel::sql_query(sql).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Violation::UnrecordedDemurrage { transfer: r.row_id })
        .collect())
}

impl Violation {
    /// Every check of the audit, by name: the `check` label of its metric.
    pub const CHECKS: [&'static str; 12] = [
        "zero_sum",
        "floors",
        "ceilings",
        "holds",
        "journal",
        "references",
        "demurrage_once",
        "freezes",
        "open_orders",
        "clearing_nets",
        "deals",
        "reserves",
    ];

    /// What each of [`Violation::CHECKS`] makes sure of, in words for the public monitor.
    pub fn describe(check: &str) -> &'static str {
        match check {
            "zero_sum" => "every currency's balances sum to zero: no money created or destroyed",
            "floors" => "no account is below its floor (zero, or its credit limit)",
            "ceilings" => "no account is above the currency's maximum balance",
            "holds" => "funds held by orders are covered and match the open holds",
            "journal" => "every balance equals the sum of its journal lines",
            "references" => "every journal line, order and trade points at rows that exist",
            "demurrage_once" => "demurrage was charged at most once per account and period",
            "freezes" => "only accounts of freezable currencies are frozen",
            "open_orders" => "no hold is left behind an order that ended",
            "clearing_nets" => {
                "each clearing run kept every business's net position, as its settlements show"
            }
            "deals" => {
                "every paid marketplace deal was paid its amount exactly, the onboarding fund's share included"
            }
            "reserves" => {
                "every backed currency's outstanding amount is covered by its reserve, held by its issuer"
            }
            _ => "",
        }
    }

    /// The check this violation fails (one of [`Violation::CHECKS`]).
    pub fn check(&self) -> &'static str {
        match self {
            Self::NonZeroSum { .. } => "zero_sum",
            Self::WrongFloor { .. } | Self::BelowFloor { .. } => "floors",
            Self::WrongCeiling { .. } | Self::AboveCeiling { .. } => "ceilings",
            Self::OverHeld { .. } | Self::HoldsMismatch { .. } => "holds",
            Self::JournalMismatch { .. } | Self::ForeignLeg { .. } => "journal",
            Self::DanglingReference { .. } => "references",
            Self::UnrecordedDemurrage { .. } => "demurrage_once",
            Self::FrozenUnfreezable { .. } => "freezes",
            Self::HoldLeftBehind { .. } => "open_orders",
            Self::ClearingMismatch { .. } => "clearing_nets",
            Self::DealMismatch { .. }
            | Self::UnmatchedOnboarding { .. }
            | Self::AllowanceMismatch { .. } => "deals",
            Self::ReserveShort { .. } | Self::ReserveMisplaced { .. } => "reserves",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonZeroSum {
                currency,
                sum_atoms,
            } => {
                write!(
                    f,
                    "currency {currency}: balances sum to {sum_atoms} atoms, not 0"
                )
            }
            Self::WrongFloor {
                account,
                floor_atoms,
                expected_atoms,
            } => write!(
                f,
                "account {account}: floor {floor_atoms} does not match the currency's policy ({expected_atoms})"
            ),
            Self::WrongCeiling {
                account,
                ceiling_atoms,
                expected_atoms,
            } => write!(
                f,
                "account {account}: ceiling {ceiling_atoms:?} does not match the currency's maximum balance ({expected_atoms:?})"
            ),
            Self::BelowFloor {
                account,
                balance_atoms,
                floor_atoms,
            } => write!(
                f,
                "account {account}: balance {balance_atoms} is below its floor {floor_atoms}"
            ),
            Self::AboveCeiling {
                account,
                balance_atoms,
                ceiling_atoms,
            } => write!(
                f,
                "account {account}: balance {balance_atoms} is above the maximum balance {ceiling_atoms}"
            ),
            Self::OverHeld {
                account,
                available_atoms,
            } => write!(
                f,
                "account {account}: holds exceed what the account may spend (available {available_atoms})"
            ),
            Self::JournalMismatch {
                account,
                balance_atoms,
                journal_atoms,
            } => write!(
                f,
                "account {account}: balance {balance_atoms} but its transfers add up to {journal_atoms}"
            ),
            Self::HoldsMismatch {
                account,
                held_atoms,
                holds_atoms,
            } => write!(
                f,
                "account {account}: held {held_atoms} but its open holds add up to {holds_atoms}"
            ),
            Self::ForeignLeg { transfer } => {
                write!(
                    f,
                    "transfer {transfer}: an account of another currency takes part"
                )
            }
            Self::ReserveShort {
                currency,
                outstanding_atoms,
                backs_atoms,
            } => write!(
                f,
                "currency {currency}: {outstanding_atoms} atoms outstanding but its reserve backs only {backs_atoms}"
            ),
            Self::ReserveMisplaced { hold } => write!(
                f,
                "hold {hold}: a reserve hold that is not on the issuer's account in the backing currency"
            ),
            Self::DealMismatch { deal } => write!(
                f,
                "deal {deal}: paid, but its payment is not its amount in its currency"
            ),
            Self::AllowanceMismatch { principal } => write!(
                f,
                "principal {principal}: its onboarding allowance used is not what the fund paid of its purchases"
            ),
            Self::UnmatchedOnboarding { transfer } => write!(
                f,
                "transfer {transfer}: an onboarding payment that no deal of its payee records"
            ),
            Self::UnrecordedDemurrage { transfer } => write!(
                f,
                "transfer {transfer}: a demurrage line that no charge of its account and period records"
            ),
            Self::FrozenUnfreezable { account } => write!(
                f,
                "account {account}: frozen in a currency that is not freezable"
            ),
            Self::DanglingReference { reference, row } => {
                write!(f, "{reference} of row {row} points at no row")
            }
            Self::HoldLeftBehind { hold, order } => write!(
                f,
                "hold {hold} still holds funds for order {order}, which is no longer open"
            ),
            Self::ClearingMismatch { run, business } => write!(
                f,
                "clearing run {run}: principal {business}'s position does not match its settlements"
            ),
        }
    }
}

/// What the audit looked at and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub currencies: usize,
    pub accounts: usize,
    pub transfers: u64,
    pub violations: Vec<Violation>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

struct CurrencyPolicy {
    code: String,
    issuer: i64,
    credit_limit_atoms: i64,
    max_balance_atoms: Option<i64>,
    mutual_credit: bool,
    freezable: bool,
    /// A backed currency's: what its reserve backs (the issuer's floor is no lower).
    backs_atoms: Option<i64>,
}

/// Each member's credit limit: `(currency, principal) -> atoms`.
type MemberLimits = HashMap<(i64, i64), i64>;

/// The highest row id per table a run has seen (or, in a checkpoint, checked), for the
/// tables whose ids grow with time. Orders' and trades' ids are split by market (each market's
/// writer numbers its own), so a mark on them would skip new rows of lower markets: their
/// references are checked in full every time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub transfers: i64,
    pub clearing_runs: i64,
}

impl Marks {
    fn of(&self, table: &str) -> i64 {
        match table {
            "transfers" => self.transfers,
            "clearing_runs" => self.clearing_runs,
            _ => 0,
        }
    }

    fn read(conn: &mut DbConn) -> Result<Self, LedgerError> {
        use diesel::dsl::max;
        use scrip_store::schema::clearing_runs;
        Ok(Self {
            transfers: transfers::table
                .select(max(transfers::id))
                .first::<Option<i64>>(conn)?
                .unwrap_or(0),
            clearing_runs: clearing_runs::table
                .select(max(clearing_runs::id))
                .first::<Option<i64>>(conn)?
                .unwrap_or(0),
        })
    }
}

/// A row whose id is below what was seen this long ago has committed: no transaction of the
/// ledger stays open for a minute (an id is taken at insert, and a transaction with a lower
/// id may commit after one with a higher id, so the newest rows are read again next time).
const SETTLED_US: i64 = 60_000_000;

/// What an incremental audit carries from one run to the next, so each run reads only the
/// journal lines, orders, trades and runs written since (and the accounts, whose number does
/// not grow with the journal). A fresh checkpoint makes a full audit.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    /// Journal net of every account over the transfers with `id <= through.transfers`.
    base: HashMap<i64, i128>,
    base_lines: u64,
    /// Rows at or below these ids are summed (journal) and checked (references, demurrage,
    /// clearing) for good.
    through: Marks,
    /// What each recent run saw, and when: the newest one older than [`SETTLED_US`] becomes
    /// the next `through`.
    recent: std::collections::VecDeque<(i64, Marks)>,
}

impl Checkpoint {
    /// The rows this checkpoint covers for good.
    pub fn through(&self) -> Marks {
        self.through
    }
}

/// Audits the whole ledger in one read-only snapshot.
pub fn audit(conn: &mut DbConn) -> Result<AuditReport, LedgerError> {
    audit_since(conn, &mut Checkpoint::default(), crate::model::now_us())
}

/// Audits what changed since `checkpoint` (all of it for a fresh one), in one read-only
/// snapshot, and moves the checkpoint on. Every account is still checked against its
/// journal; only the journal is not read again.
pub fn audit_since(
    conn: &mut DbConn,
    checkpoint: &mut Checkpoint,
    now_us: i64,
) -> Result<AuditReport, LedgerError> {
    let mut next = checkpoint.clone();
    let report = conn.transaction(|conn| {
        if matches!(conn, DbConn::Postgres(_)) {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(conn)?;
        }
        audit_snapshot(conn, &mut next, now_us)
    })?;
    *checkpoint = next;
    Ok(report)
}

fn audit_snapshot(
    conn: &mut DbConn,
    checkpoint: &mut Checkpoint,
    now_us: i64,
) -> Result<AuditReport, LedgerError> {
    let seen = Marks::read(conn)?;
    let mut policies: HashMap<i64, CurrencyPolicy> = currencies::table
        .select((
            currencies::id,
            currencies::code,
            currencies::issuer_id,
            currencies::credit_limit_atoms,
            currencies::max_balance_atoms,
            currencies::kind,
            currencies::freezable,
        ))
        .load::<(i64, String, i64, i64, Option<i64>, String, i32)>(conn)?
        .into_iter()
        .map(
            |(id, code, issuer, credit_limit_atoms, max_balance_atoms, kind, freezable)| {
                let policy = CurrencyPolicy {
                    code,
                    issuer,
                    credit_limit_atoms,
                    max_balance_atoms,
                    mutual_credit: kind == crate::policy::CurrencyKind::MutualCredit.as_str(),
                    freezable: freezable != 0,
                    backs_atoms: None,
                };
                (id, policy)
            },
        )
        .collect();
    let members: MemberLimits = currency_members::table
        .select((
            currency_members::currency_id,
            currency_members::principal_id,
            currency_members::credit_limit_atoms,
        ))
        .load::<(i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(currency, principal, limit)| ((currency, principal), limit))
        .collect();
    let accounts: Vec<AccountRow> = accounts::table
        .select(AccountRow::as_select())
        .order(accounts::id)
        .load(conn)?;
    let registry: std::collections::HashSet<i64> = crate::writer::registry_principals(conn)?
        .into_iter()
        .collect();
    let settled = checkpoint
        .recent
        .iter()
        .rev()
        .find(|(at, _)| *at <= now_us - SETTLED_US)
        .map(|(_, marks)| marks.transfers);
    let journal = journal_positions(conn, &accounts, checkpoint, settled)?;
    let open_holds: Vec<(i64, i64, i64, String)> = holds::table
        .filter(holds::remaining_atoms.gt(0))
        .select((
            holds::id,
            holds::account_id,
            holds::remaining_atoms,
            holds::reason,
        ))
        .load(conn)?;
    let held_by_holds: HashMap<i64, i128> =
        open_holds
            .iter()
            .fold(HashMap::new(), |mut sums, (_, account, atoms, _)| {
                *sums.entry(*account).or_default() += i128::from(*atoms);
                sums
            });

    let mut report = AuditReport {
        currencies: policies.len(),
        accounts: accounts.len(),
        transfers: journal.lines,
        violations: journal.foreign,
    };
    report
        .violations
        .extend(reserve_checks(conn, &mut policies, &accounts, &open_holds)?);
    report
        .violations
        .extend(dangling_references(conn, &checkpoint.through)?);
    report
        .violations
        .extend(unrecorded_demurrage(conn, checkpoint.through.transfers)?);
    report
        .violations
        .extend(deal_mismatches(conn, checkpoint.through.transfers)?);
    report
        .violations
        .extend(holds_left_behind(conn, &open_holds)?);
    report
        .violations
        .extend(clearing_mismatches(conn, checkpoint.through.clearing_runs)?);
    let mut sums: HashMap<i64, i128> = policies.keys().map(|&id| (id, 0)).collect();
    for account in &accounts {
        *sums.entry(account.currency_id).or_default() += i128::from(account.balance_atoms);
        let journal_atoms = journal.positions.get(&account.id).copied().unwrap_or(0);
        let holds_atoms = held_by_holds.get(&account.id).copied().unwrap_or(0);
        check_account(
            account,
            registry.contains(&account.principal_id),
            policies.get(&account.currency_id),
            &members,
            journal_atoms,
            holds_atoms,
            &mut report.violations,
        );
    }
    let mut currencies: Vec<_> = sums.into_iter().filter(|&(_, sum)| sum != 0).collect();
    currencies.sort_unstable();
    for (currency, sum_atoms) in currencies {
        let code = policies
            .get(&currency)
            .map_or_else(|| currency.to_string(), |p| p.code.clone());
        report.violations.push(Violation::NonZeroSum {
            currency: code,
            sum_atoms,
        });
    }
    advance(checkpoint, seen, now_us);
    Ok(report)
}

/// Moves the checkpoint's marks on to the newest run that saw settled rows (the journal's
/// base was moved by [`journal_positions`] to the same mark).
fn advance(checkpoint: &mut Checkpoint, seen: Marks, now_us: i64) {
    checkpoint.recent.push_back((now_us, seen));
    if let Some(at) = checkpoint
        .recent
        .iter()
        .rposition(|(at, _)| *at <= now_us - SETTLED_US)
    {
        checkpoint.through = checkpoint.recent[at].1;
        checkpoint.recent.drain(..=at);
    }
    // Bounded: runs are minutes apart; a burst of them keeps only the latest few.
    while checkpoint.recent.len() > 64 {
        checkpoint.recent.pop_front();
    }
}

/// Backed currencies: each reserve hold sits on its issuer's account in the backing currency,
/// and what the issuer owes is covered by what the reserve backs (recorded in `policies` for
/// the floor check).
fn reserve_checks(
    conn: &mut DbConn,
    policies: &mut HashMap<i64, CurrencyPolicy>,
    accounts: &[AccountRow],
    open_holds: &[(i64, i64, i64, String)],
) -> Result<Vec<Violation>, LedgerError> {
    use crate::reserve::{backed_currency_of, backs_atoms};
    let by_id: HashMap<i64, &AccountRow> = accounts.iter().map(|a| (a.id, a)).collect();
    let mut reserves: HashMap<i64, i64> = HashMap::new();
    let mut violations = Vec::new();
    let backed_ids: Vec<i64> = currencies::table
        .filter(currencies::kind.eq(crate::policy::CurrencyKind::Backed.as_str()))
        .select(currencies::id)
        .load(conn)?;
    let mut backed = HashMap::new();
    for id in backed_ids {
        let currency = crate::currency_by_id(conn, scrip_domain::CurrencyId::new(id))?;
        let Some(backing) = currency.policies.backing else {
            continue;
        };
        let backing_currency = crate::currency_by_id(conn, backing.currency)?;
        reserves.insert(id, 0);
        backed.insert(id, (currency, backing_currency));
    }
    for (hold, account, atoms, reason) in open_holds {
        let Some(currency) = backed_currency_of(reason) else {
            continue;
        };
        let on_issuers = by_id
            .get(account)
            .zip(backed.get(&currency.get()))
            .is_some_and(|(account, (backed, backing))| {
                account.principal_id == backed.issuer_id.get()
                    && account.currency_id == backing.id.get()
            });
        match reserves.get_mut(&currency.get()) {
            Some(sum) if on_issuers => *sum += atoms,
            _ => violations.push(Violation::ReserveMisplaced { hold: *hold }),
        }
    }
    for (id, (currency, backing_currency)) in &backed {
        let backs = backs_atoms(currency, backing_currency, reserves[id]);
        if let Some(policy) = policies.get_mut(id) {
            policy.backs_atoms = Some(backs);
        }
        let issuer_balance = accounts
            .iter()
            .find(|a| a.currency_id == *id && a.principal_id == currency.issuer_id.get())
            .map_or(0, |a| a.balance_atoms);
        if -issuer_balance > backs {
            violations.push(Violation::ReserveShort {
                currency: currency.code.to_string(),
                outstanding_atoms: -issuer_balance,
                backs_atoms: backs,
            });
        }
    }
    Ok(violations)
}

/// Holds still holding funds for an order (`reason` "order N") that is no longer open.
fn holds_left_behind(
    conn: &mut DbConn,
    open_holds: &[(i64, i64, i64, String)],
) -> Result<Vec<Violation>, LedgerError> {
    use scrip_store::schema::orders;
    let open_orders: std::collections::HashSet<i64> = orders::table
        .filter(orders::status.eq_any(["open", "partially_filled"]))
        .select(orders::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    Ok(open_holds
        .iter()
        .filter_map(|(hold, _, _, reason)| {
            let order = reason.strip_prefix("order ")?.parse::<i64>().ok()?;
            (!open_orders.contains(&order))
                .then_some(Violation::HoldLeftBehind { hold: *hold, order })
        })
        .take(DANGLING_REPORTED)
        .collect())
}

/// Clearing runs above `after_run`: each business's recorded position against the
/// settlements it took part in (what it owes fell by what it settled as debtor, what it is
/// owed by what it settled as creditor), and its net position unchanged.
fn clearing_mismatches(conn: &mut DbConn, after_run: i64) -> Result<Vec<Violation>, LedgerError> {
    use scrip_store::schema::{clearing_positions, clearing_settlements};
    let positions: Vec<(i64, i64, i64, i64, i64, i64)> = clearing_positions::table
        .filter(clearing_positions::run_id.gt(after_run))
        .select((
            clearing_positions::run_id,
            clearing_positions::business_id,
            clearing_positions::owes_before_granules,
            clearing_positions::owed_before_granules,
            clearing_positions::owes_after_granules,
            clearing_positions::owed_after_granules,
        ))
        .load(conn)?;
    let mut settled: HashMap<(i64, i64), (i128, i128)> = HashMap::new();
    for (run, debtor, creditor, granules) in clearing_settlements::table
        .filter(clearing_settlements::run_id.gt(after_run))
        .select((
            clearing_settlements::run_id,
            clearing_settlements::debtor_id,
            clearing_settlements::creditor_id,
            clearing_settlements::granules,
        ))
        .load::<(i64, i64, i64, i64)>(conn)?
    {
        settled.entry((run, debtor)).or_default().0 += i128::from(granules);
        settled.entry((run, creditor)).or_default().1 += i128::from(granules);
    }
    Ok(positions
        .into_iter()
        .filter(
            |&(run, business, owes_before, owed_before, owes_after, owed_after)| {
                let (as_debtor, as_creditor) =
                    settled.get(&(run, business)).copied().unwrap_or_default();
                i128::from(owes_before - owes_after) != as_debtor
                    || i128::from(owed_before - owed_after) != as_creditor
                    || owed_before - owes_before != owed_after - owes_after
            },
        )
        .map(|(run, business, ..)| Violation::ClearingMismatch { run, business })
        .take(DANGLING_REPORTED)
        .collect())
}

/// What the journal says: each account's net, how many lines, and lines that cross currencies.
struct Journal {
    positions: HashMap<i64, i128>,
    lines: u64,
    foreign: Vec<Violation>,
}

/// Net of every account's journal lines: the checkpoint's base plus the lines above it, read
/// page by page; flags lines whose accounts are not of the line's currency. Lines up to
/// `settled` are added to the checkpoint's base for good.
fn journal_positions(
    conn: &mut DbConn,
    accounts: &[AccountRow],
    checkpoint: &mut Checkpoint,
    settled: Option<i64>,
) -> Result<Journal, LedgerError> {
    let currency_of: HashMap<i64, i64> = accounts.iter().map(|a| (a.id, a.currency_id)).collect();
    let mut positions = checkpoint.base.clone();
    let mut foreign = Vec::new();
    let mut seen: u64 = checkpoint.base_lines;
    let mut after_id = checkpoint.through.transfers;
    let settled = settled.unwrap_or(checkpoint.through.transfers);
    loop {
        let page: Vec<(i64, i64, i64, i64, i64)> = transfers::table
            .filter(transfers::id.gt(after_id))
            .order(transfers::id)
            .limit(PAGE_ROWS)
            .select((
                transfers::id,
                transfers::currency_id,
                transfers::from_account_id,
                transfers::to_account_id,
                transfers::amount_atoms,
            ))
            .load(conn)?;
        let Some(&(last_id, ..)) = page.last() else {
            break;
        };
        for (id, currency, from, to, atoms) in page {
            *positions.entry(from).or_default() -= i128::from(atoms);
            *positions.entry(to).or_default() += i128::from(atoms);
            if id <= settled {
                *checkpoint.base.entry(from).or_default() -= i128::from(atoms);
                *checkpoint.base.entry(to).or_default() += i128::from(atoms);
                checkpoint.base_lines += 1;
            }
            if currency_of.get(&from) != Some(&currency) || currency_of.get(&to) != Some(&currency)
            {
                foreign.push(Violation::ForeignLeg { transfer: id });
            }
            seen += 1;
        }
        after_id = last_id;
    }
    Ok(Journal {
        positions,
        lines: seen,
        foreign,
    })
}

fn check_account(
    account: &AccountRow,
    is_registry: bool,
    policy: Option<&CurrencyPolicy>,
    members: &MemberLimits,
    journal_atoms: i128,
    holds_atoms: i128,
    violations: &mut Vec<Violation>,
) {
    let id = account.id;
    if let Some(policy) = policy {
        let is_issuer = account.principal_id == policy.issuer;
        let expected_floor = if is_issuer {
            crate::rules::issuer_floor_atoms(policy.credit_limit_atoms, policy.backs_atoms)
        } else if policy.mutual_credit && !is_registry {
            // Every mutual-credit holder is a member, its floor minus its own limit; one
            // without a membership row gets none (a floor of zero) and is reported otherwise.
            -members
                .get(&(account.currency_id, account.principal_id))
                .copied()
                .unwrap_or(0)
        } else {
            0
        };
        if account.frozen != 0 && !policy.freezable {
            violations.push(Violation::FrozenUnfreezable { account: id });
        }
        if account.floor_atoms != expected_floor {
            violations.push(Violation::WrongFloor {
                account: id,
                floor_atoms: account.floor_atoms,
                expected_atoms: expected_floor,
            });
        }
        let expected_ceiling = if is_issuer {
            None
        } else {
            let kind = if is_registry {
                scrip_domain::PrincipalKind::Registry
            } else {
                scrip_domain::PrincipalKind::User
            };
            crate::rules::holder_ceiling(kind, policy.max_balance_atoms)
        };
        if account.ceiling_atoms != expected_ceiling {
            violations.push(Violation::WrongCeiling {
                account: id,
                ceiling_atoms: account.ceiling_atoms,
                expected_atoms: expected_ceiling,
            });
        }
        if let Some(ceiling_atoms) = expected_ceiling.or(account.ceiling_atoms)
            && account.balance_atoms > ceiling_atoms
        {
            violations.push(Violation::AboveCeiling {
                account: id,
                balance_atoms: account.balance_atoms,
                ceiling_atoms,
            });
        }
    }
    let floor_atoms = account.floor_atoms.min(0);
    if account.balance_atoms < floor_atoms {
        violations.push(Violation::BelowFloor {
            account: id,
            balance_atoms: account.balance_atoms,
            floor_atoms,
        });
    }
    let available_atoms = account.balance_atoms - account.held_atoms - account.floor_atoms;
    if available_atoms < 0 || account.held_atoms < 0 {
        violations.push(Violation::OverHeld {
            account: id,
            available_atoms,
        });
    }
    if i128::from(account.balance_atoms) != journal_atoms {
        violations.push(Violation::JournalMismatch {
            account: id,
            balance_atoms: account.balance_atoms,
            journal_atoms,
        });
    }
    if i128::from(account.held_atoms) != holds_atoms {
        violations.push(Violation::HoldsMismatch {
            account: id,
            held_atoms: account.held_atoms,
            holds_atoms,
        });
    }
}
