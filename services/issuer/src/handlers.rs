use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use scrip_auth::Caller;
use scrip_auth::access::{Role, members_with_role, role_in, set_member};
use scrip_auth::guard::resolve;
use scrip_domain::{
    Amount, CurrencyCode, CurrencyId, Handle, Par, PrincipalId, PrincipalKind, RegistryId, Scale,
    UnitCode,
};
use scrip_governance::store::ProposalRow;
use scrip_governance::{Action, Execute, Gate};
use scrip_http::{ApiError, Page, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::{
    Currency, Ledger, NewCurrency, Principal, create_principal, currencies_of_issuer,
    currencies_page, currencies_stats, set_limits,
};
use scrip_store::DbConn;

use crate::IssuerPolicy;
use crate::dto::{BusinessView, CurrencyView, LimitsPatch, NewBusiness, NewCurrencyBody};
use crate::governance::{Asked, Done, act_or_propose};
use crate::policies::{new_policies, policy_change, policy_view};

const MAX_NAME_CHARS: usize = 100;

fn check_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_NAME_CHARS
        || trimmed.chars().any(scrip_domain::is_invisible)
    {
        return Err(ApiError::unprocessable(
            "bad_name",
            "a name is 1 to 100 printable characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// The view of a currency that every endpoint returns.
pub fn currency_view(conn: &mut DbConn, currency: &Currency) -> Result<CurrencyView, ApiError> {
    currency_views(conn, std::slice::from_ref(currency))?
        .pop()
        .ok_or_else(|| ApiError::Internal("a currency without its view".into()))
}

/// The views of a list of currencies in three queries whatever its length (their stats, then
/// their issuers' handles), in the list's order.
pub fn currency_views(
    conn: &mut DbConn,
    currencies: &[Currency],
) -> Result<Vec<CurrencyView>, ApiError> {
    let stats = currencies_stats(conn, currencies)?;
    let collectors = currencies.iter().flat_map(|c| {
        let fee = c.policies.transfer_fee.and_then(|f| f.to);
        let demurrage = c.policies.demurrage.and_then(|d| d.to);
        fee.into_iter().chain(demurrage)
    });
    let issuers = scrip_ledger::handles(
        conn,
        currencies.iter().map(|c| c.issuer_id).chain(collectors),
    )?;
    let now = scrip_http::now_us();
    currencies
        .iter()
        .map(|currency| {
            let stats = stats
                .get(&currency.id)
                .ok_or_else(|| ApiError::Internal("a currency without its stats".into()))?;
            let issuer = issuers
                .get(&currency.issuer_id)
                .ok_or_else(|| ApiError::Internal("a currency without its issuer".into()))?;
            let collected = match currency.policies.demurrage {
                Some(_) => scrip_ledger::demurrage::collected_atoms(conn, currency.id)?,
                None => 0,
            };
            let handle_of = |id| issuers.get(&id).cloned();
            let policy = policy_view(currency, &handle_of, collected, now);
            let backing = crate::policies::backing_view(conn, currency)?;
            let joining_fee = crate::policies::joining_fee_view(conn, currency)?;
            Ok(CurrencyView {
                code: currency.code.to_string(),
                name: currency.name.clone(),
                issuer: issuer.clone(),
                scale: currency.scale.decimals(),
                credit_limit: currency.credit_limit.to_string(),
                max_balance: currency.max_balance.map(|m| m.to_string()),
                unit: currency.unit.to_string(),
                par: currency.par.to_string(),
                outstanding: stats.outstanding.to_string(),
                holders: stats.holders,
                created_at: rfc3339_from_us(currency.created_at_us),
                kind: policy.kind,
                backing,
                joining_fee,
                member_credit_limit: policy.member_credit_limit,
                max_payment: policy.max_payment,
                transfer_fee: policy.transfer_fee,
                demurrage: policy.demurrage,
                requires_admission: currency.policies.requires_admission,
                freezable: currency.policies.freezable,
                sealed: policy.sealed,
            })
        })
        .collect()
}

pub fn currencies_of_business(
    conn: &mut DbConn,
    business: &Principal,
) -> Result<Vec<CurrencyView>, ApiError> {
    let currencies = currencies_of_issuer(conn, business.id)?;
    currency_views(conn, &currencies)
}

fn business_view(
    conn: &mut DbConn,
    business: &Principal,
    registry: &RegistryId,
) -> Result<BusinessView, ApiError> {
    Ok(BusinessView {
        id: business.id.to_string(),
        handle: business.handle.to_string(),
        address: business.handle.address(registry).to_string(),
        name: business.display_name.clone().unwrap_or_default(),
        owners: members_with_role(conn, business.id, Role::Owner)?
            .iter()
            .map(ToString::to_string)
            .collect(),
        currencies: currencies_of_business(conn, business)?,
    })
}

/// The business named by `raw`, if it is one; 404 otherwise.
pub(crate) fn business(
    conn: &mut DbConn,
    raw: &str,
    registry: &RegistryId,
) -> Result<Principal, ApiError> {
    let principal = resolve(conn, raw, registry).map_err(|_| not_a_business(raw))?;
    if principal.kind == PrincipalKind::Business {
        Ok(principal)
    } else {
        Err(not_a_business(raw))
    }
}

fn not_a_business(raw: &str) -> ApiError {
    ApiError::not_found("not_found", format!("no business named {raw:?}"))
}

/// Locks the business's principal row until commit (PostgreSQL; SQLite's write transaction
/// already excludes other writers).
pub(crate) fn lock_business(
    conn: &mut DbConn,
    business: &Principal,
) -> Result<(), scrip_ledger::LedgerError> {
    Ok(scrip_store::lock_row(
        conn,
        "principals",
        business.id.get(),
    )?)
}

pub(crate) fn require_owner(
    conn: &mut DbConn,
    business: &Principal,
    caller: &Caller,
) -> Result<(), ApiError> {
    match role_in(conn, business.id, caller.id)? {
        Some(Role::Owner) => Ok(()),
        _ => Err(ApiError::forbidden(
            "not_owner",
            format!("only an owner of {} may do this", business.handle),
        )),
    }
}

#[utoipa::path(
    post, path = "/api/v1/businesses", tag = "issuer", request_body = NewBusiness,
    security(("bearer" = [])),
    responses(
        (status = 201, body = BusinessView, description = "Created; the caller is its first owner"),
        (status = 409, body = Problem, description = "handle_taken"),
        (status = 422, body = Problem, description = "bad_handle, bad_name"),
    )
)]
#[post("/api/v1/businesses")]
pub async fn create_business(
    caller: Caller,
    body: scrip_http::Json<NewBusiness>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let handle = Handle::parse_new(&body.handle)
        .map_err(|e| ApiError::unprocessable("bad_handle", e.to_string()))?;
    let name = check_name(&body.name)?;
    let view = blocking(move || {
        let business = ledger.write(|conn| {
            let business = create_principal(conn, &handle, PrincipalKind::Business, Some(&name))?;
            set_member(conn, business.id, caller.id, Role::Owner)?;
            Ok(business)
        })?;
        let mut conn = ledger.conn()?;
        business_view(&mut conn, &business, &registry)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}", tag = "issuer",
    params(("handle" = String, Path, description = "handle or address")),
    responses((status = 200, body = BusinessView), (status = 404, body = Problem))
)]
#[get("/api/v1/businesses/{handle}")]
pub async fn get_business(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        business_view(&mut conn, &business, &registry)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn parse_limit(raw: &str, scale: Scale, field: &str) -> Result<Amount, ApiError> {
    Amount::parse_non_negative(raw, scale)
        .map_err(|e| ApiError::unprocessable("bad_amount", format!("{field}: {e}")))
}

#[utoipa::path(
    post, path = "/api/v1/currencies", tag = "issuer", request_body = NewCurrencyBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CurrencyView),
        (status = 202, body = scrip_governance::Proposed, description = "the issuer's approval rule guards limits (a new currency is a new credit line): a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 409, body = Problem, description = "code_taken"),
        (status = 422, body = Problem, description = "bad_amount, bad_policy, credit_limit_too_high, bad_currency_code, bad_scale, bad_par"),
    )
)]
#[post("/api/v1/currencies")]
pub async fn create_currency(
    caller: Caller,
    body: scrip_http::Json<NewCurrencyBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    policy: web::Data<IssuerPolicy>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let done = blocking(move || {
        let mut conn = ledger.conn()?;
        let issuer = resolve(&mut conn, &body.issuer, &registry)?;
        if issuer.kind != PrincipalKind::Business {
            return Err(ApiError::unprocessable(
                "not_a_business",
                "only a business issues a currency",
            ));
        }
        require_owner(&mut conn, &issuer, &caller)?;
        let new = new_currency(&mut conn, &issuer, &body, (&policy, &registry))?;
        // A new currency is a new credit line: the rule's `limits` guards it.
        let done = scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &issuer)?;
            let gate = scrip_governance::gate(conn, issuer.id, Action::Limits)?;
            act_or_propose(
                conn,
                (&issuer, caller.id),
                gate,
                || Asked {
                    action: Action::Limits,
                    payload: serde_json::json!({"create": &body}),
                    summary: format!(
                        "issue a new currency {} with a credit limit of {}",
                        body.code, body.credit_limit
                    ),
                },
                |conn| create_logged(conn, (&issuer, &new), caller.id),
            )
        })?;
        Ok(match done {
            Done::Now(currency) => {
                Done::Now(ledger.read(|conn| Ok(currency_view(conn, &currency)))??)
            }
            Done::Proposed(proposal) => Done::Proposed(proposal),
        })
    })
    .await?;
    Ok(done.respond(StatusCode::CREATED))
}

