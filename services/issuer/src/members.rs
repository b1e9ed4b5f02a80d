//! A business's people: owners and workers, who become members (and workers owners) only by
//! accepting an owner's invitation (a business cannot name anyone its partner without their
//! consent), and leave or are removed, while the business always keeps an owner.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use scrip_auth::Caller;
use scrip_auth::access::{Role, members_with_role, remove_member, role_in, set_member};
use scrip_auth::guard::resolve;
use scrip_auth::invitations::{self, MAX_PENDING_PER_BUSINESS, Pending};
use scrip_domain::{Handle, PrincipalId, PrincipalKind, RegistryId};
use scrip_http::{ApiError, Problem, blocking};
use scrip_ledger::{Ledger, Principal};
use scrip_store::DbConn;

use scrip_governance::store::ProposalRow;
use scrip_governance::{Action, Execute};

use crate::dto::{MemberList, MemberView, NewMember, RoleBody};
use crate::governance::{Asked, Done, act_or_propose};
use crate::handlers::{business, lock_business, require_owner};

fn view(business: &Handle, member: &Handle, role: Role, status: &str) -> MemberView {
    MemberView {
        business: business.to_string(),
        handle: member.to_string(),
        role: role.as_str().to_owned(),
        status: status.to_owned(),
        invited_by: None,
    }
}

fn person(conn: &mut DbConn, raw: &str, registry: &RegistryId) -> Result<Principal, ApiError> {
    let member = resolve(conn, raw, registry)?;
    if member.kind == PrincipalKind::User {
        Ok(member)
    } else {
        Err(ApiError::unprocessable(
            "not_a_person",
            "members are people, not businesses",
        ))
    }
}

/// Refuses `change` when it would leave the business without an owner.
fn keeps_an_owner(
    conn: &mut DbConn,
    business: &Principal,
    member: &Principal,
) -> Result<(), ApiError> {
    let is_owner = role_in(conn, business.id, member.id)? == Some(Role::Owner);
    if !is_owner {
        return Ok(());
    }
    let owners = members_with_role(conn, business.id, Role::Owner)?.len();
    if owners == 1 {
        return Err(ApiError::unprocessable(
            "last_owner",
            "a business keeps at least one owner",
        ));
    }
    let required = scrip_governance::store::rule_of(conn, business.id)?.required;
    if u32::try_from(owners - 1).unwrap_or(u32::MAX) < required {
        return Err(ApiError::unprocessable(
            "not_enough_owners",
            format!(
                "{} needs {required} owners to agree on its guarded actions: lower its approval rule before it has fewer owners",
                business.handle
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/api/v1/businesses/{handle}/members", tag = "issuer", request_body = NewMember,
    security(("bearer" = [])),
    params(("handle" = String, Path)),
    responses(
        (status = 201, body = MemberView, description = "a member's role changed (`status: active`), or a person invited (`status: invited`): they become a member when they accept"),
        (status = 202, body = scrip_governance::Proposed, description = "the approval rule guards members: a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown business or member"),
        (status = 409, body = Problem, description = "too_many_invitations"),
        (status = 422, body = Problem, description = "bad_role, not_a_person, last_owner"),
    )
)]
#[post("/api/v1/businesses/{handle}/members")]
pub async fn add_member(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<NewMember>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::unprocessable("bad_role", "role is \"owner\" or \"worker\""))?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        require_owner(&mut conn, &business, &caller)?;
        let member = person(&mut conn, &body.handle, &registry)?;
        scrip_store::write_transaction(&mut conn, |conn| {
            // Membership changes of one business are serialized on its row, and the caller's
            // ownership is checked again under that lock: two owners demoting each other at
            // once cannot leave the business with none (write skew).
            lock_business(conn, &business)?;
            guarded_change(conn, (&business, &member), role, &caller)
        })
    })
    .await?;
    Ok(view.respond(StatusCode::CREATED))
}

