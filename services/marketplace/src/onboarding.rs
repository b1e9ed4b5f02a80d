//! New coinage: the registry gives each person an onboarding allowance in its mutual-credit
//! currency; while it lasts, the registry's fund pays up to half of the person's purchases
//! from sellers whose reputation is high enough, in the same transaction as the deal's own
//! payment (journal kind `onboarding`).
//!
//! The fund is the principal `registry-onboarding` (a handle no one can sign up with). In a
//! mutual-credit currency it pays by going below zero, as any member may, down to the credit
//! limit its stewards give it: the community extends credit to its newcomers, and the sum of
//! every balance stays zero. Abuse is bounded: one allowance per person, never for a deal
//! between principals with a common owner, never from a seller below the reputation floor
//! (counting only what its buyers said, from at least [`reputation::MIN_SELLER_RATERS`]
//! different people), and the fund never past its limit (the ledger's rules refuse it). What
//! stays open: each new sign-up is a new person with a new allowance, bounded only by the
//! sign-up rate limit and the fund's limit.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_auth::Caller;
use scrip_domain::{Amount, CurrencyCode, Handle, PrincipalId, PrincipalKind};
use scrip_http::{ApiError, Problem, blocking, now_us};
use scrip_ledger::{
    Currency, Ledger, LedgerError, Principal, TransferKind, TransferRequest, transfer,
};
use scrip_store::DbConn;
use scrip_store::schema::{deals, onboarding_allowances};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::deals::related;
use crate::reputation;

/// The fund's handle (the `registry` prefix is reserved: no one signs up with it).
pub const FUND_HANDLE: &str = "registry-onboarding";

/// `--onboarding-*`: the currency, the allowance and the reputation a seller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub currency: CurrencyCode,
    /// Each person's allowance, as typed (its scale is the currency's).
    pub credit: String,
    /// The least reputation a seller needs, in hundredths (4.00 is 400).
    pub min_reputation_hundredths: i64,
}

impl Settings {
    /// From the command line: a currency code, a positive allowance and a score of 1 to 5.
    pub fn parse(currency: &str, credit: &str, min_reputation: &str) -> Result<Self, String> {
        let currency = CurrencyCode::parse(currency)
            .map_err(|_| format!("--onboarding-currency: {currency:?} is not a currency code"))?;
        let positive = credit
            .parse::<rust_decimal::Decimal>()
            .is_ok_and(|d| d > rust_decimal::Decimal::ZERO);
        if !positive {
            return Err(format!(
                "--onboarding-credit: {credit:?} is not a positive amount"
            ));
        }
        let score = min_reputation
            .parse::<rust_decimal::Decimal>()
            .ok()
            .filter(|d| (rust_decimal::Decimal::ONE..=rust_decimal::Decimal::from(5)).contains(d))
            .ok_or_else(|| {
                format!(
                    "--onboarding-min-reputation: {min_reputation:?} is not a score from 1 to 5"
                )
            })?;
        let hundredths = (score * rust_decimal::Decimal::from(100)).trunc();
        Ok(Self {
            currency,
            credit: credit.to_owned(),
            min_reputation_hundredths: i64::try_from(hundredths).unwrap_or(500),
        })
    }
}

/// The registry's new coinage, as the deal handlers see it: off, or its settings.
#[derive(Debug, Clone, Default)]
pub struct Onboarding(pub Option<Settings>);

/// What the fund pays of one purchase: half the price (rounded down to the atom), no more
/// than what is left of the allowance, nor than what the fund may still pay.
pub fn share_atoms(price_atoms: i64, allowance_left_atoms: i64, fund_available_atoms: i64) -> i64 {
    (price_atoms / 2)
        .min(allowance_left_atoms)
        .min(fund_available_atoms)
        .max(0)
}

/// A share the fund will pay, decided before the payment and applied inside it.
#[derive(Debug, Clone)]
pub struct Subsidy {
    pub fund: PrincipalId,
    pub buyer: PrincipalId,
    pub seller: PrincipalId,
    pub currency: Currency,
    pub granted_atoms: i64,
    pub atoms: i64,
}