fn create_logged(
    conn: &mut DbConn,
    (issuer, new): (&Principal, &NewCurrency),
    actor: PrincipalId,
) -> Result<Currency, ApiError> {
    let currency = scrip_ledger::create_currency(conn, new)?;
    let line = format!(
        "issued a new currency {} (credit limit {})",
        currency.code, currency.credit_limit
    );
    scrip_governance::log(conn, issuer.id, actor, ("currency_created", &line))?;
    Ok(currency)
}

/// A new currency from its request, every field checked.
fn new_currency(
    conn: &mut DbConn,
    issuer: &Principal,
    body: &NewCurrencyBody,
    (policy, registry): (&IssuerPolicy, &RegistryId),
) -> Result<NewCurrency, ApiError> {
    let code = CurrencyCode::parse_new(&body.code)
        .map_err(|e| ApiError::unprocessable("bad_currency_code", e.to_string()))?;
    let scale =
        Scale::new(body.scale).map_err(|e| ApiError::unprocessable("bad_scale", e.to_string()))?;
    let credit_limit = parse_limit(&body.credit_limit, scale, "credit_limit")?;
    let max_balance = body
        .max_balance
        .as_deref()
        .map(|m| parse_limit(m, scale, "max_balance"))
        .transpose()?;
    let unit = UnitCode::parse(body.unit.as_deref().unwrap_or("EUR"))
        .map_err(|e| ApiError::unprocessable("bad_unit", e.to_string()))?;
    let par = body
        .par
        .as_deref()
        .map(Par::parse)
        .transpose()
        .map_err(|e| ApiError::unprocessable("bad_par", e.to_string()))?
        .unwrap_or_else(Par::one);
    let name = check_name(&body.name)?;
    if !policy.allows(credit_limit, par) {
        return Err(credit_limit_too_high(policy));
    }
    let policies = new_policies(conn, body, scale, registry)?;
    if policies.member_credit_limit_atoms > 0
        && !policy.allows(
            scrip_domain::Amount::from_atoms(policies.member_credit_limit_atoms, scale),
            par,
        )
    {
        return Err(credit_limit_too_high(policy));
    }
    Ok(NewCurrency {
        issuer: issuer.id,
        code,
        name,
        scale,
        credit_limit,
        max_balance,
        unit,
        par,
        policies,
    })
}

