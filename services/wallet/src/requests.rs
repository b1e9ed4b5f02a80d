//! Payment requests: a till (the owner or a worker of a business), or anyone asking to be
//! paid, makes a request for an amount; its QR code opens the page that pays it; the request
//! is paid at most once, never after it expired, and anyone holding its id can see whether it
//! was paid. Paying claims the request and makes the transfer in one transaction
//! ([`scrip_ledger::requests::claim`]).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use scrip_auth::Caller;
use scrip_auth::access::role_in;
use scrip_auth::guard::{act_as, resolve};
use scrip_domain::{Amount, PrincipalId, RegistryId};
use scrip_http::{
    ApiError, OptionalJson, Problem, blocking, idempotency_key, idempotent_response, now_us,
    request_hash, rfc3339_from_us,
};
use scrip_ledger::{
    Currency, Idempotent, Ledger, LedgerError, Principal, StoredResponse, TransferKind,
    TransferRequest, currency_by_id, principal_by_id,
};
use scrip_notify::Event;
use scrip_store::DbConn;

use crate::WalletContext;
use crate::dto::{NewPaymentRequest, PayRequest, PaymentRequestView, PaymentView};
use scrip_ledger::requests::{self as store, MAX_OPEN_PER_RECIPIENT, NewRequest, RequestRow};

/// A till's sale: long enough to find a phone, short enough that a forgotten QR dies.
const DEFAULT_EXPIRY_S: u32 = 900;
const EXPIRY_RANGE_S: std::ops::RangeInclusive<u32> = 30..=2_592_000;

#[utoipa::path(
    post, path = "/api/v1/payment-requests", tag = "wallet", request_body = NewPaymentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = PaymentRequestView),
        (status = 403, body = Problem, description = "not_owner: the caller neither is `to` nor owns or works for it"),
        (status = 404, body = Problem, description = "unknown_account: no such handle or currency"),
        (status = 409, body = Problem, description = "too_many_requests: the recipient has 500 open requests"),
        (status = 422, body = Problem, description = "bad_amount, bad_expiry, bad_memo, not_payable"),
    )
)]
#[post("/api/v1/payment-requests")]
pub async fn create_request(
    caller: Caller,
    http: HttpRequest,
    body: scrip_http::Json<NewPaymentRequest>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    wallet: web::Data<WalletContext>,
) -> Result<HttpResponse, ApiError> {
    wallet.payment_limiter.check(&caller.id.to_string()).await?;
    let base = base_url(&http);
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let now = now_us();
        let asked = prepare_request(&mut conn, &caller, &body, &registry, now)?;
        let open = store::open_count(&mut conn, asked.to.id, now)?;
        // The write takes a connection of its own: this one goes back first, so concurrent
        // requests never hold one each while waiting for a second. (The cap is checked
        // outside the write: concurrent creates may pass it by a few, which bounds as well.)
        drop(conn);
        if open >= MAX_OPEN_PER_RECIPIENT {
            return Err(ApiError::conflict(
                "too_many_requests",
                format!(
                    "{} has {MAX_OPEN_PER_RECIPIENT} open payment requests, the most it may; \
                     wait for some to be paid or expire",
                    asked.to.handle
                ),
            ));
        }
        let id = store::new_id();
        let row = ledger.write(|conn| {
            store::insert(
                conn,
                &NewRequest {
                    id: &id,
                    to: asked.to.id,
                    currency: asked.currency.id,
                    amount_atoms: asked.amount.atoms(),
                    memo: asked.memo.as_deref(),
                    created_by: caller.id,
                    now_us: now,
                    expires_at_us: asked.expires_at_us,
                },
            )
        })?;
        Ok(request_view(
            &row,
            &asked.to,
            &asked.currency,
            &base,
            now,
            None,
        ))
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A new request checked against the database.
struct Asked {
    to: Principal,
    currency: Currency,
    amount: Amount,
    memo: Option<String>,
    expires_at_us: i64,
}

fn prepare_request(
    conn: &mut DbConn,
    caller: &Caller,
    body: &NewPaymentRequest,
    registry: &RegistryId,
    now: i64,
) -> Result<Asked, ApiError> {
    let to = resolve(conn, &body.to, registry)?;
    if !is_requester(conn, caller.id, &to)? {
        return Err(ApiError::forbidden(
            "not_owner",
            format!(
                "{} may not ask for payments to {}: only it, its owners and its workers may",
                caller.handle, to.handle
            ),
        ));
    }
    scrip_ledger::rules::may_be_paid(to.kind)?;
    let currency = scrip_auth::guard::currency(conn, &body.currency, "unknown_account")?;
    let amount = Amount::parse_positive(&body.amount, currency.scale)
        .map_err(|e| ApiError::unprocessable("bad_amount", e.to_string()))?;
    let expires_in_s = body.expires_in_s.unwrap_or(DEFAULT_EXPIRY_S);
    if !EXPIRY_RANGE_S.contains(&expires_in_s) {
        return Err(ApiError::unprocessable(
            "bad_expiry",
            "expires_in_s is from 30 seconds to 2,592,000 (30 days)",
        ));
    }
    Ok(Asked {
        to,
        currency,
        amount,
        memo: scrip_http::memo(body.memo.as_deref())?,
        expires_at_us: now + i64::from(expires_in_s) * 1_000_000,
    })
}

/// Whether `who` asks for payments to `to` (and so sees who paid): `to` itself, or one of
/// its owners or workers.
fn is_requester(conn: &mut DbConn, who: PrincipalId, to: &Principal) -> Result<bool, ApiError> {
    Ok(who == to.id || role_in(conn, to.id, who)?.is_some())
}

/// `scheme://host` as the client reached this server, for the request's pay page link.
fn base_url(http: &HttpRequest) -> String {
    let info = http.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn request_view(
    row: &RequestRow,
    to: &Principal,
    currency: &Currency,
    base: &str,
    now: i64,
    paid_by: Option<String>,
) -> PaymentRequestView {
    PaymentRequestView {
        id: row.id.clone(),
        to: to.handle.to_string(),
        currency: currency.code.to_string(),
        amount: Amount::from_atoms(row.amount_atoms, currency.scale).to_string(),
        memo: row.memo.clone(),
        status: row.status(now).as_str().to_owned(),
        url: format!("{base}/pay/{}", row.id),
        created_at: rfc3339_from_us(row.created_at_us),
        expires_at: rfc3339_from_us(row.expires_at_us),
        paid_at: row.paid_at_us.map(rfc3339_from_us),
        payment_id: row.transfer_id.map(|id| id.to_string()),
        paid_by,
    }
}

fn no_such_request() -> ApiError {
    ApiError::not_found("not_found", "no such payment request")
}

#[utoipa::path(
    get, path = "/api/v1/payment-requests/{id}", tag = "wallet",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = PaymentRequestView, description = "public: what the QR shows; `paid_by` only for the requester"),
        (status = 404, body = Problem, description = "not_found"),
    )
)]
#[get("/api/v1/payment-requests/{id}")]
pub async fn get_request(
    caller: Option<Caller>,
    http: HttpRequest,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&http);
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let row = store::find(&mut conn, &path)?.ok_or_else(no_such_request)?;
        let to = principal_by_id(&mut conn, row.to())?;
        let currency = currency_by_id(&mut conn, row.currency())?;
        let paid_by = match (row.paid_by, caller) {
            (Some(payer), Some(caller)) if is_requester(&mut conn, caller.id, &to)? => Some(
                principal_by_id(&mut conn, PrincipalId::new(payer))?
                    .handle
                    .to_string(),
            ),
            _ => None,
        };
        Ok(request_view(&row, &to, &currency, &base, now_us(), paid_by))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A request paid: the payment as the payer sees it, and what to tell the recipient.
