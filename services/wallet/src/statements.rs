//! `GET /api/v1/statements`: one account's statement as CSV, for an accountant: every line in
//! a date range with its signed amount (received +, paid -), fees apart, and the running
//! balance, starting from the balance the account had when the range begins.

use actix_web::{HttpResponse, get, web};
use scrip_auth::Caller;
use scrip_auth::guard::view_as;
use scrip_domain::{Amount, PrincipalId, RegistryId, Scale};
use scrip_http::{ApiError, Problem, blocking, now_us, rfc3339_from_us, us_from_rfc3339};
use scrip_ledger::{
    JournalEntry, Ledger, TransferKind, account, account_lines, account_moved_since,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// Most lines one statement carries; a longer range is refused (narrow it) rather than read
/// into memory whole.
pub const MAX_LINES: i64 = 10_000;
/// The range when none is given: the last 30 days.
const DEFAULT_DAYS_US: i64 = 30 * 24 * 3_600 * 1_000_000;

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatementQuery {
    /// A business the caller owns (or `registry` for operators); default the caller.
    pub holder: Option<String>,
    /// The currency (a running balance is in one currency).
    pub currency: String,
    /// Start, inclusive: RFC 3339 or a date (midnight UTC); default 30 days before `to`.
    pub from: Option<String>,
    /// End, exclusive: RFC 3339 or a date; default now.
    pub to: Option<String>,
}

fn parse_bound(raw: Option<&str>, field: &str) -> Result<Option<i64>, ApiError> {
    raw.map(|text| {
        us_from_rfc3339(text).ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("{field} must be a date (2026-12-01) or an RFC 3339 time, not {text:?}"),
            )
        })
    })
    .transpose()
}

#[utoipa::path(
    get, path = "/api/v1/statements", tag = "wallet", params(StatementQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/csv", description = "date,kind,counterparty,memo,amount,fee,balance,transfer_id: an opening line, then every line oldest first"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown_account"),
        (status = 422, body = Problem, description = "invalid_request (a bad from/to, or from after to); too_many_lines (more than 10,000: narrow the range)"),
    )
)]
#[get("/api/v1/statements")]
pub async fn statement(
    caller: Caller,
    query: web::Query<StatementQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let to_us = parse_bound(query.to.as_deref(), "to")?.unwrap_or_else(now_us);
    let from_us = parse_bound(query.from.as_deref(), "from")?.unwrap_or(to_us - DEFAULT_DAYS_US);
    if from_us > to_us {
        return Err(ApiError::invalid_field("from", "from must not be after to"));
    }
    let (name, csv) = blocking(move || {
        let mut conn = ledger.conn()?;
        let holder = view_as(&mut conn, &caller, query.holder.as_deref(), &registry)?;
        let currency = scrip_auth::guard::currency(&mut conn, &query.currency, "unknown_account")?;
        let Some(held) = account(&mut conn, holder.id, currency.id)? else {
            return Err(ApiError::not_found(
                "unknown_account",
                format!("{} has never held {}", holder.handle, currency.code),
            ));
        };
        let account_id = held.id.get();
        let lines = account_lines(&mut conn, account_id, (from_us, to_us), MAX_LINES + 1)?;
        if lines.len() > usize::try_from(MAX_LINES).unwrap_or(usize::MAX) {
            return Err(ApiError::unprocessable(
                "too_many_lines",
                format!("more than {MAX_LINES} lines in that range: ask for a shorter one"),
            ));
        }
        let opening = held.balance.atoms() - account_moved_since(&mut conn, account_id, from_us)?;
        let sheet = Sheet {
            holder: holder.id,
            scale: currency.scale,
            opening_atoms: opening,
        };
        let name = format!("scrip-{}-{}.csv", holder.handle, currency.code);
        Ok((name, sheet.render(from_us, &lines)))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(csv))
}

/// The pure part: journal lines to CSV with a running balance.
struct Sheet {
    holder: PrincipalId,
    scale: Scale,
    opening_atoms: i64,
}

impl Sheet {
    fn render(&self, from_us: i64, lines: &[JournalEntry]) -> String {
        let money = |atoms: i64| Amount::from_atoms(atoms, self.scale).to_string();
        let mut out =
            String::from("date,kind,counterparty,memo,amount,fee,balance,transfer_id\r\n");
        let mut balance = self.opening_atoms;
        out.push_str(&scrip_http::csv_row(&[
            &rfc3339_from_us(from_us),
            "opening",
            "",
            "",
            "",
            "",
            &money(balance),
            "",
        ]));
        for line in lines {
            let t = &line.transfer;
            let incoming = line.to_principal == self.holder;
            let signed = if incoming {
                t.amount.atoms()
            } else {
                -t.amount.atoms()
            };
            balance += signed;
            // The other side of a trade is never named (API.md): "exchange".
            let counterparty = match (t.kind, incoming) {
                (TransferKind::Trade, _) => "exchange".to_owned(),
                (_, true) => line.from.to_string(),
                (_, false) => line.to.to_string(),
            };
            let (amount, fee) = if matches!(t.kind, TransferKind::Fee | TransferKind::TransferFee) {
                (String::new(), money(signed))
            } else {
                (money(signed), String::new())
            };
            out.push_str(&scrip_http::csv_row(&[
                &rfc3339_from_us(t.created_at_us),
                t.kind.as_str(),
                &counterparty,
                t.memo.as_deref().unwrap_or(""),
                &amount,
                &fee,
                &money(balance),
                &t.id.to_string(),
            ]));
        }
        out
    }
}