fn credit_limit_too_high(policy: &IssuerPolicy) -> ApiError {
    ApiError::unprocessable(
        "credit_limit_too_high",
        format!(
            "the registry allows credit limits up to {} units of account",
            policy.max_credit_limit_units
        ),
    )
}

#[utoipa::path(
    get, path = "/api/v1/currencies", tag = "issuer",
    params(PageQuery),
    responses((status = 200, body = crate::dto::CurrencyPage))
)]
#[get("/api/v1/currencies")]
pub async fn list_currencies(
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let before = query.before_id()?.map(CurrencyId::new);
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let page =
            Page::from_overfetch(currencies_page(&mut conn, before, limit + 1)?, limit, |c| {
                c.id.get()
            });
        let items = currency_views(&mut conn, &page.items)?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}", tag = "issuer",
    params(("code" = String, Path)),
    responses((status = 200, body = CurrencyView), (status = 404, body = Problem))
)]
#[get("/api/v1/currencies/{code}")]
pub async fn get_currency(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        currency_view(&mut conn, &currency)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) fn find_currency(conn: &mut DbConn, raw: &str) -> Result<Currency, ApiError> {
    scrip_auth::guard::currency(conn, raw, "not_found")
}

#[utoipa::path(
    patch, path = "/api/v1/currencies/{code}", tag = "issuer", request_body = LimitsPatch,
    security(("bearer" = [])),
    params(("code" = String, Path)),
    responses(
        (status = 200, body = CurrencyView),
        (status = 202, body = scrip_governance::Proposed, description = "the approval rule guards limits or policy: a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 409, body = Problem, description = "sealed, too_many_proposals"),
        (status = 422, body = Problem, description = "bad_amount, bad_policy, limit_below_position, credit_limit_too_high"),
    )
)]
#[patch("/api/v1/currencies/{code}")]
pub async fn patch_currency(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<LimitsPatch>,
    ledger: web::Data<Ledger>,
    policy: web::Data<IssuerPolicy>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let done = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        require_owner(&mut conn, &issuer, &caller)?;
        // Checked before a proposal is opened, so nobody approves what cannot be done.
        checked_change(&mut conn, &currency, &body, (&policy, &registry))?;
        let done = scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &issuer)?;
            let action = if touches_policy(&body) { Action::Policy } else { Action::Limits };
            let rule = scrip_governance::store::rule_of(conn, issuer.id)?;
            let mut required = rule.needed_for(action);
            if touches_limits(&body) {
                required = required.max(rule.needed_for(Action::Limits));
            }
            let gate = if required > 1 { Gate::Propose { required } } else { Gate::Proceed };
            act_or_propose(
                conn,
                (&issuer, caller.id),
                gate,
                || Asked {
                    action,
                    payload: serde_json::json!({"currency": currency.code.to_string(), "patch": &body}),
                    summary: format!("change {}: {}", currency.code, describe_patch(&body)),
                },
                |conn| apply_patch(conn, (&issuer, &currency), &body, (&policy, &registry), caller.id),
            )
        })?;
        Ok(match done {
            Done::Now(updated) => Done::Now(ledger.read(|conn| Ok(currency_view(conn, &updated)))??),
            Done::Proposed(proposal) => Done::Proposed(proposal),
        })
    })
    .await?;
    Ok(done.respond(StatusCode::OK))
}

