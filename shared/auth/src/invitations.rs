//! Membership by invitation: an owner invites a person to be an owner or a worker of a
//! business, and only the person's acceptance makes them a member. Until then nothing shows
//! the partnership (not the public profile, not the person's businesses), so a business
//! cannot name someone its partner without consent.

use diesel::prelude::*;
use scrip_domain::{Handle, PrincipalId};
use scrip_http::now_us;
use scrip_ledger::LedgerError;
use scrip_store::DbConn;
use scrip_store::schema::{invitations, principals};

use crate::access::Role;

/// Most invitations one business may have waiting: a business cannot flood everyone.
pub const MAX_PENDING_PER_BUSINESS: i64 = 50;

/// An invitation waiting for the person it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub business: Handle,
    pub member: Handle,
    pub role: Role,
    pub invited_by: Handle,
    pub created_at_us: i64,
}

/// Invites `member` to `business` in `role`, or changes the role of the waiting invitation.
pub fn invite(
    conn: &mut DbConn,
    (business, member): (PrincipalId, PrincipalId),
    role: Role,
    invited_by: PrincipalId,
) -> Result<(), LedgerError> {
    diesel::delete(invitations::table.find((business.get(), member.get()))).execute(conn)?;
    diesel::insert_into(invitations::table)
        .values((
            invitations::business_id.eq(business.get()),
            invitations::member_id.eq(member.get()),
            invitations::role.eq(role.as_str()),
            invitations::invited_by.eq(invited_by.get()),
            invitations::created_at_us.eq(now_us()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the invitation of `member` to `business`; the role it offered, if there was one.
pub fn take(
    conn: &mut DbConn,
    business: PrincipalId,
    member: PrincipalId,
) -> Result<Option<Role>, LedgerError> {
    let role: Option<String> =
        diesel::delete(invitations::table.find((business.get(), member.get())))
            .returning(invitations::role)
            .get_result(conn)
            .optional()?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// Withdraws every invitation of `business` to become an owner; the handles invited.
pub fn withdraw_owner_invitations(
    conn: &mut DbConn,
    business: PrincipalId,
) -> Result<Vec<String>, LedgerError> {
    let invited: Vec<String> = invitations::table
        .inner_join(principals::table.on(principals::id.eq(invitations::member_id)))
        .filter(invitations::business_id.eq(business.get()))
        .filter(invitations::role.eq(Role::Owner.as_str()))
        .select(principals::handle)
        .load(conn)?;
    diesel::delete(
        invitations::table
            .filter(invitations::business_id.eq(business.get()))
            .filter(invitations::role.eq(Role::Owner.as_str())),
    )
    .execute(conn)?;
    Ok(invited)
}

/// How many invitations of `business` wait.
pub fn pending_count(conn: &mut DbConn, business: PrincipalId) -> Result<i64, LedgerError> {
    Ok(invitations::table
        .filter(invitations::business_id.eq(business.get()))
        .count()
        .get_result(conn)?)
}

/// The invitations waiting for `member` (as the person), or of `business`, oldest first.
pub fn pending(conn: &mut DbConn, of: Pending) -> Result<Vec<Invitation>, LedgerError> {
    let (businesses, members, inviters) = diesel::alias!(
        principals as businesses,
        principals as members,
        principals as inviters
    );
    let mut query = invitations::table
        .inner_join(
            businesses.on(businesses
                .field(principals::id)
                .eq(invitations::business_id)),
        )
        .inner_join(members.on(members.field(principals::id).eq(invitations::member_id)))
        .inner_join(inviters.on(inviters.field(principals::id).eq(invitations::invited_by)))
        .order((
            invitations::created_at_us,
            invitations::business_id,
            invitations::member_id,
        ))
        .select((
            businesses.field(principals::handle),
            members.field(principals::handle),
            invitations::role,
            inviters.field(principals::handle),
            invitations::created_at_us,
        ))
        .into_boxed();
    query = match of {
        Pending::ForMember(member) => query.filter(invitations::member_id.eq(member.get())),
        Pending::OfBusiness(business) => query.filter(invitations::business_id.eq(business.get())),
    };
    let rows: Vec<(String, String, String, String, i64)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(business, member, role, by, at)| {
            Some(Invitation {
                business: Handle::parse(&business).ok()?,
                member: Handle::parse(&member).ok()?,
                role: Role::parse(&role)?,
                invited_by: Handle::parse(&by).ok()?,
                created_at_us: at,
            })
        })
        .collect())
}

/// Whose invitations [`pending`] lists.
#[derive(Debug, Clone, Copy)]
pub enum Pending {
    ForMember(PrincipalId),
    OfBusiness(PrincipalId),
}
