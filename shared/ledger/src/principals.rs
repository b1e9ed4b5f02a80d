//! Principals: the owners of accounts.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Handle, PrincipalId, PrincipalKind};
use scrip_store::DbConn;
use scrip_store::schema::principals;

use crate::model::{PrincipalRow, now_us};
use crate::{LedgerError, Principal};

/// The registry's own principal, created by the first migration; it collects exchange fees.
pub const REGISTRY_HANDLE: &str = "registry";

pub fn create_principal(
    conn: &mut DbConn,
    handle: &Handle,
    kind: PrincipalKind,
    display_name: Option<&str>,
) -> Result<Principal, LedgerError> {
    let row: PrincipalRow = diesel::insert_into(principals::table)
        .values((
            principals::handle.eq(handle.as_str()),
            principals::kind.eq(kind.as_str()),
            principals::display_name.eq(display_name),
            principals::created_at_us.eq(now_us()),
        ))
        .get_result::<PrincipalRow>(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                LedgerError::HandleTaken
            }
            other => other.into(),
        })?;
    row.try_into()
}

pub fn principal_by_handle(conn: &mut DbConn, handle: &Handle) -> Result<Principal, LedgerError> {
    principals::table
        .filter(principals::handle.eq(handle.as_str()))
        .select(PrincipalRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(LedgerError::UnknownPrincipal)?
        .try_into()
}

pub fn principal_by_id(conn: &mut DbConn, id: PrincipalId) -> Result<Principal, LedgerError> {
    principals::table
        .find(id.get())
        .select(PrincipalRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(LedgerError::UnknownPrincipal)?
        .try_into()
}

/// Handles of principals by id, in one query, for rendering lists.
pub fn handles(
    conn: &mut DbConn,
    ids: impl IntoIterator<Item = PrincipalId>,
) -> Result<HashMap<PrincipalId, String>, LedgerError> {
    let ids: Vec<i64> = ids.into_iter().map(PrincipalId::get).collect();
    Ok(principals::table
        .filter(principals::id.eq_any(ids))
        .select((principals::id, principals::handle))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .map(|(id, handle)| (PrincipalId::new(id), handle))
        .collect())
}