/// A change of role or an invitation, now or as a proposal when the rule guards members.
fn guarded_change(
    conn: &mut DbConn,
    (business, member): (&Principal, &Principal),
    role: Role,
    caller: &Caller,
) -> Result<Done<MemberView>, ApiError> {
    require_owner(conn, business, caller)?;
    let gate = scrip_governance::gate(conn, business.id, Action::Members)?;
    act_or_propose(
        conn,
        (business, caller.id),
        gate,
        || Asked {
            action: Action::Members,
            payload: serde_json::json!({"op": "role", "member": member.handle.to_string(), "role": role.as_str()}),
            summary: format!(
                "make {} a {} of {}",
                member.handle,
                role.as_str(),
                business.handle
            ),
        },
        |conn| change_or_invite(conn, (business, member), role, caller),
    )
}

#[utoipa::path(
    patch, path = "/api/v1/businesses/{handle}/members/{member}", tag = "issuer", request_body = RoleBody,
    security(("bearer" = [])),
    params(("handle" = String, Path), ("member" = String, Path)),
    responses(
        (status = 200, body = MemberView, description = "the member's role changed (`active`), or, for a worker made owner, an invitation the person accepts (`invited`)"),
        (status = 202, body = scrip_governance::Proposed, description = "the approval rule guards members: a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "no such business, or not a member"),
        (status = 422, body = Problem, description = "bad_role, last_owner, not_enough_owners"),
    )
)]
#[patch("/api/v1/businesses/{handle}/members/{member}")]
pub async fn patch_member(
    caller: Caller,
    path: web::Path<(String, String)>,
    body: scrip_http::Json<RoleBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::refused_field("bad_role", "role", "role is \"owner\" or \"worker\"")
    })?;
    let done = under_business_lock(
        &ledger,
        &registry,
        path.into_inner(),
        move |conn, business, member| {
            if role_in(conn, business.id, member.id)?.is_none() {
                return Err(not_a_member(business, member));
            }
            guarded_change(conn, (business, member), role, &caller)
        },
    )
    .await?;
    Ok(done.respond(StatusCode::OK))
}

fn not_a_member(business: &Principal, member: &Principal) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("{} is not a member of {}", member.handle, business.handle),
    )
}

/// Runs an approved proposal about members, as its proposer (still checked as an owner's
/// act would be: the last owner stays, becoming an owner takes the person's consent).
pub(crate) struct MembersExecutor {
    pub registry: RegistryId,
}

impl Execute for MembersExecutor {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        row: &ProposalRow,
    ) -> Result<serde_json::Value, ApiError> {
        let asked: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| ApiError::Internal(format!("proposal {}: {e}", row.id)))?;
        let text = |key: &str| asked.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        if text("op") == "admit" {
            let actor = PrincipalId::new(row.proposed_by);
            return crate::admission::execute_admission(conn, business, &asked, actor);
        }
        let member = person(conn, text("member"), &self.registry)?;
        let proposer = scrip_ledger::principal_by_id(conn, PrincipalId::new(row.proposed_by))?;
        let actor = Caller {
            id: proposer.id,
            handle: proposer.handle,
            session_id: None,
        };
        let view = match text("op") {
            "remove" => removal(conn, (business, &member), &actor)?,
            _ => {
                let role = Role::parse(text("role"))
                    .ok_or_else(|| ApiError::Internal(format!("proposal {}: no role", row.id)))?;
                change_or_invite(conn, (business, &member), role, &actor)?
            }
        };
        serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// Under the business's lock: a member's new role, or an invitation for anyone else.
