//! The members of a currency, for its stewards (the issuer's owners): in a mutual-credit
//! currency each member's own credit limit, in one that requires admission who may hold it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use scrip_auth::Caller;
use scrip_auth::guard::resolve;
use scrip_domain::{Amount, PrincipalId, RegistryId};
use scrip_governance::{Action, Gate};
use scrip_http::{ApiError, OptionalJson, Page, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::policy::CurrencyKind;
use scrip_ledger::{Currency, Joining, Ledger, Member, Principal, members_page, set_member};
use scrip_store::DbConn;

use crate::IssuerPolicy;
use crate::dto::{CurrencyMemberView, FeePaidView, JoinBody, LeftView, MemberBody};
use crate::governance::{Asked, act_or_propose};
use crate::handlers::{find_currency, lock_business, require_owner};

fn require_steward(
    conn: &mut DbConn,
    currency: &Currency,
    caller: &Caller,
) -> Result<(), ApiError> {
    let issuer = scrip_ledger::principal_by_id(conn, currency.issuer_id)?;
    require_owner(conn, &issuer, caller)
}

/// The joining fee a member paid, in its currency's words.
fn fee_paid(
    conn: &mut DbConn,
    fee: Option<(scrip_domain::CurrencyId, i64)>,
) -> Result<Option<FeePaidView>, ApiError> {
    let Some((paid_in, atoms)) = fee else {
        return Ok(None);
    };
    let paid_in = scrip_ledger::currency_by_id(conn, paid_in)?;
    Ok(Some(FeePaidView {
        amount: Amount::from_atoms(atoms, paid_in.scale).to_string(),
        currency: paid_in.code.to_string(),
    }))
}

fn view(
    conn: &mut DbConn,
    currency: &Currency,
    member: &Member,
    (handle, balance): (String, Amount),
) -> Result<CurrencyMemberView, ApiError> {
    Ok(CurrencyMemberView {
        currency: currency.code.to_string(),
        member: handle,
        credit_limit: member.credit_limit.to_string(),
        balance: balance.to_string(),
        admitted_at: rfc3339_from_us(member.admitted_at_us),
        joining_fee_paid: fee_paid(conn, member.joining_fee)?,
        refundable_from: member.refundable_from_us.map(rfc3339_from_us),
    })
}

#[utoipa::path(
    put, path = "/api/v1/currencies/{code}/members/{handle}", tag = "issuer",
    request_body = MemberBody, security(("bearer" = [])),
    params(("code" = String, Path), ("handle" = String, Path, description = "handle or address")),
    responses(
        (status = 200, body = CurrencyMemberView, description = "admitted (its account opened), or its credit limit changed"),
        (status = 202, body = scrip_governance::Proposed, description = "the issuer's approval rule guards limits: a proposal"),
        (status = 403, body = Problem, description = "not_owner: stewards only"),
        (status = 404, body = Problem, description = "not_found, unknown_account"),
        (status = 409, body = Problem, description = "sealed: member_credit_limit is sealed and the member's limit would differ from it"),
        (status = 422, body = Problem, description = "bad_amount, bad_policy, limit_below_position (the member owes more than the new limit), credit_limit_too_high, joining_fee_required (a newcomer to a currency with a joining fee joins itself)"),
    )
)]
#[put("/api/v1/currencies/{code}/members/{handle}")]
pub async fn put_member(
    caller: Caller,
    path: web::Path<(String, String)>,
    body: scrip_http::Json<MemberBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    policy: web::Data<IssuerPolicy>,
) -> Result<HttpResponse, ApiError> {
    let (code, handle) = path.into_inner();
    let body = body.into_inner();
    let done = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &code)?;
        require_steward(&mut conn, &currency, &caller)?;
        let member = resolve(&mut conn, &handle, &registry)?;
        let limit = member_limit(&currency, body.credit_limit.as_deref(), &policy)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &issuer)?;
            // A member's credit limit is a credit line (the rule's `limits`); admitting someone
            // new is a change of members (`members`), as admitting an application is.
            let rule = scrip_governance::store::rule_of(conn, issuer.id)?;
            let mut required = 1;
            if limit.is_some() {
                required = rule.needed_for(Action::Limits);
            }
            if !scrip_ledger::is_member(conn, currency.id, member.id)? {
                required = required.max(rule.needed_for(Action::Members));
            }
            let gate = if required > 1 {
                Gate::Propose { required }
            } else {
                Gate::Proceed
            };
            act_or_propose(
                conn,
                (&issuer, caller.id),
                gate,
                || Asked {
                    // The Limits executor admits too (a member's limit is set on admission).
                    action: Action::Limits,
                    payload: serde_json::json!({"member_limit": {
                        "currency": currency.code.to_string(),
                        "member": member.handle.to_string(),
                        "credit_limit": body.credit_limit,
                    }}),
                    summary: match body.credit_limit.as_deref() {
                        Some(limit) => format!(
                            "give {} a credit limit of {limit} {} (admitting them if need be)",
                            member.handle, currency.code
                        ),
                        None => format!("admit {} to {}", member.handle, currency.code),
                    },
                },
                |conn| admit(conn, (&issuer, &currency), (&member, limit), caller.id),
            )
        })
    })
    .await?;
    Ok(done.respond(StatusCode::OK))
}