fn touches_limits(body: &LimitsPatch) -> bool {
    body.credit_limit.is_some() || body.max_balance.is_some() || body.member_credit_limit.is_some()
}

fn touches_policy(body: &LimitsPatch) -> bool {
    body.max_payment.is_some()
        || body.transfer_fee.is_some()
        || body.demurrage.is_some()
        || body.requires_admission.is_some()
        || body.joining_fee.is_some()
        || !body.sealed.is_empty()
}

/// The patch in words, for the log and proposals: its fields as sent.
fn describe_patch(body: &LimitsPatch) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// The change a patch asks for, checked against the currency now.
fn checked_change(
    conn: &mut DbConn,
    currency: &Currency,
    body: &LimitsPatch,
    (policy, registry): (&IssuerPolicy, &RegistryId),
) -> Result<scrip_ledger::LimitsChange, ApiError> {
    let change = policy_change(conn, body, currency, registry)?;
    scrip_ledger::check_not_sealed(currency, &change)?;
    for limit in [change.credit_limit, change.member_credit_limit]
        .into_iter()
        .flatten()
    {
        if !policy.allows(limit, currency.par) {
            return Err(credit_limit_too_high(policy));
        }
    }
    Ok(change)
}

/// Applies a checked patch and logs it, in the caller's transaction.
fn apply_patch(
    conn: &mut DbConn,
    (issuer, currency): (&Principal, &Currency),
    body: &LimitsPatch,
    settings: (&IssuerPolicy, &RegistryId),
    actor: PrincipalId,
) -> Result<Currency, ApiError> {
    let change = checked_change(conn, currency, body, settings)?;
    let updated = set_limits(conn, currency.id, &change)?;
    let line = format!("{}: {}", currency.code, describe_patch(body));
    scrip_governance::log(conn, issuer.id, actor, ("currency_changed", &line))?;
    Ok(updated)
}

