//! Object-level access checks shared by the services: every lookup by a client-supplied
//! handle goes through here, so "who may see or move what" is decided in one place.

use scrip_domain::CurrencyCode;
use scrip_domain::{Handle, PrincipalKind, RegistryId};
use scrip_http::ApiError;
use scrip_ledger::{Currency, LedgerError, Principal, currency_by_code, principal_by_handle};
use scrip_store::DbConn;

use crate::Caller;
use crate::access::{is_operator, is_owner};

/// A handle or `handle@registry` naming an existing principal; 404 `unknown_account` otherwise.
pub fn resolve(conn: &mut DbConn, raw: &str, registry: &RegistryId) -> Result<Principal, ApiError> {
    let unknown = || {
        ApiError::not_found(
            "unknown_account",
            format!("no account holder named {raw:?}"),
        )
    };
    let handle = Handle::parse_local(raw, registry).map_err(|_| unknown())?;
    principal_by_handle(conn, &handle).map_err(|e| match e {
        LedgerError::UnknownPrincipal => unknown(),
        other => other.into(),
    })
}

/// The currency with code `raw`; a 404 with `not_found_code` when there is none (wallet
/// endpoints say `unknown_account`, as API.md asks, currency endpoints `not_found`).
pub fn currency(
    conn: &mut DbConn,
    raw: &str,
    not_found_code: &'static str,
) -> Result<Currency, ApiError> {
    let unknown = || ApiError::not_found(not_found_code, format!("no currency {raw:?}"));
    let code = CurrencyCode::parse(raw).map_err(|_| unknown())?;
    currency_by_code(conn, &code).map_err(|e| match e {
        LedgerError::UnknownCurrency => unknown(),
        other => other.into(),
    })
}

/// The principal whose money the caller moves (pays from, trades for): itself when `holder`
/// is absent or names the caller, or a business the caller owns. Nobody moves the registry's
/// funds (the fees it collected) through the API, operators included: an operator's one
/// login must not be able to pay the registry's revenue to itself; that takes a role of its
/// own and a second person (the approvals of the governance issue). 403 `not_owner` otherwise.
pub fn act_as(
    conn: &mut DbConn,
    caller: &Caller,
    holder: Option<&str>,
    registry: &RegistryId,
) -> Result<Principal, ApiError> {
    let principal = resolve(conn, holder.unwrap_or(caller.handle.as_str()), registry)?;
    may_move(conn, caller, principal)
}

/// [`act_as`] for a principal already resolved.
fn may_move(
    conn: &mut DbConn,
    caller: &Caller,
    principal: Principal,
) -> Result<Principal, ApiError> {
    if principal.id == caller.id {
        return Ok(principal);
    }
    match principal.kind {
        PrincipalKind::Business if is_owner(conn, principal.id, caller.id)? => Ok(principal),
        PrincipalKind::Registry => Err(ApiError::forbidden(
            "not_owner",
            "the registry's funds cannot be moved through the API, not even by an operator",
        )),
        _ => Err(may_not_act(caller, &principal)),
    }
}

/// The principal whose accounts, history or orders the caller reads: whoever it may act as
/// ([`act_as`]), and for operators the registry too (read only).
pub fn view_as(
    conn: &mut DbConn,
    caller: &Caller,
    holder: Option<&str>,
    registry: &RegistryId,
) -> Result<Principal, ApiError> {
    let principal = resolve(conn, holder.unwrap_or(caller.handle.as_str()), registry)?;
    if principal.kind == PrincipalKind::Registry {
        return if is_operator(conn, caller.id)? {
            Ok(principal)
        } else {
            Err(may_not_act(caller, &principal))
        };
    }
    may_move(conn, caller, principal)
}

fn may_not_act(caller: &Caller, principal: &Principal) -> ApiError {
    ApiError::forbidden(
        "not_owner",
        format!("{} may not act for {}", caller.handle, principal.handle),
    )
}

/// How much of a holder's money the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// Everything: the holder itself, an owner, an operator reading the registry.
    Full,
    /// A worker at a business's till: its balances and the payments it received, nothing
    /// it paid, traded or owes.
    Till,
}

/// [`view_as`], and a business's workers too, who see it as its till does.
pub fn till_view_as(
    conn: &mut DbConn,
    caller: &Caller,
    holder: Option<&str>,
    registry: &RegistryId,
) -> Result<(Principal, Sight), ApiError> {
    let principal = resolve(conn, holder.unwrap_or(caller.handle.as_str()), registry)?;
    if principal.kind == PrincipalKind::Business
        && crate::access::role_in(conn, principal.id, caller.id)?
            == Some(crate::access::Role::Worker)
    {
        return Ok((principal, Sight::Till));
    }
    Ok((view_as(conn, caller, holder, registry)?, Sight::Full))
}
