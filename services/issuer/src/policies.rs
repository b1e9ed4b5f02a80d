//! Currency policies at the HTTP edge: request bodies parsed into the ledger's validated
//! [`Policies`] and [`LimitsChange`], each refusal naming its field; and the view back.

use std::collections::BTreeSet;

use scrip_domain::{Amount, PrincipalId, RegistryId, Scale};
use scrip_http::{ApiError, rfc3339_from_us};
use scrip_ledger::policy::{
    BPS_PER_WHOLE, Backing, CurrencyKind, Demurrage, DemurragePeriod, JoiningFee, MAX_DAYS,
    MAX_RATIO_BPS, Policies, PolicyField, TransferFee,
};
use scrip_ledger::{Currency, LimitsChange};
use scrip_store::DbConn;

use crate::dto::{
    BackingBody, BackingView, DemurrageBody, DemurrageView, JoiningFeeBody, LimitsPatch,
    NewCurrencyBody, TransferFeeBody,
};

fn refused(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::refused_field("bad_policy", field, detail)
}

fn amount(raw: &str, scale: Scale, field: &str) -> Result<Amount, ApiError> {
    Amount::parse_non_negative(raw, scale)
        .map_err(|e| ApiError::refused_field("bad_amount", field, format!("{field}: {e}")))
}

fn positive(raw: &str, scale: Scale, field: &str) -> Result<Amount, ApiError> {
    Amount::parse_positive(raw, scale)
        .map_err(|e| ApiError::refused_field("bad_amount", field, format!("{field}: {e}")))
}

fn bps(value: i64, field: &str) -> Result<i64, ApiError> {
    if (1..=BPS_PER_WHOLE).contains(&value) {
        Ok(value)
    } else {
        Err(refused(
            field,
            format!("{field} is in basis points, 1 to 10000 (100 = 1 %)"),
        ))
    }
}

/// Who collects a fee or demurrage: a principal of this registry, by handle or address.
fn collector(
    conn: &mut DbConn,
    raw: Option<&str>,
    registry: &RegistryId,
    field: &str,
) -> Result<Option<PrincipalId>, ApiError> {
    raw.map(|raw| {
        scrip_auth::guard::resolve(conn, raw, registry)
            .map(|p| p.id)
            .map_err(|_| refused(field, format!("{field}: nobody here is called {raw:?}")))
    })
    .transpose()
}

fn transfer_fee(
    conn: &mut DbConn,
    body: &TransferFeeBody,
    scale: Scale,
    registry: &RegistryId,
) -> Result<TransferFee, ApiError> {
    Ok(TransferFee {
        bps: bps(body.bps, "transfer_fee.bps")?,
        min_atoms: body
            .min
            .as_deref()
            .map(|m| amount(m, scale, "transfer_fee.min"))
            .transpose()?
            .map_or(0, |m| m.atoms()),
        to: collector(conn, body.to.as_deref(), registry, "transfer_fee.to")?,
    })
}

fn demurrage(
    conn: &mut DbConn,
    body: &DemurrageBody,
    registry: &RegistryId,
) -> Result<Demurrage, ApiError> {
    Ok(Demurrage {
        rate_bps: bps(body.rate_bps, "demurrage.rate_bps")?,
        period: DemurragePeriod::parse(&body.period)
            .ok_or_else(|| refused("demurrage.period", "demurrage.period is day, week or month"))?,
        to: collector(conn, body.to.as_deref(), registry, "demurrage.to")?,
    })
}

/// A currency named by a policy, by its code.
fn named_currency(conn: &mut DbConn, raw: &str, field: &str) -> Result<Currency, ApiError> {
    scrip_auth::guard::currency(conn, raw, "not_found")
        .map_err(|_| refused(field, format!("{field}: there is no currency {raw:?}")))
}

fn days(value: i64, field: &str) -> Result<i64, ApiError> {
    if (0..=MAX_DAYS).contains(&value) {
        Ok(value)
    } else {
        Err(refused(field, format!("{field} is 0 to {MAX_DAYS} days")))
    }
}

fn backing(conn: &mut DbConn, body: &BackingBody) -> Result<Backing, ApiError> {
    if !(1..=MAX_RATIO_BPS).contains(&body.ratio_bps) {
        return Err(refused(
            "backing.ratio_bps",
            "backing.ratio_bps is the reserve per outstanding value in basis points: 10000 = fully backed, 1 to 100000",
        ));
    }
    Ok(Backing {
        currency: named_currency(conn, &body.currency, "backing.currency")?.id,
        ratio_bps: body.ratio_bps,
        lock_days: days(body.lock_days, "backing.lock_days")?,
    })
}