/// Runs an approved change of a currency's limits or policies, checked again against the
/// currency as it is now (a seal set meanwhile refuses it).
pub(crate) struct CurrencyExecutor {
    pub policy: IssuerPolicy,
    pub registry: RegistryId,
}

impl Execute for CurrencyExecutor {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        row: &ProposalRow,
    ) -> Result<serde_json::Value, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Asked {
            Patch {
                currency: String,
                patch: LimitsPatch,
            },
            Create {
                create: NewCurrencyBody,
            },
            MemberLimit {
                member_limit: MemberLimitAsked,
            },
            ReserveRelease {
                reserve_release: ReserveReleaseAsked,
            },
        }
        #[derive(serde::Deserialize)]
        struct ReserveReleaseAsked {
            currency: String,
            amount: String,
        }
        #[derive(serde::Deserialize)]
        struct MemberLimitAsked {
            currency: String,
            member: String,
            credit_limit: Option<String>,
        }
        let unreadable =
            |e: serde_json::Error| ApiError::Internal(format!("proposal {}: {e}", row.id));
        let (code, patch) = match serde_json::from_str(&row.payload).map_err(unreadable)? {
            Asked::Patch { currency, patch } => (currency, patch),
            Asked::ReserveRelease { reserve_release } => {
                let asked = (
                    reserve_release.currency.as_str(),
                    reserve_release.amount.as_str(),
                );
                let actor = PrincipalId::new(row.proposed_by);
                return crate::reserve::execute_release(conn, business, asked, actor);
            }
            Asked::Create { create } => {
                let settings = (&self.policy, &self.registry);
                let new = new_currency(conn, business, &create, settings)?;
                let actor = PrincipalId::new(row.proposed_by);
                let currency = create_logged(conn, (business, &new), actor)?;
                let view = currency_view(conn, &currency)?;
                return serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()));
            }
            Asked::MemberLimit { member_limit } => {
                let currency = find_currency(conn, &member_limit.currency)?;
                if currency.issuer_id != business.id {
                    return Err(ApiError::Internal(format!(
                        "proposal {}: not its currency",
                        row.id
                    )));
                }
                let member = resolve(conn, &member_limit.member, &self.registry)?;
                let raw = member_limit.credit_limit.as_deref();
                let limit = crate::currency_members::member_limit(&currency, raw, &self.policy)?;
                let actor = PrincipalId::new(row.proposed_by);
                let view = crate::currency_members::admit(
                    conn,
                    (business, &currency),
                    (&member, limit),
                    actor,
                )?;
                return serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()));
            }
        };
        let currency = find_currency(conn, &code)?;
        if currency.issuer_id != business.id {
            return Err(ApiError::Internal(format!(
                "proposal {}: not its currency",
                row.id
            )));
        }
        let actor = PrincipalId::new(row.proposed_by);
        let settings = (&self.policy, &self.registry);
        let updated = apply_patch(conn, (business, &currency), &patch, settings, actor)?;
        let view = currency_view(conn, &updated)?;
        serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
    }
}
