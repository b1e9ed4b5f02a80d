//! Full-text search over listings: the words of a query, and the index query each backend
//! runs. Pure but for [`search_ids`], which reads the index.
//!
//! SQLite keeps an FTS5 table (porter stemming over unicode61 tokens, ranked by bm25 with the
//! title weighted ten times the description); PostgreSQL a generated `tsvector` (English
//! stemming, title weighted A) under a GIN index, ranked by `ts_rank`. On both, every word of
//! the query must match and the last one matches as a prefix, so "sourdo" finds "sourdough"
//! as the user types. Stemming differs a little between the two (Porter's English stemmer on
//! both, with PostgreSQL also dropping English stop words).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use scrip_store::DbConn;

/// At most this many words of a query are searched for.
pub const MAX_WORDS: usize = 8;
/// Longer words are cut here (no real word is longer; it bounds the index lookups).
const MAX_WORD_CHARS: usize = 40;

/// The words of a search: letters and digits, lower case, at most [`MAX_WORDS`]. Everything
/// else (quotes, operators, punctuation) only separates words, so no input can be read as
/// index syntax.
pub fn words(query: &str) -> Vec<String> {
    // Lower case first: lowering some letters makes marks that are no letters ("İ").
    query
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect::<String>())
        .take(MAX_WORDS)
        .collect()
}

/// How the words combine: a search needs every word (the last as a prefix); matching
/// listings of the other kind needs any word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    All,
    Any,
}

/// The FTS5 `MATCH` expression for `words` (each quoted, so it is a plain term).
pub fn fts5_expression(words: &[String], combine: Combine) -> String {
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| match combine {
            Combine::All if i == last => format!("\"{w}\"*"),
            _ => format!("\"{w}\""),
        })
        .collect();
    match combine {
        Combine::All => terms.join(" "),
        Combine::Any => terms.join(" OR "),
    }
}

/// The PostgreSQL `to_tsquery` text for `words` (letters and digits only, so nothing in it
/// is an operator but the ones put here).
pub fn tsquery_text(words: &[String], combine: Combine) -> String {
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| match combine {
            Combine::All if i == last => format!("{w}:*"),
            _ => w.clone(),
        })
        .collect();
    match combine {
        Combine::All => terms.join(" & "),
        Combine::Any => terms.join(" | "),
    }
}

/// What else a search is narrowed by.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub kind: Option<&'static str>,
    pub category: Option<String>,
    pub holder_id: Option<i64>,
    /// Listings priced in, or accepting, this currency.
    pub currency_id: Option<i64>,
    /// Leave out this holder's listings (matches are never one's own).
    pub not_holder_id: Option<i64>,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A SQL text with its placeholders numbered for the backend (`?` or `$n`).
struct Sql {
    text: String,
    postgres: bool,
    binds: usize,
}

