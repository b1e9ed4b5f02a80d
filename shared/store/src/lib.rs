//! Scrip's storage layer: one connection type over SQLite (the embedded default) and
//! PostgreSQL (production), picked from the database URL, with a pool and embedded migrations.
//!
//! Queries are written once against [`DbConn`]; the few places where the backends differ
//! (how a write transaction begins, which errors mean "try again") live here and nowhere else.

pub mod bulk;
mod pool;
pub mod schema;
mod transaction;
mod url;

pub use bulk::{Column, Columns};
pub use pool::{DbPool, PooledConn, connect, connect_and_migrate, run_migrations};
pub use transaction::{is_retryable, write_transaction};
pub use url::{Backend, DatabaseUrl};

use thiserror::Error;

/// A connection to either backend. Query code takes `&mut DbConn` and never needs to know which.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

impl DbConn {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

impl std::fmt::Debug for DbConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbConn({:?})", self.backend())
    }
}

/// Errors of the storage layer itself (connecting, migrating); query errors stay diesel's.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database URL must start with postgres://, postgresql:// or sqlite:// (got {0:?})")]
    BadUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::r2d2::PoolError),
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

#[cfg(feature = "test-support")]
pub mod test_support;

/// Locks one row of `table` until commit on PostgreSQL (`SELECT ... FOR UPDATE`); SQLite's
/// write transaction (`BEGIN IMMEDIATE`) already excludes every other writer.
pub fn lock_row(conn: &mut DbConn, table: &'static str, id: i64) -> diesel::QueryResult<()> {
    if matches!(conn, DbConn::Postgres(_)) {
        // Only a table name from the code and an integer are inlined.
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT id FROM {table} WHERE id = {id} FOR UPDATE")),
            conn,
        )?;
    }
    Ok(())
}

/// Rows per multi-row `INSERT` (SQLite allows at most 32,766 bound parameters per statement,
/// and no table here has more than 16 columns).
pub const INSERT_CHUNK_ROWS: usize = 1_000;

/// Inserts a slice of `Insertable` rows into `$table` in multi-row statements of at most
/// [`INSERT_CHUNK_ROWS`] rows, inside the caller's transaction; evaluates to
/// `Result<usize, diesel::result::Error>`. A macro because multi-row `INSERT` is not
/// available on diesel's `MultiConnection`: it has to be issued on the concrete connection,
/// whose two types a generic function could only name with a wall of trait bounds.
#[macro_export]
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let conn: &mut $crate::DbConn = $conn;
        let mut result: ::std::result::Result<usize, ::diesel::result::Error> = Ok(0);
        for chunk in $rows.chunks($crate::INSERT_CHUNK_ROWS) {
            let insert = ::diesel::insert_into($table).values(chunk);
            let inserted = match &mut *conn {
                $crate::DbConn::Postgres(pg) => ::diesel::RunQueryDsl::execute(insert, pg),
                $crate::DbConn::Sqlite(sqlite) => ::diesel::RunQueryDsl::execute(insert, sqlite),
            };
            match inserted {
                Ok(n) => result = result.map(|total| total + n),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        result
    }};
}
