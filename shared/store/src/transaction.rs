use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::DbConn;

/// Runs `work` in a write transaction and commits when it returns `Ok`.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front:
/// a deferred transaction that reads and then writes can fail with `SQLITE_BUSY` without
/// waiting, which `busy_timeout` cannot help. PostgreSQL uses a plain `BEGIN` (read committed);
/// the ledger's conditional updates and ordered row locks make that sufficient.
/// Nested calls become savepoints on both backends.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DieselError>,
{
    let nested = <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(E::from)?
        .is_some();
    match conn {
        DbConn::Sqlite(sqlite) if !nested => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        }
        _ => <DbConn as Connection>::TransactionManager::begin_transaction(conn)?,
    }
    match work(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(error)
        }
    }
}

/// Whether an error means "the same transaction may succeed if tried again": a serialization
/// failure or deadlock on PostgreSQL, a busy or locked database on SQLite. These never reach a
/// caller of the ledger; it retries them.
pub fn is_retryable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("deadlock detected")
                || message.contains("could not serialize access")
                || message.contains("database is locked")
                || message.contains("database table is locked")
        }
        _ => false,
    }
}