impl Subsidy {
    /// In the deal's transaction: takes the share from the buyer's allowance (refused if a
    /// concurrent purchase took it first) and pays it from the fund to the seller.
    pub fn pay(&self, conn: &mut DbConn) -> Result<i64, LedgerError> {
        let first_use = conn.transaction(|conn| {
            diesel::insert_into(onboarding_allowances::table)
                .values((
                    onboarding_allowances::principal_id.eq(self.buyer.get()),
                    onboarding_allowances::currency_id.eq(self.currency.id.get()),
                    onboarding_allowances::granted_atoms.eq(self.granted_atoms),
                    onboarding_allowances::used_atoms.eq(0_i64),
                    onboarding_allowances::created_at_us.eq(now_us()),
                ))
                .execute(conn)
        });
        match first_use {
            Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(other) => return Err(other.into()),
        }
        let taken = diesel::update(
            onboarding_allowances::table
                .filter(onboarding_allowances::principal_id.eq(self.buyer.get()))
                .filter(
                    onboarding_allowances::granted_atoms
                        .ge(onboarding_allowances::used_atoms + self.atoms),
                ),
        )
        .set(onboarding_allowances::used_atoms.eq(onboarding_allowances::used_atoms + self.atoms))
        .execute(conn)?;
        if taken != 1 {
            return Err(LedgerError::ChangedMeanwhile(
                "the newcomer allowance was used by another purchase meanwhile; try again".into(),
            ));
        }
        let paid = transfer(
            conn,
            &TransferRequest {
                currency: self.currency.id,
                from: self.fund,
                to: self.seller,
                amount: Amount::from_atoms(self.atoms, self.currency.scale),
                kind: TransferKind::Onboarding,
                memo: Some("New coinage: the registry's share of a newcomer's purchase".into()),
            },
        );
        match paid {
            Ok(_) => {}
            // Other purchases took the fund to its limit since this one was priced.
            Err(LedgerError::InsufficientFunds | LedgerError::CreditLimitExceeded) => {
                return Err(LedgerError::ChangedMeanwhile(
                    "the new coinage fund reached its limit meanwhile; try again".into(),
                ));
            }
            Err(other) => return Err(other),
        }
        Ok(self.atoms)
    }
}

fn fund(conn: &mut DbConn) -> Result<Principal, LedgerError> {
    scrip_ledger::principal_by_handle(conn, &Handle::parse(FUND_HANDLE)?)
}

