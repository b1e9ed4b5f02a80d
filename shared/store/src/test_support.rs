//! Isolated databases for tests: a fresh SQLite file or a fresh PostgreSQL database per test,
//! migrated and dropped afterwards. PostgreSQL is never optional: when it cannot be reached the
//! test fails with a message saying how to start it, it does not skip.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::{Backend, DatabaseUrl, DbPool, connect_and_migrate};

/// Where the tests find PostgreSQL: `SCRIP_TEST_POSTGRES_URL`, else the local server.
pub fn postgres_admin_url() -> String {
    std::env::var("SCRIP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);
static REAP_STALE: Once = Once::new();
const PREFIX: &str = "scrip_t_";

/// A migrated, empty database that is deleted when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: DatabaseUrl,
    pub pool: DbPool,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteFile(std::path::PathBuf),
    PostgresDatabase(String),
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres(),
        }
    }

    pub fn sqlite() -> Self {
        let name = unique_name();
        let path = std::env::temp_dir().join(format!("{name}.db"));
        let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("sqlite url");
        let pool = connect_and_migrate(&url, 16).expect("migrate a fresh SQLite database");
        Self {
            url,
            pool,
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    pub fn postgres() -> Self {
        let admin_url = postgres_admin_url();
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required by this test and is not reachable at {admin_url}: {e}. \
                 Start it (pg_ctlcluster <version> main start) or set SCRIP_TEST_POSTGRES_URL."
            )
        });
        REAP_STALE.call_once(|| reap_stale_databases(&mut admin));
        let name = unique_name();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create a test database");
        let url = DatabaseUrl::parse(&replace_database(&admin_url, &name)).expect("pg url");
        let pool = connect_and_migrate(&url, 24).expect("migrate a fresh PostgreSQL database");
        Self {
            url,
            pool,
            cleanup: Cleanup::PostgresDatabase(name),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase(name) => {
                if let Ok(mut admin) = PgConnection::establish(&postgres_admin_url()) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin);
                }
            }
        }
    }
}

fn unique_name() -> String {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}_{n}", std::process::id())
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, _query) = url.split_once('?').unwrap_or((url, ""));
    match base.rsplit_once('/') {
        Some((server, _old)) if server.contains("://") && !server.ends_with('/') => {
            format!("{server}/{database}")
        }
        _ => format!("{}/{database}", base.trim_end_matches('/')),
    }
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Drops test databases left behind by test processes that no longer run (a killed run
/// cannot clean up after itself).
fn reap_stale_databases(admin: &mut PgConnection) {
    let names: Vec<DatabaseName> = diesel::sql_query(format!(
        "SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"
    ))
    .load(admin)
    .unwrap_or_default();
    for DatabaseName { datname } in names {
        let pid = datname
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
                .execute(admin);
        }
    }
}

/// Reverts every applied migration newer than `version` (a migration folder's date and
/// number, `2026-12-01-000007`): for tests that check how a data migration converts rows
/// written under the schema before it.
pub fn revert_migrations_after(
    conn: &mut crate::DbConn,
    version: &str,
) -> Result<(), crate::StoreError> {
    use diesel_migrations::MigrationHarness;
    let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
    let target = digits(version);
    let failed =
        |e: Box<dyn std::error::Error + Send + Sync>| crate::StoreError::Migrate(e.to_string());
    loop {
        let newest = match conn {
            crate::DbConn::Postgres(pg) => pg.applied_migrations(),
            crate::DbConn::Sqlite(sqlite) => sqlite.applied_migrations(),
        }
        .map_err(failed)?
        .into_iter()
        .map(|v| digits(&v.to_string()))
        .max();
        match newest {
            Some(newest) if newest > target => {}
            _ => return Ok(()),
        }
        match conn {
            crate::DbConn::Postgres(pg) => pg
                .revert_last_migration(crate::pool::POSTGRES_MIGRATIONS)
                .map(drop),
            crate::DbConn::Sqlite(sqlite) => sqlite
                .revert_last_migration(crate::pool::SQLITE_MIGRATIONS)
                .map(drop),
        }
        .map_err(failed)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }
}
