//! The imperative shell around [`MarketState`]: one thread per market, the market's single
//! writer. It takes commands from a queue, and for each batch of them (group commit: whatever
//! queued up while the previous batch committed) opens one write transaction, locks the
//! paying accounts, applies every command in order, writes the ledger part and the order and
//! trade rows set-based, and commits. Only then does it answer the clients and publish market
//! data, so an acknowledged order is durable and the stream only ever shows committed state.
//!
//! A batch that fails is rolled back and the market is rebuilt from the database; its
//! commands are then retried one by one, so one bad command cannot fail its neighbours.
//!
//! Ownership: on PostgreSQL the worker holds an advisory lock on the market, on the one lock
//! session its process shares ([`MarketLocks`]), so at most one process in a deployment writes
//! a market. A process that cannot get the lock answers `market_unavailable` and keeps trying,
//! taking the market over within seconds of its owner's death.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use scrip_domain::PrincipalId;
use scrip_ledger::retry::{Retry, retry_transient};
use scrip_ledger::{BatchRules, HoldBatch, LedgerError, StoredResponse, idempotency};
use scrip_matching::Side;
use scrip_store::{DatabaseUrl, DbPool, write_transaction};
use tokio::sync::oneshot;

use crate::ExchangeError;
use crate::entry::EntryPolicies;
use crate::feed::Feed;
use crate::metrics::ExchangeMetrics;
use crate::ownership::{ADVISORY_LOCK_SPACE, Held, MarketLocks};
use crate::spec::MarketSpec;
use crate::state::{Changes, Command, IdempotentRequest, MarketState, PlaceOrder, Reply};
use crate::store;

/// Most commands in one transaction.
pub const MAX_BATCH: usize = 512;
/// Commands that may wait for a market. Beyond this the market is overloaded and new commands
/// are refused at once (503) instead of queueing for seconds: a client can retry or back off,
/// while everyone already queued keeps a bounded latency.
const QUEUE_DEPTH: usize = 2_048;
/// Rounds of cancelling makers that cannot receive, per batch, before its commands are tried
/// one by one instead.
const MAX_CEILING_ROUNDS: u32 = 4;
/// How often an idle owner checks that it still holds the market's lock.
const OWNERSHIP_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a process that does not own a market tries to take it over.
const TAKEOVER_INTERVAL: Duration = Duration::from_secs(1);

type Answer = Result<Reply, ExchangeError>;

struct Job {
    command: Command,
    reply: oneshot::Sender<Answer>,
}

/// What waits in a market's queue: a command, or a payment asking to borrow the market.
enum Work {
    Command(Job),
    Lend(oneshot::Sender<Result<Loan, ExchangeError>>),
}

/// A market lent to a payment that converts through several books ([`crate::convert`]): a
/// copy of its state and its ownership fence. The market's writer waits, taking no
/// command, until the loan is given back, so while the borrower holds it nothing else changes
/// the book. Borrowers take markets in ascending id order and a writer lends only its own
/// market, so no two borrowers can wait for each other in a cycle.
#[derive(Debug)]
pub(crate) struct Loan {
    pub state: MarketState,
    /// The process id of the lock session holding the market (PostgreSQL), for the fence.
    pub owner_pid: Option<i32>,
    back: Option<mpsc::Sender<Returned>>,
    /// Told once the writer has the market back (and has published what the borrower
    /// committed), so the borrower's client is answered after the book shows it.
    taken_back: mpsc::Receiver<()>,
}

/// How a borrower gives a market back.
#[derive(Debug)]
pub(crate) enum Returned {
    /// Nothing was committed: the writer keeps the state it had.
    Unchanged,
    /// The borrower committed `changes` (one per hold batch, in order); `state` is the book
    /// after them.
    Committed {
        state: Box<MarketState>,
        changes: Vec<Changes>,
    },
    /// The borrower's transaction failed in a way that leaves its outcome unknown (the
    /// database or the connection failed, maybe during COMMIT): the writer reloads the
    /// book from the database rather than trust either state.
    Unknown,
}

impl Loan {
    /// Gives the market back and waits until its writer has taken it.
    pub fn give_back(mut self, returned: Returned) {
        if let Some(back) = self.back.take()
            && back.send(returned).is_ok()
        {
            let _ = self.taken_back.recv();
        }
    }
}