fn change_or_invite(
    conn: &mut DbConn,
    (business, member): (&Principal, &Principal),
    role: Role,
    caller: &Caller,
) -> Result<MemberView, ApiError> {
    let current = role_in(conn, business.id, member.id)?;
    // Becoming an owner (a partner, shown on the public profile) takes the person's consent,
    // as becoming a member does; a demotion is the owners' call (their approvals are the
    // governance issue's).
    let needs_consent = current.is_none() || (current == Some(Role::Worker) && role == Role::Owner);
    if !needs_consent {
        if role == Role::Worker {
            keeps_an_owner(conn, business, member)?;
        }
        set_member(conn, business.id, member.id, role)?;
        let line = format!("{} is now a {}", member.handle, role.as_str());
        scrip_governance::log(conn, business.id, caller.id, ("member_role", &line))?;
        return Ok(view(&business.handle, &member.handle, role, "active"));
    }
    let pending = invitations::pending_count(conn, business.id)?;
    let renewing = invitations::take(conn, business.id, member.id)?.is_some();
    if !renewing && pending >= MAX_PENDING_PER_BUSINESS {
        return Err(ApiError::conflict(
            "too_many_invitations",
            format!(
                "{} already has {MAX_PENDING_PER_BUSINESS} invitations waiting; withdraw some first",
                business.handle
            ),
        ));
    }
    invitations::invite(conn, (business.id, member.id), role, caller.id)?;
    let line = format!("invited {} to be a {}", member.handle, role.as_str());
    scrip_governance::log(conn, business.id, caller.id, ("member_invited", &line))?;
    let mut invited = view(&business.handle, &member.handle, role, "invited");
    invited.invited_by = Some(caller.handle.to_string());
    Ok(invited)
}

