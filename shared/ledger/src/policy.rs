//! A currency's policies (API.md, "Currency policies") as validated values: what kind of LETS
//! it is and the knobs its stewards set. Pure: parsing and checking here, the rules that use
//! them in [`crate::rules`], storage in `currencies.rs`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate};
use scrip_domain::{CurrencyId, PrincipalId};

use crate::LedgerError;

/// Basis points in one whole.
pub const BPS_PER_WHOLE: i64 = 10_000;

/// Who may be below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CurrencyKind {
    /// Only the issuer's account may go negative, down to its credit limit.
    #[default]
    IssuerCredit,
    /// A community LETS: every member may go negative down to its own credit limit.
    MutualCredit,
    /// Like issuer credit, but the issuer's negative balance must stay covered by a reserve
    /// it holds in another currency ([`Backing`]).
    Backed,
}

impl CurrencyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IssuerCredit => "issuer_credit",
            Self::MutualCredit => "mutual_credit",
            Self::Backed => "backed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::IssuerCredit, Self::MutualCredit, Self::Backed]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// How often demurrage is charged. Periods are numbered from 1970-01-01 UTC, so every server
/// agrees on which period a moment falls in: days, weeks starting on Monday, calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemurragePeriod {
    Day,
    Week,
    Month,
}

/// Microseconds in a day (periods, lock and refund times are counted in days).
pub(crate) const US_PER_DAY: i64 = 86_400_000_000;
/// 1970-01-01 was a Thursday: three days after it is the first Monday-based week's day 0.
const EPOCH_WEEKDAY_OFFSET_DAYS: i64 = 3;

impl DemurragePeriod {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Day, Self::Week, Self::Month]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }

    /// The number of the period that `at_us` (microseconds since the epoch) falls in.
    pub fn index_at(self, at_us: i64) -> i64 {
        let days = at_us.div_euclid(US_PER_DAY);
        match self {
            Self::Day => days,
            Self::Week => (days + EPOCH_WEEKDAY_OFFSET_DAYS).div_euclid(7),
            Self::Month => {
                let date = DateTime::from_timestamp_micros(at_us)
                    .map_or(NaiveDate::MIN, |t| t.date_naive());
                (i64::from(date.year()) - 1970) * 12 + i64::from(date.month0())
            }
        }
    }

    /// When period `index` begins, in microseconds since the epoch.
    pub fn start_us(self, index: i64) -> i64 {
        match self {
            Self::Day => index * US_PER_DAY,
            Self::Week => (index * 7 - EPOCH_WEEKDAY_OFFSET_DAYS) * US_PER_DAY,
            Self::Month => {
                let year = 1970 + index.div_euclid(12);
                let month0 = index.rem_euclid(12);
                i32::try_from(year)
                    .ok()
                    .and_then(|y| NaiveDate::from_ymd_opt(y, month0 as u32 + 1, 1))
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map_or(i64::MAX, |t| t.and_utc().timestamp_micros())
            }
        }
    }
}

/// `demurrage`: every positive balance pays `rate_bps` of itself each period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demurrage {
    pub rate_bps: i64,
    pub period: DemurragePeriod,
    /// Who collects it; the issuer when none.
    pub to: Option<PrincipalId>,
}

/// `transfer_fee`: each payment in the currency pays this on top, in the currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferFee {
    pub bps: i64,
    pub min_atoms: i64,
    /// Who collects it; the issuer when none.
    pub to: Option<PrincipalId>,
}

/// The largest reserve ratio: 1,000 % (ten times over-collateralized).
pub const MAX_RATIO_BPS: i64 = 100_000;
/// The longest a reserve may be locked, or a joining fee wait for its refund: ten years.
pub const MAX_DAYS: i64 = 3_650;

/// `backing` of a `backed` currency: issuing needs a reserve held in `currency`, valued at
/// par, of at least `ratio_bps` of what is outstanding; each deposit is locked `lock_days`.
/// Chosen at creation and never changed, so holders can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backing {
    pub currency: CurrencyId,
    pub ratio_bps: i64,
    pub lock_days: i64,
}

/// `joining_fee`: paid once by a new member to the issuer, in `currency` (any currency),
/// refunded on leaving after `refundable_after_days`, never without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoiningFee {
    pub atoms: i64,
    pub currency: CurrencyId,
    pub refundable_after_days: Option<i64>,
}

/// A policy field that can be sealed (never changed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyField {
    CreditLimit,
    MaxBalance,
    MemberCreditLimit,
    MaxPayment,
    TransferFee,
    Demurrage,
    RequiresAdmission,
    Freezable,
    JoiningFee,
}

impl PolicyField {
    pub const ALL: [Self; 9] = [
        Self::CreditLimit,
        Self::MaxBalance,
        Self::MemberCreditLimit,
        Self::MaxPayment,
        Self::TransferFee,
        Self::Demurrage,
        Self::RequiresAdmission,
        Self::Freezable,
        Self::JoiningFee,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreditLimit => "credit_limit",
            Self::MaxBalance => "max_balance",
            Self::MemberCreditLimit => "member_credit_limit",
            Self::MaxPayment => "max_payment",
            Self::TransferFee => "transfer_fee",
            Self::Demurrage => "demurrage",
            Self::RequiresAdmission => "requires_admission",
            Self::Freezable => "freezable",
            Self::JoiningFee => "joining_fee",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }
}

impl fmt::Display for PolicyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every policy of a currency but its credit limit and maximum balance (kept beside them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    pub kind: CurrencyKind,
    /// `mutual_credit` only: the credit limit a new member's account gets.
    pub member_credit_limit_atoms: i64,
    pub max_payment_atoms: Option<i64>,
    pub transfer_fee: Option<TransferFee>,
    pub demurrage: Option<Demurrage>,
    pub requires_admission: bool,
    pub freezable: bool,
    pub sealed: BTreeSet<PolicyField>,
    /// `backed` only, and always there for it.
    pub backing: Option<Backing>,
    pub joining_fee: Option<JoiningFee>,
}

