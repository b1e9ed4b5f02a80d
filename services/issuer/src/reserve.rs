//! The reserve of a `backed` currency at the HTTP edge: anyone may read it (holders trust a
//! currency by its reserve), its issuer's owners deposit into it and release from it. A
//! release lowers what backs the holders' money, so it is guarded by the issuer's approval
//! rule for `limits`; a deposit only adds cover and never is. The rules themselves live in
//! `scrip_ledger::reserve`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use scrip_auth::Caller;
use scrip_domain::{Amount, PrincipalId};
use scrip_governance::{Action, Gate, Proposal, ProposeError, Proposed};
use scrip_http::{
    ApiError, Problem, blocking, idempotency_key, idempotent_response, request_hash,
    rfc3339_from_us,
};
use scrip_ledger::reserve::{self, Reserve};
use scrip_ledger::{Currency, Idempotent, Ledger, LedgerError, Principal, StoredResponse};
use scrip_store::DbConn;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::handlers::{find_currency, lock_business, require_owner};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Decimal string, in the backing currency.
    pub amount: String,
}

/// One deposit into the reserve.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DepositView {
    pub amount: String,
    /// What is still held of it.
    pub remaining: String,
    pub deposited_at: String,
    /// When it may be released (as outstanding allows).
    pub unlocks_at: String,
}

/// A backed currency's reserve as it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReserveView {
    /// The backed currency.
    pub currency: String,
    /// The currency the reserve is held in.
    pub backing_currency: String,
    pub ratio_bps: i64,
    pub lock_days: i64,
    /// Held now, in `backing_currency`.
    pub reserve: String,
    /// Of it, still locked.
    pub locked: String,
    /// What may be released now: unlocked, and not needed for what is outstanding.
    pub releasable: String,
    /// What the reserve backs, in `currency`: the most that may be outstanding.
    pub backs: String,
    /// What is outstanding now, in `currency`.
    pub outstanding: String,
    /// Open deposits, oldest first.
    pub deposits: Vec<DepositView>,
}

fn view(currency: &Currency, reserve: &Reserve, now_us: i64) -> ReserveView {
    let backing = &reserve.backing_currency;
    let of_reserve = |atoms| Amount::from_atoms(atoms, backing.scale).to_string();
    let of_currency = |atoms| Amount::from_atoms(atoms, currency.scale).to_string();
    ReserveView {
        currency: currency.code.to_string(),
        backing_currency: backing.code.to_string(),
        ratio_bps: reserve.backing.ratio_bps,
        lock_days: reserve.backing.lock_days,
        reserve: of_reserve(reserve.reserve_atoms()),
        locked: of_reserve(reserve.locked_atoms(now_us)),
        releasable: of_reserve(reserve.releasable_atoms),
        backs: of_currency(reserve.backs_atoms),
        outstanding: of_currency(reserve.outstanding_atoms),
        deposits: reserve
            .tranches
            .iter()
            .map(|t| DepositView {
                amount: of_reserve(t.deposited_atoms),
                remaining: of_reserve(t.remaining_atoms),
                deposited_at: rfc3339_from_us(t.deposited_at_us),
                unlocks_at: rfc3339_from_us(t.unlocks_at_us),
            })
            .collect(),
    }
}

/// The backed currency of `code`: 422 `not_backed` for any other kind.
fn backed(conn: &mut DbConn, code: &str) -> Result<Currency, ApiError> {
    let currency = find_currency(conn, code)?;
    if currency.policies.backing.is_none() {
        return Err(ApiError::unprocessable(
            "not_backed",
            format!(
                "{} is not a backed currency: it has no reserve",
                currency.code
            ),
        ));
    }
    Ok(currency)
}