struct Paid {
    view: PaymentView,
    to: Principal,
}

#[utoipa::path(
    post, path = "/api/v1/payment-requests/{id}/pay", tag = "wallet", request_body = Option<PayRequest>,
    security(("bearer" = [])),
    params(
        ("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first result for the same body"),
    ),
    responses(
        (status = 201, body = PaymentView),
        (status = 403, body = Problem, description = "not_owner: `from` is not the caller or a business it owns"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "already_paid, idempotency_conflict"),
        (status = 422, body = Problem, description = "request_expired, insufficient_funds, max_balance_exceeded, no_route (another currency: pay it converted with POST /api/v1/payments and request_id), slippage_exceeded (max_spend is below the amount), same_account"),
        (status = 429, body = Problem, description = "rate_limited"),
    )
)]
#[post("/api/v1/payment-requests/{id}/pay")]
pub async fn pay_request(
    caller: Caller,
    http: HttpRequest,
    path: web::Path<String>,
    body: OptionalJson<PayRequest>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    wallet: web::Data<WalletContext>,
) -> Result<HttpResponse, ApiError> {
    wallet.payment_limiter.check(&caller.id.to_string()).await?;
    let key = idempotency_key(&http)?;
    let id = path.into_inner();
    let body = body.0.unwrap_or_default();
    let hash = request_hash(&format!("POST /api/v1/payment-requests/{id}/pay"), &body);
    let (paid, stored) = blocking(move || {
        let scope = caller.id;
        let mut fresh = None;
        let mut work = |conn: &mut DbConn| {
            Ok(match pay_in(conn, &caller, &id, &body, &registry)? {
                Ok(paid) => {
                    // Written already: failing to store the answer must roll it all back.
                    let stored = stored_response(&paid.view)?;
                    fresh = Some(paid);
                    Ok(stored)
                }
                Err(refused) => Err(refused),
            })
        };
        let outcome = match &key {
            None => ledger.write(&mut work)?.map(Idempotent::Fresh),
            Some(key) => ledger.idempotent_or_refused(scope, key, &hash, &mut work)?,
        }?;
        Ok::<_, ApiError>((fresh, outcome))
    })
    .await?;
    if let (Some(paid), Idempotent::Fresh(_)) = (paid, &stored) {
        wallet.metrics.transfers.inc();
        announce(&wallet, &paid);
    }
    let replayed = matches!(stored, Idempotent::Replayed(_));
    Ok(idempotent_response(stored.response(), replayed))
}