impl Policies {
    /// Whether only members may hold the currency: admission is required, or joining costs a
    /// fee (which a newcomer pays by joining, so nobody becomes a member by being paid).
    pub fn members_only(&self) -> bool {
        self.requires_admission || self.joining_fee.is_some()
    }

    /// Checks the bounds every stored policy keeps (the migration's CHECKs say the same).
    pub fn validate(&self) -> Result<(), LedgerError> {
        let bad = |field: &'static str, why: &str| Err(LedgerError::bad_policy(field, why));
        if self.kind != CurrencyKind::MutualCredit && self.member_credit_limit_atoms != 0 {
            return bad(
                "member_credit_limit",
                "member_credit_limit: only a mutual_credit currency has members' limits",
            );
        }
        if self.member_credit_limit_atoms < 0 {
            return bad(
                "member_credit_limit",
                "member_credit_limit: must not be negative",
            );
        }
        if self.max_payment_atoms.is_some_and(|m| m <= 0) {
            return bad("max_payment", "max_payment: must be more than zero");
        }
        if let Some(fee) = self.transfer_fee
            && (!(1..=BPS_PER_WHOLE).contains(&fee.bps) || fee.min_atoms < 0)
        {
            return bad(
                "transfer_fee",
                "transfer_fee: bps is 1 to 10000 and min is not negative",
            );
        }
        if let Some(demurrage) = self.demurrage
            && !(1..=BPS_PER_WHOLE).contains(&demurrage.rate_bps)
        {
            return bad("demurrage", "demurrage: rate_bps is 1 to 10000");
        }
        match (self.kind, self.backing) {
            (CurrencyKind::Backed, None) => {
                return bad(
                    "backing",
                    "backing: a backed currency names its reserve currency and ratio",
                );
            }
            (CurrencyKind::Backed, Some(b))
                if !(1..=MAX_RATIO_BPS).contains(&b.ratio_bps)
                    || !(0..=MAX_DAYS).contains(&b.lock_days) =>
            {
                return bad(
                    "backing",
                    "backing: ratio_bps is 1 to 100000 (10000 = fully backed), lock_days 0 to 3650",
                );
            }
            (CurrencyKind::IssuerCredit | CurrencyKind::MutualCredit, Some(_)) => {
                return bad("backing", "backing: only a backed currency has a reserve");
            }
            _ => {}
        }
        if let Some(fee) = self.joining_fee
            && (fee.atoms <= 0
                || fee
                    .refundable_after_days
                    .is_some_and(|d| !(0..=MAX_DAYS).contains(&d)))
        {
            return bad(
                "joining_fee",
                "joining_fee: the amount is more than zero, refundable_after_days 0 to 3650",
            );
        }
        Ok(())
    }

    /// The sealed fields as stored: comma-separated, in a fixed order.
    pub fn sealed_text(&self) -> String {
        let names: Vec<&str> = self.sealed.iter().map(|f| f.as_str()).collect();
        names.join(",")
    }

    pub fn parse_sealed(raw: &str) -> Option<BTreeSet<PolicyField>> {
        raw.split(',')
            .filter(|s| !s.is_empty())
            .map(PolicyField::parse)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(date: &str) -> i64 {
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .expect("date")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn periods_are_days_monday_weeks_and_calendar_months() {
        for period in [
            DemurragePeriod::Day,
            DemurragePeriod::Week,
            DemurragePeriod::Month,
        ] {
            for at in ["1970-01-01", "2026-12-02", "2027-02-28", "2028-02-29"] {
                let index = period.index_at(us(at));
                assert!(period.start_us(index) <= us(at), "{period:?} {at}");
                assert!(us(at) < period.start_us(index + 1), "{period:?} {at}");
                assert_eq!(period.index_at(period.start_us(index)), index);
                assert_eq!(period.index_at(period.start_us(index + 1) - 1), index);
            }
        }
        // 2026-11-30 is a Monday: a new week starts there, not on the Sunday before.
        let week = DemurragePeriod::Week;
        assert_eq!(
            week.start_us(week.index_at(us("2026-12-02"))),
            us("2026-11-30")
        );
        assert_eq!(
            DemurragePeriod::Month.start_us(DemurragePeriod::Month.index_at(us("2026-12-02"))),
            us("2026-12-01")
        );
    }

    #[test]
    fn sealed_fields_round_trip_in_a_fixed_order() {
        let policies = Policies {
            sealed: BTreeSet::from([PolicyField::Demurrage, PolicyField::CreditLimit]),
            ..Policies::default()
        };
        assert_eq!(policies.sealed_text(), "credit_limit,demurrage");
        assert_eq!(
            Policies::parse_sealed(&policies.sealed_text()),
            Some(policies.sealed.clone())
        );
        assert_eq!(Policies::parse_sealed(""), Some(BTreeSet::new()));
        assert_eq!(Policies::parse_sealed("credit_limit,nonsense"), None);
    }

    #[test]
    fn bounds_are_checked() {
        let mut p = Policies::default();
        p.validate().expect("defaults");
        p.member_credit_limit_atoms = 5;
        assert!(p.validate().is_err(), "members' limits need mutual credit");
        p.kind = CurrencyKind::MutualCredit;
        p.validate().expect("mutual credit");
        p.transfer_fee = Some(TransferFee {
            bps: 0,
            min_atoms: 0,
            to: None,
        });
        assert!(p.validate().is_err());
    }
}