fn joining_fee(conn: &mut DbConn, body: &JoiningFeeBody) -> Result<JoiningFee, ApiError> {
    let paid_in = named_currency(conn, &body.currency, "joining_fee.currency")?;
    Ok(JoiningFee {
        atoms: positive(&body.amount, paid_in.scale, "joining_fee.amount")?.atoms(),
        currency: paid_in.id,
        refundable_after_days: body
            .refundable_after_days
            .map(|d| days(d, "joining_fee.refundable_after_days"))
            .transpose()?,
    })
}

fn sealed(raw: &[String]) -> Result<BTreeSet<PolicyField>, ApiError> {
    raw.iter()
        .map(|name| {
            PolicyField::parse(name).ok_or_else(|| {
                let known: Vec<&str> = PolicyField::ALL.iter().map(|f| f.as_str()).collect();
                refused(
                    "sealed",
                    format!(
                        "{name:?} is no policy that can be sealed: {}",
                        known.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// The policies of a new currency.
pub fn new_policies(
    conn: &mut DbConn,
    body: &NewCurrencyBody,
    scale: Scale,
    registry: &RegistryId,
) -> Result<Policies, ApiError> {
    let kind = match body.kind.as_deref() {
        None => CurrencyKind::IssuerCredit,
        Some(raw) => CurrencyKind::parse(raw)
            .ok_or_else(|| refused("kind", "kind is issuer_credit, mutual_credit or backed"))?,
    };
    let backing = match (&body.backing, kind) {
        (None, CurrencyKind::Backed) => {
            return Err(refused(
                "backing",
                "a backed currency names its reserve: backing {currency, ratio_bps, lock_days}",
            ));
        }
        (Some(_), CurrencyKind::IssuerCredit | CurrencyKind::MutualCredit) => {
            return Err(refused(
                "backing",
                "backing: only a backed currency (kind backed) has a reserve",
            ));
        }
        (Some(b), CurrencyKind::Backed) => Some(backing(conn, b)?),
        (None, _) => None,
    };
    let member_credit_limit_atoms = match body.member_credit_limit.as_deref() {
        Some(_) if kind != CurrencyKind::MutualCredit => {
            return Err(refused(
                "member_credit_limit",
                "member_credit_limit: only a mutual_credit currency gives its members credit",
            ));
        }
        Some(raw) => amount(raw, scale, "member_credit_limit")?.atoms(),
        None => 0,
    };
    Ok(Policies {
        kind,
        member_credit_limit_atoms,
        max_payment_atoms: body
            .max_payment
            .as_deref()
            .map(|m| positive(m, scale, "max_payment"))
            .transpose()?
            .map(|m| m.atoms()),
        transfer_fee: body
            .transfer_fee
            .as_ref()
            .map(|f| transfer_fee(conn, f, scale, registry))
            .transpose()?,
        demurrage: body
            .demurrage
            .as_ref()
            .map(|d| demurrage(conn, d, registry))
            .transpose()?,
        requires_admission: body.requires_admission,
        freezable: body.freezable,
        sealed: sealed(&body.sealed)?,
        backing,
        joining_fee: body
            .joining_fee
            .as_ref()
            .map(|f| joining_fee(conn, f))
            .transpose()?,
    })
}

/// A change of policies; `kind` and `freezable` are chosen once, at creation.
pub fn policy_change(
    conn: &mut DbConn,
    body: &LimitsPatch,
    currency: &Currency,
    registry: &RegistryId,
) -> Result<LimitsChange, ApiError> {
    let scale = currency.scale;
    if body.kind.is_some() {
        return Err(refused(
            "kind",
            "a currency's kind is chosen when it is created",
        ));
    }
    if body.backing.is_some() {
        return Err(refused(
            "backing",
            "a currency's backing is chosen when it is created, so holders can trust it",
        ));
    }
    if body.freezable.is_some() {
        return Err(refused(
            "freezable",
            "freezable is declared when the currency is created, so holders know before they hold it",
        ));
    }
    if body.member_credit_limit.is_some() && currency.policies.kind != CurrencyKind::MutualCredit {
        return Err(refused(
            "member_credit_limit",
            "member_credit_limit: only a mutual_credit currency gives its members credit",
        ));
    }
    Ok(LimitsChange {
        credit_limit: body
            .credit_limit
            .as_deref()
            .map(|c| amount(c, scale, "credit_limit"))
            .transpose()?,
        max_balance: match &body.max_balance {
            None => None,
            Some(None) => Some(None),
            Some(Some(m)) => Some(Some(amount(m, scale, "max_balance")?)),
        },
        member_credit_limit: body
            .member_credit_limit
            .as_deref()
            .map(|m| amount(m, scale, "member_credit_limit"))
            .transpose()?,
        max_payment: match &body.max_payment {
            None => None,
            Some(None) => Some(None),
            Some(Some(m)) => Some(Some(positive(m, scale, "max_payment")?)),
        },
        transfer_fee: match &body.transfer_fee {
            None => None,
            Some(None) => Some(None),
            Some(Some(f)) => Some(Some(transfer_fee(conn, f, scale, registry)?)),
        },
        demurrage: match &body.demurrage {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => Some(Some(demurrage(conn, d, registry)?)),
        },
        requires_admission: body.requires_admission,
        joining_fee: match &body.joining_fee {
            None => None,
            Some(None) => Some(None),
            Some(Some(f)) => Some(Some(joining_fee(conn, f)?)),
        },
        seal: sealed(&body.sealed)?,
    })
}

/// The policy part of a currency's view; handles of collectors come from `handle_of`.
pub struct PolicyView {
    pub kind: String,
    pub member_credit_limit: Option<String>,
    pub max_payment: Option<String>,
    pub transfer_fee: Option<TransferFeeBody>,
    pub demurrage: Option<DemurrageView>,
    pub sealed: Vec<String>,
}

pub fn policy_view(
    currency: &Currency,
    handle_of: &dyn Fn(PrincipalId) -> Option<String>,
    demurrage_collected_atoms: i64,
    now_us: i64,
) -> PolicyView {
    let p = &currency.policies;
    let amount = |atoms| Amount::from_atoms(atoms, currency.scale).to_string();
    PolicyView {
        kind: p.kind.as_str().to_owned(),
        member_credit_limit: (p.kind == CurrencyKind::MutualCredit)
            .then(|| amount(p.member_credit_limit_atoms)),
        max_payment: p.max_payment_atoms.map(amount),
        transfer_fee: p.transfer_fee.map(|f| TransferFeeBody {
            bps: f.bps,
            min: Some(amount(f.min_atoms)),
            to: f.to.and_then(handle_of),
        }),
        demurrage: p.demurrage.map(|d| DemurrageView {
            rate_bps: d.rate_bps,
            period: d.period.as_str().to_owned(),
            to: d.to.and_then(handle_of),
            next_charge_at: rfc3339_from_us(
                scrip_ledger::demurrage::next_charge_at_us(currency, now_us).unwrap_or_default(),
            ),
            collected: amount(demurrage_collected_atoms),
        }),
        sealed: p.sealed.iter().map(|f| f.as_str().to_owned()).collect(),
    }
}

/// A backed currency's backing with its reserve as it stands (a few queries: backed
/// currencies are few).
pub fn backing_view(
    conn: &mut DbConn,
    currency: &Currency,
) -> Result<Option<BackingView>, ApiError> {
    if currency.policies.backing.is_none() {
        return Ok(None);
    }
    let reserve = scrip_ledger::reserve::reserve_of(conn, currency, scrip_http::now_us())?;
    let reserve_currency = &reserve.backing_currency;
    Ok(Some(BackingView {
        currency: reserve_currency.code.to_string(),
        ratio_bps: reserve.backing.ratio_bps,
        lock_days: reserve.backing.lock_days,
        reserve: Amount::from_atoms(reserve.reserve_atoms(), reserve_currency.scale).to_string(),
        backs: Amount::from_atoms(reserve.backs_atoms, currency.scale).to_string(),
    }))
}

/// The joining fee in the currency it is paid in.
pub fn joining_fee_view(
    conn: &mut DbConn,
    currency: &Currency,
) -> Result<Option<JoiningFeeBody>, ApiError> {
    let Some(fee) = currency.policies.joining_fee else {
        return Ok(None);
    };
    let paid_in = scrip_ledger::currency_by_id(conn, fee.currency)?;
    Ok(Some(JoiningFeeBody {
        amount: Amount::from_atoms(fee.atoms, paid_in.scale).to_string(),
        currency: paid_in.code.to_string(),
        refundable_after_days: fee.refundable_after_days,
    }))
}
