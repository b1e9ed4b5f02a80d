//! Who may act for whom: credentials, registry roles and business memberships.
//! Functions take a connection so callers can compose them in one transaction with the ledger.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::{Handle, PrincipalId};
use scrip_http::now_us;
use scrip_ledger::LedgerError;
use scrip_store::DbConn;
use scrip_store::schema::{credentials, memberships, principal_roles, principals};

/// A member's role in a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May pay out of the business's accounts, issue its currency, change its policies.
    Owner,
    /// Belongs to the business but may not move its money.
    Worker,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Worker => "worker",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(Self::Owner),
            "worker" => Some(Self::Worker),
            _ => None,
        }
    }
}

/// The registry operator role, granted from the command line only.
pub const OPERATOR: &str = "operator";

pub fn store_credentials(
    conn: &mut DbConn,
    principal: PrincipalId,
    password_hash: &str,
) -> Result<(), LedgerError> {
    diesel::insert_into(credentials::table)
        .values((
            credentials::principal_id.eq(principal.get()),
            credentials::password_hash.eq(password_hash),
            credentials::created_at_us.eq(now_us()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces the principal's password hash.
pub fn set_password_hash(
    conn: &mut DbConn,
    principal: PrincipalId,
    password_hash: &str,
) -> Result<(), LedgerError> {
    diesel::update(credentials::table.find(principal.get()))
        .set(credentials::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(())
}

/// The password hash of the principal, if it has credentials.
pub fn password_hash_of(
    conn: &mut DbConn,
    principal: PrincipalId,
) -> Result<Option<String>, LedgerError> {
    Ok(credentials::table
        .find(principal.get())
        .select(credentials::password_hash)
        .first(conn)
        .optional()?)
}

/// The principal and password hash for a login, if the handle has credentials.
pub fn credentials_of(
    conn: &mut DbConn,
    handle: &Handle,
) -> Result<Option<(PrincipalId, String)>, LedgerError> {
    Ok(principals::table
        .inner_join(credentials::table)
        .filter(principals::handle.eq(handle.as_str()))
        .select((principals::id, credentials::password_hash))
        .first::<(i64, String)>(conn)
        .optional()?
        .map(|(id, hash)| (PrincipalId::new(id), hash)))
}

/// Grants a registry role; granting one already held is a no-op.
pub fn grant_role(
    conn: &mut DbConn,
    principal: PrincipalId,
    role: &str,
) -> Result<(), LedgerError> {
    if roles_of(conn, principal)?.iter().any(|r| r == role) {
        return Ok(());
    }
    diesel::insert_into(principal_roles::table)
        .values((
            principal_roles::principal_id.eq(principal.get()),
            principal_roles::role.eq(role),
            principal_roles::created_at_us.eq(now_us()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn roles_of(conn: &mut DbConn, principal: PrincipalId) -> Result<Vec<String>, LedgerError> {
    Ok(principal_roles::table
        .filter(principal_roles::principal_id.eq(principal.get()))
        .select(principal_roles::role)
        .order(principal_roles::role)
        .load(conn)?)
}

pub fn is_operator(conn: &mut DbConn, principal: PrincipalId) -> Result<bool, LedgerError> {
    Ok(roles_of(conn, principal)?.iter().any(|r| r == OPERATOR))
}

/// Adds (or changes the role of) a member of a business.
pub fn set_member(
    conn: &mut DbConn,
    business: PrincipalId,
    member: PrincipalId,
    role: Role,
) -> Result<(), LedgerError> {
    let updated = diesel::update(memberships::table.find((business.get(), member.get())))
        .set(memberships::role.eq(role.as_str()))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(memberships::table)
            .values((
                memberships::business_id.eq(business.get()),
                memberships::member_id.eq(member.get()),
                memberships::role.eq(role.as_str()),
                memberships::created_at_us.eq(now_us()),
            ))
            .execute(conn)
            .map_err(|e| match e {
                // A concurrent request added the same member first: the same outcome.
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    LedgerError::Store(DieselError::DatabaseError(
                        DatabaseErrorKind::SerializationFailure,
                        Box::new("concurrent membership change".to_owned()),
                    ))
                }
                other => other.into(),
            })?;
    }
    Ok(())
}

/// Ends a membership; whether there was one.
pub fn remove_member(
    conn: &mut DbConn,
    business: PrincipalId,
    member: PrincipalId,
) -> Result<bool, LedgerError> {
    Ok(diesel::delete(memberships::table.find((business.get(), member.get()))).execute(conn)? > 0)
}

/// The member's role in the business, if any.
pub fn role_in(
    conn: &mut DbConn,
    business: PrincipalId,
    member: PrincipalId,
) -> Result<Option<Role>, LedgerError> {
    Ok(memberships::table
        .find((business.get(), member.get()))
        .select(memberships::role)
        .first::<String>(conn)
        .optional()?
        .as_deref()
        .and_then(Role::parse))
}

pub fn is_owner(
    conn: &mut DbConn,
    business: PrincipalId,
    member: PrincipalId,
) -> Result<bool, LedgerError> {
    Ok(role_in(conn, business, member)? == Some(Role::Owner))
}

/// Whether some person owns both businesses (then what passes between them is one person's
/// say-so: obligations are shown apart, and a shop's owner cannot rate it).
pub fn share_an_owner(
    conn: &mut DbConn,
    first: PrincipalId,
    second: PrincipalId,
) -> Result<bool, LedgerError> {
    let (a, b) = diesel::alias!(memberships as a, memberships as b);
    let shared: i64 = a
        .inner_join(
            b.on(b
                .field(memberships::member_id)
                .eq(a.field(memberships::member_id))),
        )
        .filter(a.field(memberships::business_id).eq(first.get()))
        .filter(b.field(memberships::business_id).eq(second.get()))
        .filter(a.field(memberships::role).eq(Role::Owner.as_str()))
        .filter(b.field(memberships::role).eq(Role::Owner.as_str()))
        .count()
        .get_result(conn)?;
    Ok(shared > 0)
}

/// The businesses a principal belongs to, with its role, by handle.
pub fn memberships_of(
    conn: &mut DbConn,
    member: PrincipalId,
) -> Result<Vec<(Handle, Role)>, LedgerError> {
    let rows: Vec<(String, String)> = memberships::table
        .inner_join(principals::table.on(principals::id.eq(memberships::business_id)))
        .filter(memberships::member_id.eq(member.get()))
        .order(principals::handle)
        .select((principals::handle, memberships::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(handle, role)| Some((Handle::parse(&handle).ok()?, Role::parse(&role)?)))
        .collect())
}

/// The businesses a principal belongs to, with its role, by id, at most `limit` of them.
pub fn business_roles(
    conn: &mut DbConn,
    member: PrincipalId,
    limit: i64,
) -> Result<Vec<(PrincipalId, Role)>, LedgerError> {
    let rows: Vec<(i64, String)> = memberships::table
        .filter(memberships::member_id.eq(member.get()))
        .order(memberships::business_id)
        .limit(limit)
        .select((memberships::business_id, memberships::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, role)| Some((PrincipalId::new(id), Role::parse(&role)?)))
        .collect())
}

/// The members of a business with a given role, by handle.
pub fn members_with_role(
    conn: &mut DbConn,
    business: PrincipalId,
    role: Role,
) -> Result<Vec<Handle>, LedgerError> {
    let handles: Vec<String> = memberships::table
        .inner_join(principals::table.on(principals::id.eq(memberships::member_id)))
        .filter(memberships::business_id.eq(business.get()))
        .filter(memberships::role.eq(role.as_str()))
        .order(principals::handle)
        .select(principals::handle)
        .load(conn)?;
    Ok(handles
        .iter()
        .filter_map(|h| Handle::parse(h).ok())
        .collect())
}