/// A running market: its rules, its market data and the queue into its writer.
#[derive(Debug)]
pub struct MarketHandle {
    pub spec: MarketSpec,
    pub feed: Arc<Feed>,
    /// Its candles between requests.
    pub candles: crate::candles::CandleCache,
    /// A bounded std channel: async handlers only ever `try_send` (a full queue is an
    /// immediate 503), and the writer thread blocks on it with a timeout, waking on the first
    /// command instead of polling.
    queue: mpsc::SyncSender<Work>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command(job) => job.fmt(f),
            Self::Lend(_) => f.write_str("Lend"),
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("command", &self.command)
            .finish()
    }
}

impl MarketHandle {
    /// Queues a command and waits for its committed answer; `MarketUnavailable` at once when
    /// the market's queue is full.
    pub async fn submit(&self, command: Command) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Work::Command(Job { command, reply }))
            .map_err(|_| ExchangeError::MarketUnavailable)?;
        answer.await.map_err(|_| ExchangeError::MarketUnavailable)?
    }

    /// Borrows the market from its writer (blocking: call it from a blocking thread); refused
    /// at once when its queue is full or this process does not own it.
    pub(crate) fn borrow(&self) -> Result<Loan, ExchangeError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Work::Lend(reply))
            .map_err(|_| ExchangeError::MarketUnavailable)?;
        answer
            .blocking_recv()
            .map_err(|_| ExchangeError::MarketUnavailable)?
    }
}

impl MarketHandle {
    /// [`Self::submit`] for threads outside the async runtime (seeding, tools).
    pub fn submit_blocking(&self, command: Command) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Command(Job { command, reply }))
            .map_err(|_| ExchangeError::MarketUnavailable)?;
        answer
            .blocking_recv()
            .map_err(|_| ExchangeError::MarketUnavailable)?
    }
}

/// What every market worker shares.
#[derive(Clone, Debug)]
pub struct WorkerContext {
    pub pool: DbPool,
    pub database_url: DatabaseUrl,
    pub registry: PrincipalId,
    pub metrics: ExchangeMetrics,
    /// Carries market data between processes; `None` keeps it in this process.
    pub bus: Option<Arc<dyn scrip_bus::Bus>>,
    /// Tells owners what happened to their orders; `None`: nobody is told.
    pub notifier: Option<scrip_notify::Notifier>,
}

/// The market's feed, following the bus when there is one.
fn feed(context: &WorkerContext, spec: &MarketSpec) -> Result<Arc<Feed>, ExchangeError> {
    let last_price = {
        let mut conn = context.pool.get().map_err(LedgerError::from)?;
        store::last_price(&mut conn, spec.id)?
    };
    let feed = Arc::new(Feed::new(spec.clone(), last_price, context.bus.clone()));
    if let Some(bus) = &context.bus {
        crate::replica::spawn_bridge(Arc::clone(&feed), Arc::clone(bus));
    }
    Ok(feed)
}

/// A market this process only reads: its feed follows the owner over the bus, and commands
/// are refused at once (`MarketUnavailable`) because no writer is behind the queue.
pub fn replica(context: &WorkerContext, spec: MarketSpec) -> Result<MarketHandle, ExchangeError> {
    let feed = feed(context, &spec)?;
    let (queue, _) = mpsc::sync_channel(1);
    Ok(MarketHandle {
        spec,
        feed,
        candles: Default::default(),
        queue,
    })
}

/// Starts the writer thread of one market.
pub fn spawn(
    context: WorkerContext,
    locks: Arc<MarketLocks>,
    spec: MarketSpec,
) -> Result<MarketHandle, ExchangeError> {
    let feed = feed(&context, &spec)?;
    let (queue, jobs) = mpsc::sync_channel(QUEUE_DEPTH);
    let worker = Worker {
        notices: context
            .notifier
            .clone()
            .map(crate::notices::OrderNotifier::new),
        context,
        spec: spec.clone(),
        feed: Arc::clone(&feed),
        state: None,
        locks,
        held: None,
        rules: None,
        next_ids: (0, 0),
    };
    std::thread::Builder::new()
        .name(format!("market-{}", spec.id))
        .spawn(move || worker.run(jobs))
        .map_err(|e| ExchangeError::Ledger(LedgerError::Unavailable(e.to_string())))?;
    Ok(MarketHandle {
        spec,
        feed,
        candles: Default::default(),
        queue,
    })
}

