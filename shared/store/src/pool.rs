use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Backend, DatabaseUrl, DbConn, StoreError};

pub(crate) const POSTGRES_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../../migrations/postgres");
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../../migrations/sqlite");

/// SQLite settings applied to every pooled connection. `synchronous = FULL` because an
/// acknowledged transfer must survive a power cut, not just a process crash (invariant 7).
/// `busy_timeout` comes first so the others wait for a lock instead of failing at once.
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 30000; \
     PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON;";
/// Switching to WAL needs the file to itself, so it is done once, before the pool opens
/// (it is a property of the file and persists).
const SQLITE_ONCE: &str = "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL;";

pub type DbPool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Opens connections of the backend named by the URL's scheme.
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        let target = self.url.target();
        let conn = match self.url.backend() {
            Backend::Postgres => DbConn::Postgres(PgConnection::establish(target)?),
            Backend::Sqlite => {
                let mut sqlite = SqliteConnection::establish(target)?;
                sqlite
                    .batch_execute(SQLITE_SETUP)
                    .map_err(r2d2::Error::QueryError)?;
                DbConn::Sqlite(sqlite)
            }
        };
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Builds a pool of at most `max_connections` connections. For SQLite the file's directory
/// is created when missing, so a fresh checkout runs with no set-up.
pub fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<DbPool, StoreError> {
    let sqlite_dir = (url.backend() == Backend::Sqlite)
        .then(|| std::path::Path::new(url.target()).parent())
        .flatten()
        .filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = sqlite_dir {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if url.backend() == Backend::Sqlite {
        let mut first = SqliteConnection::establish(url.target())
            .map_err(|e| StoreError::Migrate(format!("cannot open the SQLite file: {e}")))?;
        first.batch_execute(SQLITE_ONCE)?;
    }
    let pool = r2d2::Pool::builder()
        .max_size(max_connections)
        .min_idle(Some(max_connections.min(2)))
        .connection_timeout(Duration::from_secs(30))
        .build(Manager { url: url.clone() })?;
    Ok(pool)
}

/// Applies every pending migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConn) -> Result<(), StoreError> {
    let result = match conn {
        DbConn::Postgres(pg) => pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop),
        DbConn::Sqlite(sqlite) => sqlite.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
    };
    result.map_err(|e| StoreError::Migrate(e.to_string()))
}

/// The usual start: a pool, with the schema brought up to date.
pub fn connect_and_migrate(url: &DatabaseUrl, max_connections: u32) -> Result<DbPool, StoreError> {
    let pool = connect(url, max_connections)?;
    let mut conn = pool.get()?;
    run_migrations(&mut conn)?;
    Ok(pool)
}
