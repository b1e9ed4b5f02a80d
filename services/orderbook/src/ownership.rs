//! Which process writes a market (PostgreSQL). A market's writer holds a session advisory
//! lock on it, so at most one process in a deployment writes it; PostgreSQL drops a dead
//! session's locks, so another process takes the market over within seconds of its owner's
//! death.
//!
//! Every market of a process holds its lock on **one** session, shared here: a session per
//! market would let anyone able to open markets use up the database's `max_connections` for
//! everyone (and the outage would come back at every restart, markets being stored). The
//! session is used only to take, check and give back locks, never for the markets' writes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use scrip_store::{Backend, DatabaseUrl};

use crate::spec::MarketId;

/// Namespace of the exchange's advisory locks (the first key of the two-key form).
pub(crate) const ADVISORY_LOCK_SPACE: i32 = 0x5C_1F;
/// How long a successful check of the lock session is trusted: a session-level advisory lock
/// lives exactly as long as its session, so the session answering is the lock still held.
const LIVENESS_TRUSTED_FOR: Duration = Duration::from_millis(500);

/// The process's lock session, shared by all its market writers.
#[derive(Debug)]
pub struct MarketLocks {
    database_url: DatabaseUrl,
    session: Mutex<Option<LockSession>>,
}

struct LockSession {
    conn: PgConnection,
    /// The session's backend pid: what `pg_locks` shows for the locks it holds, and how a
    /// writer's batch checks (fencing) that its market is still this session's.
    pid: i32,
    checked_at: Instant,
}

impl std::fmt::Debug for LockSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockSession")
            .field("pid", &self.pid)
            .finish()
    }
}

/// A market's lock, held by the session with this backend pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub pid: i32,
}

impl MarketLocks {
    pub fn new(database_url: DatabaseUrl) -> Self {
        Self {
            database_url,
            session: Mutex::new(None),
        }
    }

    /// Whether markets need a lock at all: SQLite has one process by construction.
    pub fn needed(&self) -> bool {
        self.database_url.backend() == Backend::Postgres
    }

    /// Takes `market`'s lock unless another session holds it (`None`). Opens the session if
    /// there is none (the first market, or the last session died).
    pub fn try_lock(&self, market: MarketId) -> Result<Option<Held>, String> {
        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let session = match guard.as_mut() {
            Some(session) => session,
            None => guard.insert(self.connect()?),
        };
        // Only integers are inlined.
        let sql = format!("SELECT pg_try_advisory_lock({ADVISORY_LOCK_SPACE}, {market}) AS locked");
        match diesel::sql_query(sql).load::<Locked>(&mut session.conn) {
            Ok(rows) => Ok(rows
                .first()
                .filter(|r| r.locked)
                .map(|_| Held { pid: session.pid })),
            Err(error) => {
                // A session that fails a query is not trusted with locks any more.
                *guard = None;
                Err(error.to_string())
            }
        }
    }

    /// Whether `held` is still good: the session that took it is still this process's and
    /// still answers. False once it died; every market it held must then be taken again.
    pub fn still_held(&self, held: Held) -> bool {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let Some(session) = guard.as_mut().filter(|s| s.pid == held.pid) else {
            return false;
        };
        if session.checked_at.elapsed() < LIVENESS_TRUSTED_FOR {
            return true;
        }
        if diesel::sql_query("SELECT 1")
            .execute(&mut session.conn)
            .is_ok()
        {
            session.checked_at = Instant::now();
            true
        } else {
            *guard = None;
            false
        }
    }

    /// Gives `market`'s lock back, so another process may take it (this one could not load
    /// the market). Nothing to do when the session that held it is gone.
    pub fn release(&self, market: MarketId, held: Held) {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = guard.as_mut().filter(|s| s.pid == held.pid) {
            let sql = format!("SELECT pg_advisory_unlock({ADVISORY_LOCK_SPACE}, {market})");
            if diesel::sql_query(sql).execute(&mut session.conn).is_err() {
                *guard = None;
            }
        }
    }

    fn connect(&self) -> Result<LockSession, String> {
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let mut conn =
            PgConnection::establish(self.database_url.as_str()).map_err(|e| e.to_string())?;
        let rows: Vec<Pid> = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .load(&mut conn)
            .map_err(|e| e.to_string())?;
        let pid = rows
            .first()
            .map(|r| r.pid)
            .ok_or("the database did not say its backend pid")?;
        Ok(LockSession {
            conn,
            pid,
            checked_at: Instant::now(),
        })
    }
}