struct Worker {
    context: WorkerContext,
    spec: MarketSpec,
    feed: Arc<Feed>,
    /// `None` while this process does not own the market.
    state: Option<MarketState>,
    /// PostgreSQL: the process's lock session, and the market's lock while this worker
    /// holds it.
    locks: Arc<MarketLocks>,
    held: Option<Held>,
    /// The market's two currencies as the ledger needs them, read once.
    rules: Option<BatchRules>,
    next_ids: (u64, i64),
    notices: Option<crate::notices::OrderNotifier>,
}

impl Worker {
    fn run(mut self, jobs: mpsc::Receiver<Work>) {
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        loop {
            if self.state.is_none() && !self.take_ownership() {
                // Not ours (yet): refuse what comes in, and try again shortly.
                let deadline = Instant::now() + TAKEOVER_INTERVAL;
                while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                    match jobs.recv_timeout(wait) {
                        Ok(Work::Command(job)) => {
                            let _ = job.reply.send(Err(ExchangeError::MarketUnavailable));
                        }
                        Ok(Work::Lend(reply)) => {
                            let _ = reply.send(Err(ExchangeError::MarketUnavailable));
                        }
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                continue;
            }
            // Idle, wait in slices and check the lock between them: a lock session that died
            // while nothing happened means another process may own the market now.
            let first = match jobs.recv_timeout(OWNERSHIP_CHECK_INTERVAL) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if !self.lock_alive() {
                        tracing::error!(market = self.spec.id, "market lock lost while idle");
                        self.state = None;
                        self.held = None;
                        self.feed.disown();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Commands queued before a loan run before it, those after it after it.
            let mut lend = None;
            match first {
                Work::Command(job) => batch.push(job),
                Work::Lend(reply) => lend = Some(reply),
            }
            while lend.is_none() && batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(Work::Command(job)) => batch.push(job),
                    Ok(Work::Lend(reply)) => lend = Some(reply),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.process(&mut batch);
            }
            if let Some(reply) = lend {
                self.lend(reply);
            }
        }
    }

    /// Lends a copy of the market to a borrower and waits, taking no command, until it is
    /// given back: committed (the borrower's state replaces this one, and its changes are
    /// published) or unchanged. A borrower that ended without giving it back (it panicked)
    /// may have committed or not: the market is rebuilt from the database.
    fn lend(&mut self, reply: oneshot::Sender<Result<Loan, ExchangeError>>) {
        let Some(state) = self.state.as_ref() else {
            let _ = reply.send(Err(ExchangeError::MarketUnavailable));
            return;
        };
        let (back, returned) = mpsc::channel();
        let (taken, taken_back) = mpsc::channel();
        let loan = Loan {
            state: state.clone(),
            owner_pid: self.held.map(|held| held.pid),
            back: Some(back),
            taken_back,
        };
        if reply.send(Ok(loan)).is_err() {
            return;
        }
        match returned.recv() {
            Ok(Returned::Unchanged) => {}
            Ok(Returned::Committed { state, changes }) => {
                self.state = Some(*state);
                for changes in &changes {
                    self.context
                        .metrics
                        .trades
                        .inc_by(changes.trades.len() as u64);
                    self.publish(changes);
                    if let Some(notices) = &mut self.notices {
                        notices.publish(&self.context.pool, &self.spec, &changes.notices);
                    }
                }
            }
            Ok(Returned::Unknown) => self.rebuild(),
            Err(_) => {
                tracing::error!(
                    market = self.spec.id,
                    "a borrower ended without giving the market back; rebuilding it"
                );
                self.rebuild();
            }
        }
        let _ = taken.send(());
    }

    /// Takes the market if no other process has it, and loads its book.
    fn take_ownership(&mut self) -> bool {
        if self.locks.needed() && self.held.is_none() {
            match self.locks.try_lock(self.spec.id) {
                Ok(Some(held)) => self.held = Some(held),
                Ok(None) => return false,
                Err(error) => {
                    tracing::warn!(market = self.spec.id, %error, "cannot try the market lock");
                    return false;
                }
            }
        }
        match self.load() {
            Ok(state) => {
                self.feed.reset(state.book());
                self.state = Some(state);
                tracing::info!(market = self.spec.id, symbol = %self.feed.symbol(), "market owned");
                true
            }
            Err(error) => {
                tracing::error!(market = self.spec.id, %error, "cannot load the market");
                self.give_up_lock();
                false
            }
        }
    }

    /// Whether the session holding the market's lock still answers (a session-level advisory
    /// lock lives exactly as long as its session). Always true without a lock (SQLite).
    fn lock_alive(&self) -> bool {
        match self.held {
            Some(held) => self.locks.still_held(held),
            None => !self.locks.needed(),
        }
    }

    /// Lets another process take the market (this one cannot serve it now).
    fn give_up_lock(&mut self) {
        if let Some(held) = self.held.take() {
            self.locks.release(self.spec.id, held);
        }
    }

    fn load(&mut self) -> Result<MarketState, ExchangeError> {
        let mut conn = self.context.pool.get().map_err(LedgerError::from)?;
        if self.rules.is_none() {
            self.rules = Some(BatchRules::load(
                &mut conn,
                &[self.spec.base, self.spec.quote],
            )?);
        }
        let open = store::open_orders(&mut conn, self.spec.id)?;
        let (last_order, last_trade) = store::last_ids(&mut conn, self.spec.id)?;
        let mut state = MarketState::restore(
            self.spec.clone(),
            self.context.registry,
            &open,
            last_order,
            last_trade,
        )?;
        state.set_next_ids(self.next_ids);
        self.context
            .metrics
            .resting_orders
            .with_label_values(&[self.feed.symbol()])
            .set(i64::try_from(open.len()).unwrap_or(i64::MAX));
        Ok(state)
    }

    /// Commits `batch`, answering every job. A batch that fails is rolled back and the market
    /// rebuilt; then either the makers that refused it are cancelled and it is tried again
    /// (at most [`MAX_CEILING_ROUNDS`] times per batch), or its commands are tried one by one.
    /// A loop over a queue of pending batches, each with the rounds it has had; every step
    /// makes a batch smaller or uses up a round, so it always ends.
    fn process(&mut self, batch: &mut Vec<Job>) {
        let mut pending: VecDeque<(Vec<Job>, u32)> = VecDeque::from([(std::mem::take(batch), 0)]);
        while let Some((mut jobs, ceiling_rounds)) = pending.pop_front() {
            let started = Instant::now();
            match self.commit_retrying(&jobs) {
                Ok((answers, changes)) => {
                    let elapsed_s = started.elapsed().as_secs_f64();
                    self.context.metrics.batch_seconds.observe(elapsed_s);
                    self.answer(jobs, answers, &changes);
                }
                Err(ExchangeError::MarketUnavailable) => {
                    // Ownership lost (the lock's session died): another process may own the
                    // market now. Stop writing; the run loop tries to take it back.
                    tracing::error!(
                        market = self.spec.id,
                        "market ownership lost; refusing its orders"
                    );
                    self.state = None;
                    self.held = None;
                    self.feed.disown();
                    let waiting = pending.drain(..).flat_map(|(jobs, _)| jobs);
                    for job in waiting.chain(jobs) {
                        let _ = job.reply.send(Err(ExchangeError::MarketUnavailable));
                    }
                }
                Err(error) => {
                    if matches!(error, ExchangeError::Invariant(_)) {
                        self.context.metrics.broken_batches.inc();
                    }
                    self.rebuild();
                    if let ExchangeError::ReceiverAtCeiling {
                        principal,
                        currency,
                    } = error
                        && ceiling_rounds < MAX_CEILING_ROUNDS
                        && let Some(cancels) = self.makers_at_ceiling(&jobs, principal, currency)
                    {
                        // Cancel the makers that could not be paid, then the batch can settle.
                        pending.push_front((jobs, ceiling_rounds + 1));
                        pending.push_front((cancels, MAX_CEILING_ROUNDS));
                    } else if let Some((principal, reason)) = barred_maker(&error)
                        && ceiling_rounds < MAX_CEILING_ROUNDS
                        && let Some(cancels) = self.barred_makers(&jobs, principal, reason)
                    {
                        // A maker frozen while resting (its announcement missed, or not yet
                        // heard): its orders go, then the batch settles without them.
                        pending.push_front((jobs, ceiling_rounds + 1));
                        pending.push_front((cancels, MAX_CEILING_ROUNDS));
                    } else if jobs.len() == 1 {
                        tracing::warn!(market = self.spec.id, %error, "command failed");
                        self.context
                            .metrics
                            .commands
                            .with_label_values(&[error.code()])
                            .inc();
                        if let Some(job) = jobs.pop() {
                            let _ = job.reply.send(Err(error));
                        }
                    } else {
                        // Isolate the command that broke the batch: each alone, in order.
                        tracing::warn!(market = self.spec.id, %error, size = jobs.len(), "batch failed; retrying one by one");
                        for job in jobs.into_iter().rev() {
                            pending.push_front((vec![job], 0));
                        }
                    }
                }
            }
        }
    }

    /// One batch, retried on transient conflicts under the ledger's one retry policy, with
    /// the market rebuilt from the database before each retry.
    fn commit_retrying(&mut self, jobs: &[Job]) -> Result<(Vec<Answer>, Changes), ExchangeError> {
        retry_transient(
            Retry::MARKET,
            |error: &ExchangeError| matches!(error, ExchangeError::Ledger(e) if e.is_transient()),
            |attempt| {
                if attempt > 1 {
                    self.rebuild();
                }
                self.try_batch(jobs)
            },
        )
    }

    /// Answers the jobs of a committed batch and publishes what it changed.
    fn answer(&mut self, jobs: Vec<Job>, answers: Vec<Answer>, changes: &Changes) {
        let metrics = &self.context.metrics;
        metrics.batch_size.observe(jobs.len() as f64);
        metrics.trades.inc_by(changes.trades.len() as u64);
        self.publish(changes);
        for (job, answer) in jobs.into_iter().zip(answers) {
            let outcome = match &answer {
                Ok(_) => "accepted",
                Err(e) => e.code(),
            };
            metrics.commands.with_label_values(&[outcome]).inc();
            let _ = job.reply.send(answer);
        }
        if let Some(notices) = &mut self.notices {
            notices.publish(&self.context.pool, &self.spec, &changes.notices);
        }
    }

    /// A resting order whose owner cannot receive what it would get (its account sits at the
    /// currency's maximum balance) would refuse every taker that reaches it. Such orders are
    /// cancelled, as self-trade prevention cancels, so the market keeps working. Returns the
    /// cancellations to run, if any; none when the refused principal is a taker of the batch
    /// (then its own order is the one to refuse). Runs on the state rebuilt after the failure.
    fn makers_at_ceiling(
        &self,
        batch: &[Job],
        principal: PrincipalId,
        currency: scrip_domain::CurrencyId,
    ) -> Option<Vec<Job>> {
        let orders = self.state.as_ref()?.resting_receiving(principal, currency);
        let cancels = maker_cancels(
            batch,
            principal,
            orders,
            crate::state::EndReason::MaxBalance,
        )?;
        tracing::warn!(market = self.spec.id, %principal, count = cancels.len(), "cancelling orders whose owner cannot receive more");
        Some(cancels)
    }

    /// The resting orders of a maker whose account is frozen, to cancel (reason `frozen`);
    /// none when the principal is a taker of the batch (its own order is then the refused one).
    fn barred_makers(
        &self,
        batch: &[Job],
        principal: PrincipalId,
        reason: crate::state::EndReason,
    ) -> Option<Vec<Job>> {
        let orders = self.state.as_ref()?.resting_of(principal);
        let cancels = maker_cancels(batch, principal, orders, reason)?;
        tracing::warn!(market = self.spec.id, %principal, count = cancels.len(), reason = reason.as_str(), "cancelling a barred maker's orders");
        Some(cancels)
    }

    /// One transaction for the whole batch; the state is only trusted if it commits.
    fn try_batch(&mut self, batch: &[Job]) -> Result<(Vec<Answer>, Changes), ExchangeError> {
        let (Some(state), Some(rules)) = (self.state.as_mut(), self.rules.as_ref()) else {
            return Err(ExchangeError::MarketUnavailable);
        };
        let mut conn = self.context.pool.get().map_err(LedgerError::from)?;
        let spec = &self.spec;
        let owner_pid = self.held.map(|held| held.pid);
        write_transaction(&mut conn, |conn| {
            if let Some(pid) = owner_pid {
                still_owner(conn, spec.id, pid)?;
            }
            let paying = batch
                .iter()
                .filter_map(|job| state.paying_account(&job.command));
            let mut holds = HoldBatch::lock(conn, rules, paying)?;
            let policies = EntryPolicies::load(conn, spec.base, spec.quote)?;
            let mut changes = Changes::default();
            let now_us = scrip_http::now_us();
            let mut replies = Replies::default();
            let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
            for job in batch {
                if let Command::Place(order) = &job.command
                    && let Err(refused) = policies.check(conn, state, order)
                {
                    answers.push(Err(refused));
                    continue;
                }
                let answer = match &job.command {
                    Command::Place(PlaceOrder {
                        idempotency: Some(request),
                        ..
                    }) => replies.apply(conn, state, spec, request, |state| {
                        state.apply(job.command.clone(), now_us, &mut holds, &mut changes)
                    })?,
                    command => state.apply(command.clone(), now_us, &mut holds, &mut changes),
                };
                // The book and the plan disagree: refuse the whole batch (rolled back).
                if let Err(broken @ ExchangeError::Invariant(_)) = answer {
                    return Err(broken);
                }
                answers.push(answer);
            }
            let committed = match holds.commit(conn) {
                Ok(committed) => committed,
                Err(LedgerError::MaxBalanceExceeded) => {
                    return Err(match holds.refused_by() {
                        Some((principal, currency)) => ExchangeError::ReceiverAtCeiling {
                            principal,
                            currency,
                        },
                        None => LedgerError::MaxBalanceExceeded.into(),
                    });
                }
                Err(LedgerError::Frozen) => {
                    return Err(match holds.refused_by() {
                        Some((principal, currency)) => ExchangeError::AccountFrozen {
                            principal,
                            currency,
                        },
                        None => LedgerError::Frozen.into(),
                    });
                }
                Err(LedgerError::NotAdmitted) => {
                    return Err(match holds.refused_by() {
                        Some((principal, _)) => ExchangeError::MakerNotMember { principal },
                        None => LedgerError::NotAdmitted.into(),
                    });
                }
                Err(other) => return Err(other.into()),
            };
            store::write_changes(conn, spec.id, &changes, &committed.new_hold_ids, now_us)?;
            state.resolve_holds(&changes, &committed.new_hold_ids);
            Ok((answers, changes))
        })
    }

    /// Throws away the in-memory state and reloads it from the database.
    fn rebuild(&mut self) {
        if let Some(state) = self.state.take() {
            self.next_ids = state.next_ids();
        }
        match self.load() {
            Ok(state) => {
                // The failed batch may have committed after all (its acknowledgement was lost):
                // publish whatever the stored book differs by, keeping the sequence gapless.
                self.feed.reset(state.book());
                self.state = Some(state);
            }
            Err(error) => {
                tracing::error!(market = self.spec.id, %error, "cannot rebuild the market");
                // Give up ownership: the next command retries the load.
                self.give_up_lock();
                self.feed.disown();
            }
        }
    }

    fn publish(&self, changes: &Changes) {
        let Some(state) = self.state.as_ref() else {
            return;
        };
        let book = state.book();
        let changed: Vec<_> = changes
            .touched_levels
            .iter()
            .map(|&(is_bid, price)| {
                let side = if is_bid { Side::Buy } else { Side::Sell };
                (is_bid, price, book.level_quantity(side, price))
            })
            .collect();
        self.feed.publish(&changes.trades, &changed);
        self.context
            .metrics
            .resting_orders
            .with_label_values(&[self.feed.symbol()])
            .set(i64::try_from(book.len()).unwrap_or(i64::MAX));
    }
}

/// The answers to idempotent orders stored in the current batch, so a repeat within the batch
/// is answered like a repeat after it.
#[derive(Default)]
struct Replies {
    stored: HashMap<(PrincipalId, String), (String, StoredResponse)>,
}

impl Replies {
    /// Answers an order that carries an idempotency key: the stored answer for a repeat, a
    /// conflict for the key reused with another request, else `apply` and store its answer in
    /// the batch's transaction. Only database failures abort the batch.
    fn apply(
        &mut self,
        conn: &mut scrip_store::DbConn,
        state: &mut MarketState,
        spec: &MarketSpec,
        request: &IdempotentRequest,
        apply: impl FnOnce(&mut MarketState) -> Answer,
    ) -> Result<Answer, ExchangeError> {
        let slot = (request.scope, request.key.as_str().to_owned());
        if let Some((hash, stored)) = self.stored.get(&slot) {
            return Ok(if *hash == request.request_hash {
                Ok(Reply::Replayed(stored.clone()))
            } else {
                Err(LedgerError::IdempotencyConflict.into())
            });
        }
        match idempotency::replay(conn, request.scope, &request.key, &request.request_hash) {
            Ok(Some(stored)) => return Ok(Ok(Reply::Replayed(stored))),
            Ok(None) => {}
            Err(LedgerError::IdempotencyConflict) => {
                return Ok(Err(LedgerError::IdempotencyConflict.into()));
            }
            Err(other) => return Err(other.into()),
        }
        let answer = apply(state);
        if let Ok(Reply::Placed { order, fills }) = &answer {
            let view = crate::view::order_view(spec, &spec.symbol(), order, fills);
            let body = serde_json::to_string(&view).map_err(|e| {
                ExchangeError::Invariant(format!(
                    "cannot store the answer to order {}: {e}",
                    order.id
                ))
            })?;
            let stored = StoredResponse { status: 201, body };
            idempotency::remember(
                conn,
                request.scope,
                &request.key,
                &request.request_hash,
                &stored,
            )?;
            self.stored
                .insert(slot, (request.request_hash.clone(), stored));
        }
        Ok(answer)
    }
}

/// Fencing: inside the batch's transaction, checks that this process's lock session still
/// holds the market's advisory lock. A session that died released it, and another process may
/// have taken the market over; writing from this process's book would then fork the market.
pub(crate) fn still_owner(
    conn: &mut scrip_store::DbConn,
    market: crate::spec::MarketId,
    pid: i32,
) -> Result<(), ExchangeError> {
    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        held: i64,
    }
    // Two-key advisory locks show the keys as classid and objid; only integers are inlined.
    let sql = format!(
        "SELECT COUNT(*) AS held FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid = {ADVISORY_LOCK_SPACE} AND objid = {market} AND objsubid = 2 AND pid = {pid}"
    );
    let rows: Vec<Held> = diesel::sql_query(sql).load(conn)?;
    if rows.first().is_some_and(|r| r.held > 0) {
        Ok(())
    } else {
        Err(ExchangeError::MarketUnavailable)
    }
}

