//! `GET /api/v1/currencies/{code}/holders`: who holds a business's currency and how much,
//! largest first, for the business's owners (and operators). Holders are customers: nobody
//! else may list them.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_auth::access::is_operator;
use scrip_domain::Amount;
use scrip_http::{ApiError, PageQuery, Problem, blocking};
use scrip_ledger::{Ledger, LedgerError};
use scrip_store::schema::{accounts, principals};

use crate::dto::{HolderPage, HolderView};
use crate::handlers::{find_currency, require_owner};

/// Where a page of holders continues: after this balance and account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    balance_atoms: i64,
    account_id: i64,
}

impl Cursor {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let bad =
            || ApiError::unprocessable("bad_cursor", "the cursor is not one this API gave out");
        let (balance, id) = raw.split_once('_').ok_or_else(bad)?;
        Ok(Self {
            balance_atoms: balance.parse().map_err(|_| bad())?,
            account_id: id.parse().map_err(|_| bad())?,
        })
    }

    fn render(self) -> String {
        format!("{}_{}", self.balance_atoms, self.account_id)
    }
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/holders", tag = "issuer", params(("code" = String, Path), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = HolderPage, description = "holders with a balance or a hold, largest balance first; the issuer's own account is not listed"),
        (status = 403, body = Problem, description = "not_owner: only the issuer's owners (and operators) see its holders"),
        (status = 404, body = Problem, description = "not_found"),
    )
)]
#[get("/api/v1/currencies/{code}/holders")]
pub async fn list_holders(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let after = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        if !is_operator(&mut conn, caller.id)? {
            require_owner(&mut conn, &issuer, &caller)?;
        }
        let mut rows = accounts::table
            .inner_join(principals::table.on(principals::id.eq(accounts::principal_id)))
            .filter(accounts::currency_id.eq(currency.id.get()))
            .filter(accounts::principal_id.ne(issuer.id.get()))
            .filter(accounts::balance_atoms.ne(0).or(accounts::held_atoms.ne(0)))
            .order((accounts::balance_atoms.desc(), accounts::id.asc()))
            .limit(limit + 1)
            .select((
                principals::handle,
                accounts::balance_atoms,
                accounts::held_atoms,
                accounts::id,
                accounts::frozen,
            ))
            .into_boxed();
        if let Some(after) = after {
            rows = rows.filter(
                accounts::balance_atoms
                    .lt(after.balance_atoms)
                    .or(accounts::balance_atoms
                        .eq(after.balance_atoms)
                        .and(accounts::id.gt(after.account_id))),
            );
        }
        let mut rows: Vec<(String, i64, i64, i64, i32)> =
            rows.load(&mut conn).map_err(LedgerError::from)?;
        let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = more
            .then(|| {
                rows.last().map(|&(_, balance_atoms, _, account_id, _)| {
                    Cursor {
                        balance_atoms,
                        account_id,
                    }
                    .render()
                })
            })
            .flatten();
        let amount = |atoms| Amount::from_atoms(atoms, currency.scale).to_string();
        Ok(HolderPage {
            items: rows
                .into_iter()
                .map(|(holder, balance, held, _, frozen)| HolderView {
                    holder,
                    balance: amount(balance),
                    held: amount(held),
                    frozen: frozen != 0,
                })
                .collect(),
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_refuses_anything_else() {
        let cursor = Cursor {
            balance_atoms: -5,
            account_id: 42,
        };
        assert_eq!(Cursor::parse(&cursor.render()).ok(), Some(cursor));
        for bad in ["", "12", "a_1", "1_b", "_"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
