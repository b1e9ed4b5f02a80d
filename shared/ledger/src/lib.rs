//! The ledger: the only code in Scrip that decides and writes balances.
//!
//! - [`rules`]: the one pure module that decides whether money may move (floors, ceilings,
//!   holds), for every kind of movement;
//! - plans as values ([`Plan`]): payments ([`transfer_many`]) and the exchange's holds and
//!   settlements ([`HoldBatch`]) are planned in memory from positions read once;
//! - one set-based writer (`writer.rs`) writes every plan, checking it again with the same
//!   rules against the locked numbers;
//! - [`Ledger`], a handle on the pool that runs such work in a write transaction and retries it
//!   when the database reports a transient conflict ([`retry`]). Callers never see those.
//!
//! Every function either applies its whole effect or returns an error having changed nothing.

mod audit;
mod batch;
mod committer;
mod currencies;
pub mod demurrage;
mod error;
pub mod freeze;
mod hold_batch;
pub mod idempotency;
mod journal;
mod members;
mod model;
mod plan;
pub mod policy;
mod principals;
pub mod requests;
pub mod reserve;
pub mod retry;
pub mod rules;
mod transfer;
mod writer;

use scrip_store::{DbConn, DbPool, write_transaction};

pub use audit::{AuditReport, Checkpoint, Marks, Violation, audit, audit_since};
pub use batch::transfer_many;
pub use committer::{Committer, MAX_BATCH};
pub use currencies::{
    LimitsChange, NewCurrency, check_not_sealed, create_currency, currency_by_code, currency_by_id,
    set_limits,
};
pub use error::{ErrorClass, LedgerError};
pub use hold_batch::{BatchRules, CommittedHolds, HoldBatch};
pub use idempotency::{IdempotencyKey, Idempotent, StoredResponse};
pub use journal::{
    CurrencyStats, Holding, JournalEntry, Lines, account_lines, account_moved_since,
    currencies_of_issuer, currencies_page, currencies_stats, holdings, journal_entry, journal_page,
};
pub use members::{
    Joining, Left, Member, credit_before_opening, is_member, leave, member, members_page,
    set_member,
};
pub use model::{Account, Currency, MAX_AMOUNT_ATOMS, Principal, Transfer, TransferKind};
pub use plan::{HoldRef, Key, Plan};
pub use principals::{
    REGISTRY_HANDLE, create_principal, handles, principal_by_handle, principal_by_id,
};
pub use rules::{Change, CurrencyRules, Position};
pub use transfer::{TransferRequest, account, currency_rules};

/// Moves money from `request.from`'s available balance to `request.to` inside the caller's
/// transaction; a refusal changes nothing. The one-element case of [`transfer_many`].
pub fn transfer(conn: &mut DbConn, request: &TransferRequest) -> Result<Transfer, LedgerError> {
    let mut results = transfer_many(conn, std::slice::from_ref(request))?;
    assert_eq!(results.len(), 1, "one result per request");
    results.remove(0)
}

use scrip_domain::PrincipalId;

/// A handle on the ledger's database. Cheap to clone; every method blocks (call it from a
/// blocking thread, never from an async executor thread).
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: DbPool,
}

impl Ledger {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// A pooled connection for reads that span several queries.
    pub fn conn(&self) -> Result<scrip_store::PooledConn, LedgerError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` in one write transaction, retrying on serialization failures, deadlocks and
    /// a busy database. `work` may run several times, so it must not have effects outside the
    /// transaction.
    pub fn write<T>(
        &self,
        mut work: impl FnMut(&mut DbConn) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self.pool.get()?;
        retry::retry_transient(retry::Retry::LEDGER, LedgerError::is_transient, |_| {
            write_transaction(&mut conn, &mut work)
        })
    }

    /// Runs read-only `work` on a pooled connection.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&mut DbConn) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }

    pub fn transfer(&self, request: &TransferRequest) -> Result<Transfer, LedgerError> {
        self.write(|conn| transfer(conn, request))
    }

    /// Applies many transfers in one transaction (one commit, one fsync). Each transfer is
    /// still all-or-nothing on its own: a refused one is reported in its slot and the others
    /// go through.
    pub fn transfer_batch(
        &self,
        requests: &[TransferRequest],
    ) -> Result<Vec<Result<Transfer, LedgerError>>, LedgerError> {
        self.write(|conn| transfer_many(conn, requests))
    }

    /// Runs `work` at most once per `(scope, key)`: a replay with the same request hash gets
    /// the stored response, one with another hash `IdempotencyConflict`. The key is stored in
    /// the same transaction as the effect. Refusals are not stored, so a refused request may
    /// be retried with the same key once the cause is gone.
    pub fn idempotent(
        &self,
        scope: PrincipalId,
        key: &IdempotencyKey,
        request_hash: &str,
        mut work: impl FnMut(&mut DbConn) -> Result<StoredResponse, LedgerError>,
    ) -> Result<Idempotent, LedgerError> {
        let outcome: Result<Idempotent, std::convert::Infallible> =
            self.idempotent_or_refused(scope, key, request_hash, |conn| work(conn).map(Ok))?;
        Ok(outcome.unwrap_or_else(|never| match never {}))
    }

    /// [`Ledger::idempotent`] for work that may also refuse for a reason of its own (`R`, a
    /// service's error): a refusal commits nothing and stores no key, like a ledger refusal.
    pub fn idempotent_or_refused<R>(
        &self,
        scope: PrincipalId,
        key: &IdempotencyKey,
        request_hash: &str,
        mut work: impl FnMut(&mut DbConn) -> Result<Result<StoredResponse, R>, LedgerError>,
    ) -> Result<Result<Idempotent, R>, LedgerError> {
        self.write(|conn| {
            if let Some(stored) = idempotency::replay(conn, scope, key, request_hash)? {
                return Ok(Ok(Idempotent::Replayed(stored)));
            }
            match work(conn)? {
                Ok(response) => {
                    idempotency::remember(conn, scope, key, request_hash, &response)?;
                    Ok(Ok(Idempotent::Fresh(response)))
                }
                Err(refused) => Ok(Err(refused)),
            }
        })
    }

    /// The stored response for `(scope, key)`, if any; `IdempotencyConflict` when the key was
    /// used for another request. Read-only: a replay needs no write transaction.
    pub fn idempotent_lookup(
        &self,
        scope: PrincipalId,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> Result<Option<StoredResponse>, LedgerError> {
        self.read(|conn| idempotency::replay(conn, scope, key, request_hash))
    }

    pub fn audit(&self) -> Result<AuditReport, LedgerError> {
        self.read(audit)
    }
}