/// Cancellations of a maker's `orders` that refused a batch; none when the principal is a
/// taker of the batch (then its own order is the one to refuse) or has no resting order.
/// A maker the batch could not settle with and why: frozen while resting (its announcement
/// missed, or not yet heard), or no longer a member of a currency it would receive.
fn barred_maker(error: &ExchangeError) -> Option<(PrincipalId, crate::state::EndReason)> {
    match error {
        ExchangeError::AccountFrozen { principal, .. } => {
            Some((*principal, crate::state::EndReason::Frozen))
        }
        ExchangeError::MakerNotMember { principal } => {
            Some((*principal, crate::state::EndReason::NotMember))
        }
        _ => None,
    }
}

fn maker_cancels(
    batch: &[Job],
    principal: PrincipalId,
    orders: Vec<scrip_matching::OrderId>,
    reason: crate::state::EndReason,
) -> Option<Vec<Job>> {
    let is_taker = batch
        .iter()
        .any(|job| matches!(&job.command, Command::Place(order) if order.owner == principal));
    if is_taker || orders.is_empty() {
        return None;
    }
    Some(
        orders
            .into_iter()
            .map(|order| Job {
                command: Command::Cancel {
                    owner: principal,
                    order,
                    reason,
                },
                // Nobody waits for these answers.
                reply: oneshot::channel().0,
            })
            .collect(),
    )
}