fn stored_response(view: &PaymentView) -> Result<StoredResponse, LedgerError> {
    let body = serde_json::to_string(view)
        .map_err(|e| LedgerError::Invariant(format!("cannot store a payment's answer: {e}")))?;
    Ok(StoredResponse { status: 201, body })
}

/// Pays request `id` inside the caller's transaction. Every refusal (`Ok(Err(..))`) comes
/// before the first write, so committing it changes nothing; a ledger refusal of the transfer
/// is an `Err` and rolls the claim back.
fn pay_in(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    body: &PayRequest,
    registry: &RegistryId,
) -> Result<Result<Paid, ApiError>, LedgerError> {
    let now = now_us();
    let Some(row) = store::find(conn, id)? else {
        return Ok(Err(no_such_request()));
    };
    let currency = currency_by_id(conn, row.currency())?;
    let amount = Amount::from_atoms(row.amount_atoms, currency.scale);
    let payer = match may_pay(conn, caller, &row, body, registry, &currency, amount, now) {
        Ok(payer) => payer,
        Err(refused) => return Ok(Err(refused)),
    };
    if scrip_governance::issuing_needs_approval(conn, &payer, &currency)? {
        return Ok(Err(scrip_governance::needs_approval(
            &payer,
            currency.code.as_str(),
        )));
    }
    if !store::claim(conn, id, payer.id, now)? {
        return Ok(Err(already_paid()));
    }
    let transfer = scrip_ledger::transfer(
        conn,
        &TransferRequest {
            currency: currency.id,
            from: payer.id,
            to: row.to(),
            amount,
            kind: TransferKind::Payment,
            memo: row.memo.clone(),
        },
    )?;
    store::record_transfer(conn, id, transfer.id)?;
    let to = principal_by_id(conn, row.to())?;
    let code = currency.code.to_string();
    Ok(Ok(Paid {
        view: PaymentView {
            id: transfer.id.to_string(),
            request_id: Some(row.id.clone()),
            from: payer.handle.to_string(),
            to: to.handle.to_string(),
            currency: code.clone(),
            amount: amount.to_string(),
            spent: BTreeMap::from([(code, amount.to_string())]),
            trades: Vec::new(),
            memo: row.memo,
            created_at: rfc3339_from_us(transfer.created_at_us),
        },
        to,
    }))
}

fn already_paid() -> ApiError {
    LedgerError::AlreadyPaid.into()
}

/// Who pays, if the request may be paid now as `body` asks.
#[expect(
    clippy::too_many_arguments,
    reason = "the request and what it is checked against"
)]
fn may_pay(
    conn: &mut DbConn,
    caller: &Caller,
    row: &RequestRow,
    body: &PayRequest,
    registry: &RegistryId,
    currency: &Currency,
    amount: Amount,
    now: i64,
) -> Result<Principal, ApiError> {
    row.payable(now)?;
    let payer = act_as(conn, caller, body.from.as_deref(), registry)?;
    let code = currency.code.as_str();
    if let Some(pay_with) = &body.pay_with
        && !pay_with.iter().any(|c| c == code)
    {
        return Err(ApiError::unprocessable(
            "no_route",
            format!(
                "this request is for {code}; to pay it with another currency, converted through \
                 the exchange, use POST /api/v1/payments with request_id"
            ),
        ));
    }
    if let Some(limit) = body.max_spend.as_ref().and_then(|m| m.get(code)) {
        let limit = Amount::parse_non_negative(limit, currency.scale)
            .map_err(|e| ApiError::invalid_field(format!("max_spend.{code}"), e.to_string()))?;
        if limit.atoms() < amount.atoms() {
            return Err(ApiError::unprocessable(
                "slippage_exceeded",
                format!("the request is for {amount} {code}, more than max_spend ({limit} {code})"),
            ));
        }
    }
    Ok(payer)
}

/// Tells the recipient's people that the request was paid (the till waits for this).
fn announce(wallet: &WalletContext, paid: &Paid) {
    let view = &paid.view;
    let to = paid.to.handle.as_str();
    wallet.notifier.publish(
        paid.to.id,
        to,
        &Event::PaymentReceived {
            transfer_id: view.id.clone(),
            from: view.from.clone(),
            currency: view.currency.clone(),
            amount: view.amount.clone(),
            memo: view.memo.clone(),
        },
    );
    if let Some(request_id) = &view.request_id {
        wallet.notifier.publish(
            paid.to.id,
            to,
            &Event::PaymentRequestPaid {
                request_id: request_id.clone(),
                payment_id: view.id.clone(),
                currency: view.currency.clone(),
                amount: view.amount.clone(),
                paid_by: view.from.clone(),
            },
        );
    }
}