/// The member credit limit asked for, checked against the currency and the registry.
pub(crate) fn member_limit(
    currency: &Currency,
    raw: Option<&str>,
    policy: &IssuerPolicy,
) -> Result<Option<Amount>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let limit = Amount::parse_non_negative(raw, currency.scale).map_err(|e| {
        ApiError::refused_field("bad_amount", "credit_limit", format!("credit_limit: {e}"))
    })?;
    if currency.policies.kind != CurrencyKind::MutualCredit {
        return Err(ApiError::refused_field(
            "bad_policy",
            "credit_limit",
            "credit_limit: only members of a mutual_credit currency have one",
        ));
    }
    if !policy.allows(limit, currency.par) {
        return Err(ApiError::refused_field(
            "credit_limit_too_high",
            "credit_limit",
            format!(
                "the registry allows credit limits up to {} units of account",
                policy.max_credit_limit_units
            ),
        ));
    }
    Ok(Some(limit))
}

/// Admits the member or sets its limit, and logs it, in the caller's transaction.
pub(crate) fn admit(
    conn: &mut DbConn,
    (issuer, currency): (&Principal, &Currency),
    (member, limit): (&Principal, Option<Amount>),
    actor: PrincipalId,
) -> Result<CurrencyMemberView, ApiError> {
    // Stewards never make anyone pay: a newcomer to a currency with a joining fee joins itself.
    let admitted = set_member(conn, currency, member.id, (limit, Joining::ByStewards))?;
    let balance = scrip_ledger::account(conn, member.id, currency.id)?
        .map_or(Amount::zero(currency.scale), |a| a.balance);
    let line = format!(
        "{} is a member of {} with a credit limit of {}",
        member.handle, currency.code, admitted.credit_limit
    );
    scrip_governance::log(conn, issuer.id, actor, ("currency_member", &line))?;
    view(
        conn,
        currency,
        &admitted,
        (member.handle.to_string(), balance),
    )
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/members", tag = "issuer",
    params(("code" = String, Path), PageQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = crate::dto::CurrencyMemberPage, description = "members by the order they were first known, with their limits and balances"),
        (status = 403, body = Problem, description = "not_owner: stewards only"),
    )
)]
#[get("/api/v1/currencies/{code}/members")]
pub async fn list_members(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let after = query.after_id()?.map(scrip_domain::PrincipalId::new);
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        require_steward(&mut conn, &currency, &caller)?;
        let rows = members_page(&mut conn, &currency, after, limit + 1)?;
        let handles = scrip_ledger::handles(&mut conn, rows.iter().map(|(m, _)| m.principal_id))?;
        let page = Page::from_overfetch(rows, limit, |(m, _)| m.principal_id.get());
        let items = page
            .items
            .iter()
            .map(|(member, balance)| {
                let handle = handles
                    .get(&member.principal_id)
                    .cloned()
                    .unwrap_or_default();
                view(&mut conn, &currency, member, (handle, *balance))
            })
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/join", tag = "issuer",
    request_body = Option<JoinBody>, security(("bearer" = [])),
    params(("code" = String, Path)),
    responses(
        (status = 201, body = CurrencyMemberView, description = "a member now, having paid the joining fee (if any) to the issuer; joining again changes nothing (200)"),
        (status = 403, body = Problem, description = "not_owner: `holder` is not the caller or a business it owns; needs_approval: a business would pay the fee in the currency it issues, which its approval rule guards"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 422, body = Problem, description = "not_admitted (the currency admits members: apply), bad_policy (an open currency has nothing to join), insufficient_funds (the joining fee)"),
    )
)]
#[post("/api/v1/currencies/{code}/join")]
pub async fn join(
    caller: Caller,
    path: web::Path<String>,
    body: OptionalJson<JoinBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0.unwrap_or_default();
    let (status, view) = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let holder =
            scrip_auth::guard::act_as(&mut conn, &caller, body.holder.as_deref(), &registry)?;
        may_join(&currency)?;
        scrip_store::write_transaction(&mut conn, |conn| {
            let status = if scrip_ledger::is_member(conn, currency.id, holder.id)? {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            fee_is_no_issuance(conn, &currency, &holder)?;
            let joined = set_member(conn, &currency, holder.id, (None, Joining::Asked))?;
            // Read again under the currency's lock (taken by set_member): admission turned on
            // meanwhile means applying, not joining (the error rolls the join back).
            may_join(&scrip_ledger::currency_by_id(conn, currency.id)?)?;
            let balance = scrip_ledger::account(conn, holder.id, currency.id)?
                .map_or(Amount::zero(currency.scale), |a| a.balance);
            if status == StatusCode::CREATED {
                let issuer = scrip_ledger::principal_by_id(conn, currency.issuer_id)?;
                let line = format!("{} joined {}", holder.handle, currency.code);
                scrip_governance::log(conn, issuer.id, holder.id, ("currency_joined", &line))?;
            }
            let view = view(
                conn,
                &currency,
                &joined,
                (holder.handle.to_string(), balance),
            )?;
            Ok::<_, ApiError>((status, view))
        })
    })
    .await?;
    Ok(HttpResponse::build(status).json(view))
}