#[utoipa::path(
    post, path = "/api/v1/businesses/{handle}/invitations/{member}/accept", tag = "issuer",
    security(("bearer" = [])),
    params(("handle" = String, Path), ("member" = String, Path, description = "the caller's own handle")),
    responses(
        (status = 200, body = MemberView, description = "the caller is now a member in the role offered"),
        (status = 403, body = Problem, description = "not_invited: only the person invited accepts"),
        (status = 404, body = Problem, description = "no such business, or no invitation waiting"),
    )
)]
#[post("/api/v1/businesses/{handle}/invitations/{member}/accept")]
pub async fn accept_invitation(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = under_business_lock(
        &ledger,
        &registry,
        path.into_inner(),
        move |conn, business, member| {
            if member.id != caller.id {
                return Err(ApiError::forbidden(
                    "not_invited",
                    "only the person invited may accept an invitation",
                ));
            }
            let Some(role) = invitations::take(conn, business.id, member.id)? else {
                return Err(ApiError::not_found(
                    "not_found",
                    format!("no invitation from {} is waiting for you", business.handle),
                ));
            };
            set_member(conn, business.id, member.id, role)?;
            let line = format!("{} accepted and is now a {}", member.handle, role.as_str());
            scrip_governance::log(conn, business.id, member.id, ("member_joined", &line))?;
            Ok(view(&business.handle, &member.handle, role, "active"))
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete, path = "/api/v1/businesses/{handle}/invitations/{member}", tag = "issuer",
    security(("bearer" = [])),
    params(("handle" = String, Path), ("member" = String, Path)),
    responses(
        (status = 200, body = MemberView, description = "`withdrawn`: an owner took the invitation back, or the person declined it"),
        (status = 403, body = Problem, description = "not_owner: only owners, or the person invited"),
        (status = 404, body = Problem, description = "no such business, person or invitation"),
    )
)]
#[delete("/api/v1/businesses/{handle}/invitations/{member}")]
pub async fn withdraw_invitation(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = under_business_lock(
        &ledger,
        &registry,
        path.into_inner(),
        move |conn, business, member| {
            if member.id != caller.id {
                require_owner(conn, business, &caller)?;
            }
            match invitations::take(conn, business.id, member.id)? {
                Some(role) => {
                    let line = format!("the invitation of {} was withdrawn", member.handle);
                    scrip_governance::log(
                        conn,
                        business.id,
                        caller.id,
                        ("invitation_withdrawn", &line),
                    )?;
                    Ok(view(&business.handle, &member.handle, role, "withdrawn"))
                }
                None => Err(ApiError::not_found(
                    "not_found",
                    format!(
                        "{} has no invitation waiting for {}",
                        business.handle, member.handle
                    ),
                )),
            }
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete, path = "/api/v1/businesses/{handle}/members/{member}", tag = "issuer",
    security(("bearer" = [])),
    params(("handle" = String, Path), ("member" = String, Path)),
    responses(
        (status = 200, body = MemberView, description = "`removed`: the membership ended (an owner removed them, or they left)"),
        (status = 202, body = scrip_governance::Proposed, description = "the approval rule guards members: a proposal (leaving is never guarded)"),
        (status = 403, body = Problem, description = "not_owner: only owners, or the member themself"),
        (status = 404, body = Problem, description = "no such business, or not a member (an invitation is withdrawn at /invitations)"),
        (status = 422, body = Problem, description = "last_owner, not_enough_owners"),
    )
)]
#[delete("/api/v1/businesses/{handle}/members/{member}")]
pub async fn remove(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let done = under_business_lock(
        &ledger,
        &registry,
        path.into_inner(),
        move |conn, business, member| guarded_removal(conn, (business, member), &caller),
    )
    .await?;
    Ok(done.respond(StatusCode::OK))
}

/// A member leaving (never guarded), or an owner removing one (guarded by the rule).
fn guarded_removal(
    conn: &mut DbConn,
    (business, member): (&Principal, &Principal),
    caller: &Caller,
) -> Result<Done<MemberView>, ApiError> {
    if member.id == caller.id {
        return removal(conn, (business, member), caller).map(Done::Now);
    }
    require_owner(conn, business, caller)?;
    if role_in(conn, business.id, member.id)?.is_none() {
        return Err(not_a_member(business, member));
    }
    let gate = scrip_governance::gate(conn, business.id, Action::Members)?;
    act_or_propose(
        conn,
        (business, caller.id),
        gate,
        || Asked {
            action: Action::Members,
            payload: serde_json::json!({"op": "remove", "member": member.handle.to_string()}),
            summary: format!("remove {} from {}", member.handle, business.handle),
        },
        |conn| removal(conn, (business, member), caller),
    )
}

fn removal(
    conn: &mut DbConn,
    (business, member): (&Principal, &Principal),
    caller: &Caller,
) -> Result<MemberView, ApiError> {
    let Some(role) = role_in(conn, business.id, member.id)? else {
        return Err(not_a_member(business, member));
    };
    keeps_an_owner(conn, business, member)?;
    remove_member(conn, business.id, member.id)?;
    let line = if member.id == caller.id {
        format!("{} left (was a {})", member.handle, role.as_str())
    } else {
        format!("{} was removed (was a {})", member.handle, role.as_str())
    };
    scrip_governance::log(conn, business.id, caller.id, ("member_removed", &line))?;
    Ok(view(&business.handle, &member.handle, role, "removed"))
}

/// Runs `change` on the business and the person named in `path` in one write transaction,
/// under the business's row lock (membership changes of one business are serialized).
async fn under_business_lock<T: Send + 'static>(
    ledger: &web::Data<Ledger>,
    registry: &web::Data<RegistryId>,
    (business_raw, member_raw): (String, String),
    change: impl Fn(&mut DbConn, &Principal, &Principal) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (ledger, registry) = (ledger.clone(), registry.clone());
    blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &business_raw, &registry)?;
        let member = person(&mut conn, &member_raw, &registry)?;
        // A refusal rolls back whatever the change wrote before it.
        scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &business)?;
            change(conn, &business, &member)
        })
    })
    .await
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/members", tag = "issuer",
    security(("bearer" = [])),
    params(("handle" = String, Path)),
    responses(
        (status = 200, body = MemberList),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown business"),
    )
)]
#[get("/api/v1/businesses/{handle}/members")]
pub async fn list_members(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        require_owner(&mut conn, &business, &caller)?;
        let mut items = Vec::new();
        for role in [Role::Owner, Role::Worker] {
            for handle in members_with_role(&mut conn, business.id, role)? {
                items.push(view(&business.handle, &handle, role, "active"));
            }
        }
        for invitation in invitations::pending(&mut conn, Pending::OfBusiness(business.id))? {
            let mut invited = view(
                &business.handle,
                &invitation.member,
                invitation.role,
                "invited",
            );
            invited.invited_by = Some(invitation.invited_by.to_string());
            items.push(invited);
        }
        Ok(MemberList { items })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}