/// What is left of `person`'s allowance, `granted_atoms` when never used.
fn left_atoms(
    conn: &mut DbConn,
    person: PrincipalId,
    granted_atoms: i64,
) -> Result<i64, LedgerError> {
    let row: Option<(i64, i64)> = onboarding_allowances::table
        .find(person.get())
        .select((
            onboarding_allowances::granted_atoms,
            onboarding_allowances::used_atoms,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map_or(granted_atoms, |(granted, used)| granted - used))
}

/// What the fund may still pay in `currency`: its available balance, or for an account not
/// opened yet, the credit line it would open with.
fn fund_available_atoms(
    conn: &mut DbConn,
    fund: PrincipalId,
    currency: &Currency,
) -> Result<i64, LedgerError> {
    match scrip_ledger::account(conn, fund, currency.id)? {
        Some(account) => Ok(account.available().atoms()),
        None => scrip_ledger::credit_before_opening(conn, currency, fund),
    }
}

impl Onboarding {
    /// The fund's share of `price_atoms` of `currency` paid by `buyer` to `seller`, if new
    /// coinage applies to this purchase.
    pub fn subsidy(
        &self,
        conn: &mut DbConn,
        buyer: &Principal,
        seller: &Principal,
        currency: &Currency,
        price_atoms: i64,
    ) -> Result<Option<Subsidy>, ApiError> {
        let Some(settings) = &self.0 else {
            return Ok(None);
        };
        let applies = currency.code == settings.currency
            && currency.policies.kind == scrip_ledger::policy::CurrencyKind::MutualCredit
            && buyer.kind == PrincipalKind::User
            && !related(conn, buyer.id, seller.id)?
            && reputation::as_seller(conn, seller.id.get())?
                .qualifies(settings.min_reputation_hundredths);
        if !applies {
            return Ok(None);
        }
        let Ok(granted) = Amount::parse_positive(&settings.credit, currency.scale) else {
            tracing::warn!(credit = %settings.credit, currency = %currency.code, "the onboarding credit has more decimals than its currency: new coinage is off");
            return Ok(None);
        };
        let fund = fund(conn)?;
        let atoms = share_atoms(
            price_atoms,
            left_atoms(conn, buyer.id, granted.atoms())?,
            fund_available_atoms(conn, fund.id, currency)?,
        );
        Ok((atoms > 0).then(|| Subsidy {
            fund: fund.id,
            buyer: buyer.id,
            seller: seller.id,
            currency: currency.clone(),
            granted_atoms: granted.atoms(),
            atoms,
        }))
    }
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    newcomers: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used_atoms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundView {
    /// Whether the registry gives new coinage (`--onboarding-credit`).
    pub enabled: bool,
    pub currency: Option<String>,
    /// Each person's allowance.
    pub allowance: Option<String>,
    /// The reputation a seller needs (mean rating).
    pub min_reputation: Option<String>,
    /// The fund's principal.
    pub fund: String,
    /// Its balance in the currency (negative: what the community has extended so far).
    pub balance: Option<String>,
    /// How far below zero its stewards let it go.
    pub credit_limit: Option<String>,
    /// People who have used some of their allowance.
    pub newcomers: i64,
    /// What the fund has paid in all.
    pub paid: Option<String>,
    /// Deals it paid part of.
    pub deals: i64,
}

#[utoipa::path(
    get, path = "/api/v1/onboarding", tag = "marketplace", security(("bearer" = [])),
    responses(
        (status = 200, body = FundView, description = "the new-coinage fund: its settings, account and what it paid (operators)"),
        (status = 403, body = Problem, description = "not_operator"),
    )
)]
#[get("/api/v1/onboarding")]
pub async fn fund_view(
    caller: Caller,
    ledger: web::Data<Ledger>,
    onboarding: web::Data<Onboarding>,
) -> Result<HttpResponse, ApiError> {
    let settings = onboarding.0.clone();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        if !scrip_auth::access::is_operator(&mut conn, caller.id)? {
            return Err(ApiError::forbidden(
                "not_operator",
                "the onboarding fund is shown to the registry's operators",
            ));
        }
        let fund = fund(&mut conn)?;
        let totals: Totals = diesel::sql_query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS newcomers, \
             CAST(COALESCE(SUM(used_atoms), 0) AS BIGINT) AS used_atoms FROM onboarding_allowances",
        )
        .get_result(&mut conn)
        .map_err(LedgerError::from)?;
        let (newcomers, used) = (totals.newcomers, totals.used_atoms);
        let deals_paid: i64 = deals::table
            .filter(deals::onboarding_atoms.gt(0))
            .count()
            .get_result(&mut conn)
            .map_err(LedgerError::from)?;
        let currency = match &settings {
            Some(s) => scrip_ledger::currency_by_code(&mut conn, &s.currency).ok(),
            None => None,
        };
        let account = match &currency {
            Some(c) => scrip_ledger::account(&mut conn, fund.id, c.id)?,
            None => None,
        };
        let say = |atoms: i64| {
            currency
                .as_ref()
                .map(|c| Amount::from_atoms(atoms, c.scale).to_string())
        };
        Ok(FundView {
            enabled: settings.is_some(),
            currency: settings.as_ref().map(|s| s.currency.to_string()),
            allowance: settings.as_ref().map(|s| s.credit.clone()),
            min_reputation: settings.as_ref().map(|s| {
                format!(
                    "{}.{:02}",
                    s.min_reputation_hundredths / 100,
                    s.min_reputation_hundredths % 100
                )
            }),
            fund: fund.handle.to_string(),
            balance: account.as_ref().and_then(|a| say(a.balance.atoms())),
            credit_limit: account
                .as_ref()
                .and_then(|a| say(-a.floor.atoms()))
                .or_else(|| {
                    currency
                        .as_ref()
                        .and_then(|c| say(c.policies.member_credit_limit_atoms))
                }),
            newcomers,
            paid: say(used),
            deals: deals_paid,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_fund_pays_half_within_the_allowance_and_its_limit() {
        assert_eq!(share_atoms(450, 2_000, 10_000), 225);
        assert_eq!(
            share_atoms(451, 2_000, 10_000),
            225,
            "rounded down to the atom"
        );
        assert_eq!(
            share_atoms(10_000, 2_000, 10_000),
            2_000,
            "no more than the allowance left"
        );
        assert_eq!(
            share_atoms(10_000, 2_000, 300),
            300,
            "no more than the fund may pay"
        );
        assert_eq!(share_atoms(10_000, 0, 10_000), 0);
        assert_eq!(
            share_atoms(10_000, 2_000, -5),
            0,
            "a fund past its limit pays nothing"
        );
    }

    #[test]
    fn settings_are_checked_when_the_server_starts() {
        let ok = Settings::parse("LETS", "20.00", "4.5").expect("valid");
        assert_eq!(ok.min_reputation_hundredths, 450);
        assert!(Settings::parse("LETS", "0", "4").is_err());
        assert!(Settings::parse("LETS", "-3", "4").is_err());
        assert!(Settings::parse("LETS", "ten", "4").is_err());
        assert!(Settings::parse("LETS", "10", "6").is_err());
        assert!(Settings::parse("lets!", "10", "4").is_err());
    }

    proptest! {
        /// However many purchases, the fund never pays more than half of any, nor more than
        /// the allowance in all, and the buyer's part and the fund's make the price.
        #[test]
        fn an_allowance_is_never_overspent(prices in proptest::collection::vec(1_i64..1_000_000, 1..40), allowance in 0_i64..5_000_000) {
            let mut left = allowance;
            for price in prices {
                let share = share_atoms(price, left, i64::MAX);
                prop_assert!(share >= 0 && 2 * share <= price);
                let buyer = price - share;
                prop_assert_eq!(buyer + share, price);
                prop_assert!(buyer >= share);
                left -= share;
                prop_assert!(left >= 0);
            }
        }
    }
}