/// A business paying a joining fee in the currency it issues issues money: refused when its
/// approval rule guards issuing that much (one owner alone must not issue by joining).
fn fee_is_no_issuance(
    conn: &mut DbConn,
    currency: &Currency,
    holder: &Principal,
) -> Result<(), ApiError> {
    let Some(fee) = currency.policies.joining_fee else {
        return Ok(());
    };
    let paid_in = scrip_ledger::currency_by_id(conn, fee.currency)?;
    if paid_in.issuer_id != holder.id {
        return Ok(());
    }
    let size = (fee.atoms, paid_in.scale.decimals());
    match scrip_governance::gate_issue(conn, holder.id, size)? {
        Gate::Proceed => Ok(()),
        Gate::Propose { .. } => Err(ApiError::forbidden(
            "needs_approval",
            format!(
                "the joining fee would be paid in {}, which {} issues: its approval rule guards issuing, so join with another holder's money or have the owners pay it out first",
                paid_in.code, holder.handle
            ),
        )),
    }
}

/// Who may join by asking: members of a mutual-credit currency, and newcomers to a currency
/// with a joining fee; a currency that admits members takes applications instead.
fn may_join(currency: &Currency) -> Result<(), ApiError> {
    let policies = &currency.policies;
    if policies.requires_admission {
        return Err(ApiError::unprocessable(
            "not_admitted",
            format!(
                "{} admits its members: apply (POST /api/v1/currencies/{}/applications) and the stewards decide",
                currency.code, currency.code
            ),
        ));
    }
    if policies.kind != CurrencyKind::MutualCredit && policies.joining_fee.is_none() {
        return Err(ApiError::refused_field(
            "bad_policy",
            "currency",
            format!(
                "{} is open to every holder: there is nothing to join",
                currency.code
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(
    delete, path = "/api/v1/currencies/{code}/members/{handle}", tag = "issuer",
    security(("bearer" = [])),
    params(("code" = String, Path), ("handle" = String, Path, description = "the member leaving: the caller or a business it owns")),
    responses(
        (status = 200, body = LeftView, description = "left; the joining fee refunded when its refundable time has passed"),
        (status = 403, body = Problem, description = "not_owner: only the member leaves"),
        (status = 404, body = Problem, description = "not_found, unknown_account (no member)"),
        (status = 422, body = Problem, description = "account_not_empty (leave with nothing held or owed), open_orders (cancel orders in its markets first), insufficient_funds (the issuer cannot refund the fee now: nothing changed)"),
    )
)]
#[delete("/api/v1/currencies/{code}/members/{handle}")]
pub async fn leave(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let (code, handle) = path.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &code)?;
        let member = scrip_auth::guard::act_as(&mut conn, &caller, Some(&handle), &registry)?;
        scrip_store::write_transaction(&mut conn, |conn| {
            let now = scrip_http::now_us();
            let left =
                scrip_ledger::leave(conn, &currency, member.id, now).map_err(|e| match e {
                    scrip_ledger::LedgerError::UnknownPrincipal => ApiError::not_found(
                        "unknown_account",
                        format!("{} is no member of {}", member.handle, currency.code),
                    ),
                    other => other.into(),
                })?;
            let issuer = scrip_ledger::principal_by_id(conn, currency.issuer_id)?;
            let line = format!("{} left {}", member.handle, currency.code);
            scrip_governance::log(conn, issuer.id, member.id, ("currency_left", &line))?;
            Ok::<_, ApiError>(LeftView {
                currency: currency.code.to_string(),
                member: member.handle.to_string(),
                refunded: fee_paid(conn, left.refunded)?,
            })
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