/// `amount` in the backing currency's scale, refused under its field.
fn reserve_amount(conn: &mut DbConn, currency: &Currency, raw: &str) -> Result<Amount, ApiError> {
    let backing = currency
        .policies
        .backing
        .ok_or_else(|| ApiError::Internal("a backed currency without its backing".into()))?;
    let scale = scrip_ledger::currency_by_id(conn, backing.currency)?.scale;
    Amount::parse_positive(raw, scale)
        .map_err(|e| ApiError::refused_field("bad_amount", "amount", format!("amount: {e}")))
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/reserve", tag = "issuer",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = ReserveView),
        (status = 404, body = Problem, description = "not_found"),
        (status = 422, body = Problem, description = "not_backed"),
    )
)]
#[get("/api/v1/currencies/{code}/reserve")]
pub async fn get_reserve(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = backed(&mut conn, &path)?;
        let now = scrip_http::now_us();
        let reserve = reserve::reserve_of(&mut conn, &currency, now)?;
        Ok(view(&currency, &reserve, now))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The currency, its issuer and the amount of a reserve change, the caller an owner.
fn asked(
    conn: &mut DbConn,
    caller: &Caller,
    code: &str,
    body: &ReserveBody,
) -> Result<(Currency, Principal, Amount), ApiError> {
    let currency = backed(conn, code)?;
    let issuer = scrip_ledger::principal_by_id(conn, currency.issuer_id)?;
    require_owner(conn, &issuer, caller)?;
    let amount = reserve_amount(conn, &currency, &body.amount)?;
    Ok((currency, issuer, amount))
}

fn stored(status: u16, body: &impl Serialize) -> Result<StoredResponse, LedgerError> {
    let body = serde_json::to_string(body)
        .map_err(|e| LedgerError::Invariant(format!("cannot store an answer: {e}")))?;
    Ok(StoredResponse { status, body })
}

/// What a reserve change is asked for: the currency, its issuer, the amount; the caller an owner.
type Asked = (Currency, Principal, Amount);

/// Runs `work` on what `caller` asks of currency `code` (refusals of the ask change nothing),
/// once per Idempotency-Key (when one is sent), in one write transaction.
async fn once(
    (http, caller): (&HttpRequest, Caller),
    (route, code, body): (&str, String, ReserveBody),
    ledger: web::Data<Ledger>,
    mut work: impl FnMut(
        &mut DbConn,
        &Caller,
        Asked,
    ) -> Result<Result<StoredResponse, ApiError>, LedgerError>
    + Send
    + 'static,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(http)?;
    let hash = request_hash(&format!("POST /api/v1/currencies/{code}/{route}"), &body);
    let scope = caller.id;
    let mut work = move |conn: &mut DbConn| match asked(conn, &caller, &code, &body) {
        Ok(asked) => work(conn, &caller, asked),
        Err(refused) => Ok(Err(refused)),
    };
    let outcome = blocking(move || match &key {
        None => ledger.write(&mut work)?.map(Idempotent::Fresh),
        Some(key) => ledger.idempotent_or_refused(scope, key, &hash, &mut work)?,
    })
    .await?;
    let replayed = matches!(outcome, Idempotent::Replayed(_));
    Ok(idempotent_response(outcome.response(), replayed))
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/reserve", tag = "issuer", request_body = ReserveBody,
    security(("bearer" = [])),
    params(
        ("code" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first result for the same body"),
    ),
    responses(
        (status = 200, body = ReserveView, description = "deposited: the amount is held on the issuer's account in the backing currency, and the issuer may issue what it backs"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 422, body = Problem, description = "not_backed, bad_amount, insufficient_funds (the issuer does not hold that much of the backing currency), account_frozen"),
    )
)]
#[post("/api/v1/currencies/{code}/reserve")]
pub async fn deposit(
    caller: Caller,
    http: HttpRequest,
    path: web::Path<String>,
    body: scrip_http::Json<ReserveBody>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let asked = ("reserve", path.into_inner(), body.into_inner());
    let work = |conn: &mut DbConn, caller: &Caller, (currency, issuer, amount): Asked| {
        let now = scrip_http::now_us();
        let reserve = reserve::deposit(conn, &currency, amount, now)?;
        let line = format!(
            "deposited {amount} {} into the reserve of {}",
            reserve.backing_currency.code, currency.code
        );
        scrip_governance::log(conn, issuer.id, caller.id, ("reserve_deposited", &line))?;
        Ok(Ok(stored(200, &view(&currency, &reserve, now))?))
    };
    once((&http, caller), asked, ledger, work).await
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/reserve/release", tag = "issuer", request_body = ReserveBody,
    security(("bearer" = [])),
    params(
        ("code" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first result for the same body"),
    ),
    responses(
        (status = 200, body = ReserveView, description = "released: the amount is the issuer's to spend again"),
        (status = 202, body = scrip_governance::Proposed, description = "the issuer's approval rule guards limits: a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "too_many_proposals"),
        (status = 422, body = Problem, description = "not_backed, bad_amount, reserve_locked (deposits are locked for lock_days), reserve_in_use (what is outstanding needs it: the detail says how much can be released)"),
    )
)]
#[post("/api/v1/currencies/{code}/reserve/release")]
pub async fn release(
    caller: Caller,
    http: HttpRequest,
    path: web::Path<String>,
    body: scrip_http::Json<ReserveBody>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let asked = ("reserve/release", path.into_inner(), body.into_inner());
    let work = |conn: &mut DbConn, caller: &Caller, (currency, issuer, amount): Asked| {
        lock_business(conn, &issuer)?;
        match scrip_governance::gate(conn, issuer.id, Action::Limits)? {
            Gate::Proceed => {
                let (reserve, now) = release_logged(conn, (&issuer, &currency), amount, caller.id)?;
                Ok(Ok(stored(200, &view(&currency, &reserve, now))?))
            }
            Gate::Propose { required } => {
                let proposal = Proposal {
                    business: &issuer,
                    action: Action::Limits,
                    payload: serde_json::json!({
                        "reserve_release": {"currency": currency.code.to_string(), "amount": amount.to_string()},
                    }),
                    summary: format!("release {amount} from the reserve of {}", currency.code),
                    proposed_by: caller.id,
                };
                match scrip_governance::propose(conn, &proposal, required) {
                    Ok(proposal) => Ok(Ok(stored(202, &Proposed { proposal })?)),
                    Err(ProposeError::Ledger(error)) => Err(error),
                    Err(too_many) => Ok(Err(ApiError::from(too_many))),
                }
            }
        }
    };
    once((&http, caller), asked, ledger, work).await
}

/// Releases `amount` of the reserve and logs it, in the caller's transaction.
pub(crate) fn release_logged(
    conn: &mut DbConn,
    (issuer, currency): (&Principal, &Currency),
    amount: Amount,
    actor: PrincipalId,
) -> Result<(Reserve, i64), LedgerError> {
    let now = scrip_http::now_us();
    let reserve = reserve::release(conn, currency, amount, now)?;
    let line = format!(
        "released {amount} {} from the reserve of {}",
        reserve.backing_currency.code, currency.code
    );
    scrip_governance::log(conn, issuer.id, actor, ("reserve_released", &line))?;
    Ok((reserve, now))
}

/// An approved release, as the currency executor runs it.
pub(crate) fn execute_release(
    conn: &mut DbConn,
    issuer: &Principal,
    (code, raw_amount): (&str, &str),
    actor: PrincipalId,
) -> Result<serde_json::Value, ApiError> {
    let currency = backed(conn, code)?;
    if currency.issuer_id != issuer.id {
        return Err(ApiError::Internal(
            "a reserve proposal of another issuer".into(),
        ));
    }
    let amount = reserve_amount(conn, &currency, raw_amount)?;
    let (reserve, now) = release_logged(conn, (issuer, &currency), amount, actor)?;
    serde_json::to_value(view(&currency, &reserve, now))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
