use actix_web::{HttpRequest, HttpResponse, get, post, web};
use scrip_auth::Caller;
use scrip_auth::access::is_owner;
use scrip_auth::guard::{Sight, act_as, resolve, till_view_as};
use scrip_domain::{Amount, CurrencyCode, CurrencyId, Handle, PrincipalId, RegistryId, TransferId};
use scrip_http::{
    ApiError, Page, PageQuery, Problem, RateLimiter, blocking, idempotency_key,
    idempotent_response, request_hash, rfc3339_from_us,
};
use scrip_ledger::{
    Committer, Idempotent, JournalEntry, Ledger, LedgerError, Lines, StoredResponse, Transfer,
    TransferKind, TransferRequest, holdings, journal_entry, journal_page,
};
use scrip_store::DbConn;
use scrip_telemetry::Metrics;

use crate::dto::{
    AccountList, AccountView, HolderQuery, NewTransfer, NextDemurrage, TransferPage, TransferView,
    TransfersQuery,
};

/// What the wallet needs besides the ledger: the group-commit writer, the payment rate
/// limit, the metrics it counts payments in, and where it tells recipients they were paid.
/// Registered as app data by the binary.
#[derive(Debug)]
pub struct WalletContext {
    pub committer: Committer,
    pub payment_limiter: RateLimiter,
    pub metrics: Metrics,
    pub notifier: scrip_notify::Notifier,
}