impl Sql {
    fn placeholder(&mut self) -> String {
        self.binds += 1;
        if self.postgres {
            format!("${}", self.binds)
        } else {
            "?".to_owned()
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// Binds in order: the match text first, then the filters that are set, then limit and offset.
enum Bind {
    Text(String),
    Int(i64),
}

/// The ids of open listings matching `words`, best first (ties newest first), `limit` from
/// `offset` on.
pub fn search_ids(
    conn: &mut DbConn,
    words: &[String],
    combine: Combine,
    filters: &Filters,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<i64>> {
    let postgres = matches!(conn, DbConn::Postgres(_));
    let mut sql = Sql {
        text: String::new(),
        postgres,
        binds: 0,
    };
    let mut binds = Vec::new();
    let rank_order = if postgres {
        let p = sql.placeholder();
        sql.push(&format!(
            "SELECT l.id AS id FROM listings l, to_tsquery('english', {p}) query \
             WHERE l.search @@ query"
        ));
        binds.push(Bind::Text(tsquery_text(words, combine)));
        "ts_rank(l.search, query) DESC"
    } else {
        let p = sql.placeholder();
        sql.push(&format!(
            "SELECT l.id AS id FROM listings_fts JOIN listings l ON l.id = listings_fts.rowid \
             WHERE listings_fts MATCH {p}"
        ));
        binds.push(Bind::Text(fts5_expression(words, combine)));
        "bm25(listings_fts, 10.0, 1.0)"
    };
    sql.push(" AND l.status = 'open'");
    if let Some(kind) = filters.kind {
        let p = sql.placeholder();
        sql.push(&format!(" AND l.kind = {p}"));
        binds.push(Bind::Text(kind.to_owned()));
    }
    if let Some(category) = &filters.category {
        let p = sql.placeholder();
        sql.push(&format!(" AND l.category = {p}"));
        binds.push(Bind::Text(category.clone()));
    }
    if let Some(holder) = filters.holder_id {
        let p = sql.placeholder();
        sql.push(&format!(" AND l.holder_id = {p}"));
        binds.push(Bind::Int(holder));
    }
    if let Some(holder) = filters.not_holder_id {
        let p = sql.placeholder();
        sql.push(&format!(" AND l.holder_id <> {p}"));
        binds.push(Bind::Int(holder));
    }
    if let Some(currency) = filters.currency_id {
        let (a, b) = (sql.placeholder(), sql.placeholder());
        sql.push(&format!(
            " AND (l.price_currency_id = {a} OR EXISTS (SELECT 1 FROM listing_currencies c \
             WHERE c.listing_id = l.id AND c.currency_id = {b}))"
        ));
        binds.push(Bind::Int(currency));
        binds.push(Bind::Int(currency));
    }
    let (lim, off) = (sql.placeholder(), sql.placeholder());
    sql.push(&format!(
        " ORDER BY {rank_order}, l.id DESC LIMIT {lim} OFFSET {off}"
    ));
    binds.push(Bind::Int(limit));
    binds.push(Bind::Int(offset));
    let mut query = diesel::sql_query(sql.text).into_boxed();
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind::<Text, _>(text),
            Bind::Int(int) => query.bind::<BigInt, _>(int),
        };
    }
    Ok(query
        .load::<Found>(conn)?
        .into_iter()
        .map(|f| f.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_are_letters_and_digits_lower_case() {
        assert_eq!(
            words("Sourdough BREAD, 2kg!"),
            ["sourdough", "bread", "2kg"]
        );
        assert_eq!(words("\"a\" OR b* NEAR(c)"), ["a", "or", "b", "near", "c"]);
        assert_eq!(words("Café crème"), ["café", "crème"]);
        assert!(words(" -- ** ").is_empty());
        assert_eq!(words("a b c d e f g h i j").len(), MAX_WORDS);
    }

    #[test]
    fn the_last_word_of_a_search_is_a_prefix() {
        let w = words("fresh sourdo");
        assert_eq!(fts5_expression(&w, Combine::All), "\"fresh\" \"sourdo\"*");
        assert_eq!(tsquery_text(&w, Combine::All), "fresh & sourdo:*");
        assert_eq!(fts5_expression(&w, Combine::Any), "\"fresh\" OR \"sourdo\"");
        assert_eq!(tsquery_text(&w, Combine::Any), "fresh | sourdo");
    }

    proptest! {
        /// Whatever is typed, the index sees only quoted words and its own operators.
        #[test]
        fn no_input_reaches_the_index_as_syntax(query in ".{0,200}") {
            for word in words(&query) {
                prop_assert!(!word.is_empty());
                prop_assert!(word.chars().all(char::is_alphanumeric));
                prop_assert!(word.chars().count() <= MAX_WORD_CHARS);
            }
            let w = words(&query);
            let fts = fts5_expression(&w, Combine::All);
            prop_assert_eq!(fts.matches('"').count(), 2 * w.len());
        }
    }
}
