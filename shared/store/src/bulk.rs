//! Set-based statements for PostgreSQL whose text does not depend on how many rows they carry.
//!
//! A multi-row `VALUES` list is a new statement for every batch size, and its values are
//! parsed, analysed and planned again every time: on the exchange's write path that cost
//! PostgreSQL as much as executing the statements. [`Columns`] instead binds one array per
//! column (`unnest($1, $2, ...)`), so each statement has one short fixed text.
//!
//! Statements without a choice of plan (`INSERT ... SELECT * FROM unnest(...)`) are prepared
//! once per connection. Statements that join the arrays to a table are marked
//! [`Columns::replanned`]: planned for their actual arguments at every execution, because a
//! generic plan made once (while the table was still small, say) can keep scanning the whole
//! table for the life of the connection. (`plan_cache_mode = force_custom_plan` would do that
//! for the session, but also for the plans of foreign key checks, which then cost twice as
//! much.)
//!
//! An `UPDATE ... FROM unnest(...)` applies one array row per target row: callers pass each
//! id once (their rows come from maps keyed by id).
//!
//! SQLite keeps multi-row `VALUES` (it parses in-process, so there is nothing to save).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One column of a batch, as an array bound to one parameter. Text is borrowed from the
/// caller's rows: nothing is copied per row on the write path.
#[derive(Debug, Clone)]
pub enum Column<'a> {
    BigInt(Vec<i64>),
    NullableBigInt(Vec<Option<i64>>),
    Integer(Vec<i32>),
    Text(Vec<&'a str>),
    NullableText(Vec<Option<&'a str>>),
}

/// A statement with a fixed text whose `?` marks are bound, in order, to the given columns.
///
/// ```ignore
/// Columns::new("UPDATE holds SET remaining_atoms = holds.remaining_atoms - u.atoms \
///               FROM unnest(?, ?) AS u (id, atoms) WHERE holds.id = u.id")
///     .bind(Column::BigInt(ids))
///     .bind(Column::BigInt(atoms))
///     .execute(pg)?;
/// ```
#[derive(Debug, Clone)]
pub struct Columns<'a> {
    sql: &'static str,
    columns: Vec<Column<'a>>,
    replanned: bool,
}

impl<'a> Columns<'a> {
    /// `sql` is a constant (it names the prepared statement); only arrays are bound into it.
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            columns: Vec::new(),
            replanned: false,
        }
    }

    /// Not prepared: parsed and planned for its arguments at every execution (see the module
    /// documentation). For statements whose best plan depends on the number of rows.
    pub fn replanned(mut self) -> Self {
        self.replanned = true;
        self
    }

    pub fn bind(mut self, column: Column<'a>) -> Self {
        self.columns.push(column);
        self
    }
}

impl QueryFragment<Pg> for Columns<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.replanned {
            out.unsafe_to_cache_prepared();
        }
        let mut parts = self.sql.split('?');
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        let mut columns = self.columns.iter();
        for part in parts {
            let column = columns.next().ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    "more ? in the statement than columns bound".into(),
                )
            })?;
            match column {
                Column::BigInt(values) => out.push_bind_param::<Array<BigInt>, _>(values)?,
                Column::NullableBigInt(values) => {
                    out.push_bind_param::<Array<Nullable<BigInt>>, _>(values)?;
                }
                Column::Integer(values) => out.push_bind_param::<Array<Integer>, _>(values)?,
                Column::Text(values) => out.push_bind_param::<Array<Text>, _>(values)?,
                Column::NullableText(values) => {
                    out.push_bind_param::<Array<Nullable<Text>>, _>(values)?;
                }
            }
            out.push_sql(part);
        }
        if columns.next().is_some() {
            return Err(diesel::result::Error::QueryBuilderError(
                "more columns bound than ? in the statement".into(),
            ));
        }
        Ok(())
    }
}

/// No static id: diesel's statement cache then keys the prepared statement by its text, which
/// is the same for every batch.
impl QueryId for Columns<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows are read by name, like `sql_query`'s.
impl Query for Columns<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for Columns<'_> {}