#[utoipa::path(
    get, path = "/api/v1/accounts", tag = "wallet", params(HolderQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AccountList),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown_account"),
    )
)]
#[get("/api/v1/accounts")]
pub async fn list_accounts(
    caller: Caller,
    query: web::Query<HolderQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let (holder, _) = till_view_as(&mut conn, &caller, query.holder.as_deref(), &registry)?;
        let held = holdings(&mut conn, holder.id)?;
        let now = scrip_http::now_us();
        let mut items = Vec::with_capacity(held.len());
        for h in held {
            let next_demurrage = next_demurrage(&mut conn, &h, holder.id, now)?;
            items.push(AccountView {
                currency: h.code.to_string(),
                balance: h.account.balance.to_string(),
                held: h.account.held.to_string(),
                available: h.account.available().to_string(),
                floor: h.account.floor.to_string(),
                ceiling: h.account.ceiling.map(|c| c.to_string()),
                frozen: h.account.frozen,
                next_demurrage,
            });
        }
        Ok(AccountList { items })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The next demurrage charge on a holding whose currency has demurrage.
fn next_demurrage(
    conn: &mut DbConn,
    holding: &scrip_ledger::Holding,
    holder: PrincipalId,
    now_us: i64,
) -> Result<Option<NextDemurrage>, ApiError> {
    if !holding.has_demurrage {
        return Ok(None);
    }
    let currency = scrip_ledger::currency_by_id(conn, holding.account.currency_id)?;
    let balance_atoms = holding.account.balance.atoms();
    let next =
        scrip_ledger::demurrage::next_charge(conn, &currency, holder, balance_atoms, now_us)?;
    Ok(next.map(|n| NextDemurrage {
        amount: scrip_domain::Amount::from_atoms(n.due_atoms, currency.scale).to_string(),
        at: rfc3339_from_us(n.at_us),
    }))
}

fn transfer_view(
    transfer: &Transfer,
    from: &Handle,
    to: &Handle,
    code: &CurrencyCode,
) -> TransferView {
    TransferView {
        id: transfer.id.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        currency: code.to_string(),
        amount: transfer.amount.to_string(),
        memo: transfer.memo.clone(),
        kind: transfer.kind.as_str().to_owned(),
        created_at: rfc3339_from_us(transfer.created_at_us),
        fee: transfer.fee.map(|f| f.to_string()),
    }
}

/// A journal entry as `viewers` (the holder whose history it is) see it. The other side of a
/// trade is never shown: both parties see "exchange" there, as API.md asks (a trader learns
/// nothing of who took or made its order).
fn entry_view(entry: &JournalEntry, viewers: &[PrincipalId]) -> TransferView {
    let mut view = transfer_view(&entry.transfer, &entry.from, &entry.to, &entry.code);
    if entry.transfer.kind == TransferKind::Trade {
        if !viewers.contains(&entry.from_principal) {
            view.from = TRADE_COUNTERPARTY.into();
        }
        if !viewers.contains(&entry.to_principal) {
            view.to = TRADE_COUNTERPARTY.into();
        }
    }
    view
}

/// What a trade's other side is shown as.
const TRADE_COUNTERPARTY: &str = "exchange";

/// A payment request checked against the database: everything but the balances.
struct Payment {
    request: TransferRequest,
    from: Handle,
    to: Handle,
    code: CurrencyCode,
}

/// A payment ready to run, or the proposal it became (the business's approval rule asks
/// more owners to agree to issuing this much).
enum Prepared {
    Pay(Payment),
    Proposed(scrip_governance::Proposed),
}

fn prepare(
    conn: &mut DbConn,
    caller: &Caller,
    body: &NewTransfer,
    (registry, idempotency): (&RegistryId, Option<scrip_governance::Idempotency<'_>>),
) -> Result<Prepared, ApiError> {
    let currency = scrip_auth::guard::currency(conn, &body.currency, "unknown_account")?;
    let payer = act_as(conn, caller, body.from.as_deref(), registry)?;
    let payee = resolve(conn, &body.to, registry)?;
    scrip_ledger::rules::may_be_paid(payee.kind)?;
    let amount = Amount::parse_positive(&body.amount, currency.scale)
        .map_err(|e| ApiError::unprocessable("bad_amount", e.to_string()))?;
    let memo = scrip_http::memo(body.memo.as_deref())?;
    let payout = scrip_governance::Payout {
        payer: &payer,
        currency: &currency,
        amount_atoms: amount.atoms(),
        asked: scrip_governance::IssuePayload {
            to: payee.handle.to_string(),
            currency: currency.code.to_string(),
            amount: amount.to_string(),
            memo: memo.clone(),
            request_id: None,
        },
        caller: caller.id,
    };
    if let Some(proposed) = scrip_governance::issue_or_propose(conn, &payout, idempotency)? {
        return Ok(Prepared::Proposed(proposed));
    }
    Ok(Prepared::Pay(Payment {
        request: TransferRequest {
            currency: currency.id,
            from: payer.id,
            to: payee.id,
            amount,
            kind: TransferKind::Payment,
            memo,
        },
        from: payer.handle,
        to: payee.handle,
        code: currency.code,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/transfers", tag = "wallet", request_body = NewTransfer,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first result for the same body")),
    responses(
        (status = 201, body = TransferView),
        (status = 202, body = scrip_governance::Proposed, description = "a payment out of a business's issuing account above what one owner may issue alone: a proposal the other owners approve"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown_account"),
        (status = 409, body = Problem, description = "idempotency_conflict"),
        (status = 422, body = Problem, description = "bad_amount, insufficient_funds, max_balance_exceeded, not_payable (the registry's fee accounts)"),
        (status = 429, body = Problem, description = "rate_limited"),
    )
)]
#[post("/api/v1/transfers")]
pub async fn create_transfer(
    caller: Caller,
    request: HttpRequest,
    body: scrip_http::Json<NewTransfer>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    wallet: web::Data<WalletContext>,
) -> Result<HttpResponse, ApiError> {
    wallet.payment_limiter.check(&caller.id.to_string()).await?;
    let key = idempotency_key(&request)?;
    let body = body.into_inner();
    let hash = request_hash("POST /api/v1/transfers", &body);
    let scope: PrincipalId = caller.id;
    let prepared = {
        let (ledger, key, hash) = (ledger.clone(), key.clone(), hash.clone());
        blocking(move || {
            let mut conn = ledger.conn()?;
            let idempotency = key.as_ref().map(|key| (scope, key, hash.as_str()));
            prepare(&mut conn, &caller, &body, (&registry, idempotency))
        })
    };
    let outcome = match key {
        None => {
            let payment = match prepared.await? {
                Prepared::Pay(payment) => payment,
                Prepared::Proposed(proposed) => return Ok(HttpResponse::Accepted().json(proposed)),
            };
            let transfer = wallet
                .committer
                .transfer_async(payment.request.clone())
                .await;
            count(&wallet.metrics, &transfer);
            let view = transfer_view(&transfer?, &payment.from, &payment.to, &payment.code);
            announce(&wallet, payment.request.to, &view);
            return Ok(HttpResponse::Created().json(view));
        }
        Some(key) => {
            // A replay must answer even if the request could no longer be prepared the same
            // way (say, the payer's role changed): look for the stored answer first.
            let ledger_for_key = ledger.clone();
            let stored_key = key.clone();
            let stored_hash = hash.clone();
            let replay = blocking(move || {
                ledger_for_key
                    .idempotent_lookup(scope, &stored_key, &stored_hash)
                    .map_err(ApiError::from)
            })
            .await?;
            if let Some(stored) = replay {
                Idempotent::Replayed(stored)
            } else {
                let payment = match prepared.await? {
                    Prepared::Pay(payment) => payment,
                    Prepared::Proposed(proposed) => {
                        return Ok(HttpResponse::Accepted().json(proposed));
                    }
                };
                let payee = payment.request.to;
                let outcome = blocking(move || {
                    let outcome = ledger.idempotent(scope, &key, &hash, |conn| {
                        let transfer = scrip_ledger::transfer(conn, &payment.request)?;
                        let view =
                            transfer_view(&transfer, &payment.from, &payment.to, &payment.code);
                        let body = serde_json::to_string(&view).map_err(|e| {
                            LedgerError::Invariant(format!("cannot store a payment's answer: {e}"))
                        })?;
                        Ok(StoredResponse { status: 201, body })
                    });
                    outcome.map_err(ApiError::from)
                })
                .await?;
                if let Idempotent::Fresh(stored) = &outcome {
                    wallet.metrics.transfers.inc();
                    if let Ok(view) = serde_json::from_str::<TransferView>(&stored.body) {
                        announce(&wallet, payee, &view);
                    }
                }
                outcome
            }
        }
    };
    let replayed = matches!(outcome, Idempotent::Replayed(_));
    Ok(idempotent_response(outcome.response(), replayed))
}

/// Tells the payee's people they were paid.
fn announce(wallet: &WalletContext, payee: PrincipalId, view: &TransferView) {
    wallet.notifier.publish(
        payee,
        &view.to,
        &scrip_notify::Event::PaymentReceived {
            transfer_id: view.id.clone(),
            from: view.from.clone(),
            currency: view.currency.clone(),
            amount: view.amount.clone(),
            memo: view.memo.clone(),
        },
    );
}

fn count(metrics: &Metrics, outcome: &Result<Transfer, LedgerError>) {
    match outcome {
        Ok(_) => metrics.transfers.inc(),
        Err(e) => metrics
            .transfers_refused
            .with_label_values(&[e.code()])
            .inc(),
    }
}

#[utoipa::path(
    get, path = "/api/v1/transfers", tag = "wallet", params(TransfersQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TransferPage), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[get("/api/v1/transfers")]
pub async fn list_transfers(
    caller: Caller,
    query: web::Query<TransfersQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.before_id()?.map(TransferId::new);
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let (holder, sight) = till_view_as(&mut conn, &caller, query.holder.as_deref(), &registry)?;
        let lines = match sight {
            Sight::Full => Lines::All,
            Sight::Till => Lines::PaymentsReceived,
        };
        let currency: Option<CurrencyId> = match query.currency.as_deref() {
            None => None,
            Some(raw) => Some(scrip_auth::guard::currency(&mut conn, raw, "unknown_account")?.id),
        };
        let entries = journal_page(&mut conn, (holder.id, lines), currency, before, limit + 1)?;
        let page = Page::from_overfetch(entries, limit, |e| e.transfer.id.get());
        Ok(TransferPage {
            items: page
                .items
                .iter()
                .map(|entry| entry_view(entry, &[holder.id]))
                .collect(),
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get, path = "/api/v1/transfers/{id}", tag = "wallet",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = Problem, description = "unknown, or not the caller's"))
)]
#[get("/api/v1/transfers/{id}")]
pub async fn get_transfer(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such transfer");
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let entry = journal_entry(&mut conn, TransferId::new(id))?.ok_or_else(not_found)?;
        let mut viewers = Vec::new();
        for party in [entry.from_principal, entry.to_principal] {
            if party == caller.id || is_owner(&mut conn, party, caller.id)? {
                viewers.push(party);
            }
        }
        if viewers.is_empty() {
            Err(not_found())
        } else {
            Ok(entry_view(&entry, &viewers))
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
