//! Both migration folders must produce the same tables and columns, or the one portable
//! `schema.rs` would be wrong for one of the backends. The listings' full-text index is the one
//! difference by design (an FTS5 table on SQLite, a tsvector column on PostgreSQL).

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use scrip_store::test_support::TestDb;
use scrip_store::{DbConn, run_migrations};

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
}

/// `(table, column, type class, not null)` with types reduced to what diesel sees.
type Shape = BTreeSet<(String, String, &'static str, bool)>;

fn type_class(declared: &str) -> &'static str {
    let lower = declared.to_ascii_lowercase();
    if lower.contains("int") {
        "integer"
    } else if lower.contains("text") || lower.contains("char") {
        "text"
    } else {
        "other"
    }
}

fn shape(conn: &mut DbConn) -> Shape {
    let query = match conn {
        DbConn::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
             CAST(p.\"notnull\" OR p.pk > 0 AS BIGINT) AS not_null \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND m.name NOT LIKE 'listings_fts%' \
             AND m.name <> '__diesel_schema_migrations'"
        }
        DbConn::Postgres(_) => {
            "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT, \
             CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS not_null \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
             AND NOT (table_name = 'listings' AND column_name = 'search')"
        }
    };
    let columns: Vec<Column> = diesel::sql_query(query)
        .load(conn)
        .expect("read the catalog");
    columns
        .into_iter()
        .map(|c| {
            (
                c.table_name,
                c.column_name,
                type_class(&c.data_type),
                c.not_null != 0,
            )
        })
        .collect()
}

#[test]
fn both_backends_have_the_same_tables_and_columns() {
    let sqlite = TestDb::sqlite();
    let postgres = TestDb::postgres();
    let sqlite_shape = shape(&mut sqlite.pool.get().expect("sqlite conn"));
    let postgres_shape = shape(&mut postgres.pool.get().expect("pg conn"));
    assert!(
        sqlite_shape.len() > 30,
        "the catalog query found the tables"
    );
    assert!(
        !sqlite_shape.iter().any(|c| c.2 == "other"),
        "{sqlite_shape:?}"
    );
    let only_sqlite: Vec<_> = sqlite_shape.difference(&postgres_shape).collect();
    let only_postgres: Vec<_> = postgres_shape.difference(&sqlite_shape).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "schemas differ\nonly in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_postgres:#?}"
    );
}

#[test]
fn migrations_are_idempotent_on_both_backends() {
    for db in [TestDb::sqlite(), TestDb::postgres()] {
        let mut conn = db.pool.get().expect("conn");
        run_migrations(&mut conn).expect("second run of the migrations is a no-op");
    }
}

/// The migration folders of both backends, by name.
fn migration_names(backend: &str) -> BTreeSet<String> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("read {}: {e}", folder.display()))
        .map(|entry| {
            entry
                .expect("a migration folder")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_names() {
    let sqlite = migration_names("sqlite");
    let postgres = migration_names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "each migration needs a folder of the same name in migrations/sqlite and migrations/postgres"
    );
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Granules {
    #[diesel(sql_type = BigInt)]
    granule_value_e16: i64,
    #[diesel(sql_type = BigInt)]
    gross_before_granules: i64,
    #[diesel(sql_type = BigInt)]
    cleared_granules: i64,
    #[diesel(sql_type = BigInt)]
    gross_after_granules: i64,
    #[diesel(sql_type = BigInt)]
    settlement_granules: i64,
}

/// Runs recorded with decimal strings are converted exactly to granules of 10^-8 of the unit.
#[test]
fn clearing_amounts_recorded_as_text_become_exact_granules() {
    for db in [TestDb::sqlite(), TestDb::postgres()] {
        let mut conn = db.pool.get().expect("conn");
        // The schema as it was before `clearing_granules`.
        scrip_store::test_support::revert_migrations_after(&mut conn, "2026-11-23-000006")
            .expect("revert");
        diesel::sql_query(
            "INSERT INTO principals (id, handle, kind, created_at_us) VALUES (101, 'shopa', 'business', 0), \
             (102, 'shopb', 'business', 0)",
        )
        .execute(&mut conn)
        .expect("principals");
        diesel::sql_query(
            "INSERT INTO clearing_runs (id, unit, dry_run, started_at_us, finished_at_us, participants, \
             edges, cycles, gross_before, cleared, gross_after) \
             VALUES (1, 'EUR', 0, 0, 0, 2, 2, 1, '1234.5', '15', '1219.50000001')",
        )
        .execute(&mut conn)
        .expect("a run as text");
        diesel::sql_query(
            "INSERT INTO clearing_settlements (run_id, debtor_id, creditor_id, amount, source) \
             VALUES (1, 101, 102, '7.25', 'obligation')",
        )
        .execute(&mut conn)
        .expect("a settlement as text");
        run_migrations(&mut conn).expect("migrate forward");
        let converted: Vec<Granules> = diesel::sql_query(
            "SELECT r.granule_value_e16, r.gross_before_granules, r.cleared_granules, \
             r.gross_after_granules, s.granules AS settlement_granules \
             FROM clearing_runs r JOIN clearing_settlements s ON s.run_id = r.id",
        )
        .load(&mut conn)
        .expect("read back");
        assert_eq!(
            converted,
            vec![Granules {
                granule_value_e16: 100_000_000,
                gross_before_granules: 123_450_000_000,
                cleared_granules: 1_500_000_000,
                gross_after_granules: 121_950_000_001,
                settlement_granules: 725_000_000,
            }]
        );
    }
}

/// A recorded figure with more decimals than the conversion keeps stops the migration rather
/// than losing digits.
#[test]
fn a_clearing_figure_that_would_lose_digits_stops_the_migration() {
    for db in [TestDb::sqlite(), TestDb::postgres()] {
        let mut conn = db.pool.get().expect("conn");
        scrip_store::test_support::revert_migrations_after(&mut conn, "2026-11-23-000006")
            .expect("revert");
        diesel::sql_query(
            "INSERT INTO clearing_runs (id, unit, dry_run, started_at_us, finished_at_us, participants, \
             edges, cycles, gross_before, cleared, gross_after) \
             VALUES (1, 'EUR', 1, 0, 0, 2, 2, 1, '1.000000001', '0', '1.000000001')",
        )
        .execute(&mut conn)
        .expect("a run as text");
        assert!(
            run_migrations(&mut conn).is_err(),
            "the migration must refuse"
        );
    }
}
