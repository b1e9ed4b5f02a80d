//! What the ledger stores, as validated types. Rows are converted once when loaded.

use scrip_domain::{
    AccountId, Amount, CurrencyCode, CurrencyId, Handle, HoldId, Par, PrincipalId, PrincipalKind,
    Scale, TransferId, UnitCode,
};
use scrip_store::schema::{accounts, currencies, principals, transfers};

use diesel::prelude::*;

use crate::LedgerError;
use crate::policy::{
    Backing, CurrencyKind, Demurrage, DemurragePeriod, JoiningFee, Policies, TransferFee,
};

/// Amounts and limits are bounded well inside `i64` so that `balance - amount` and
/// `balance + amount` can never overflow in SQL, whatever the order of operations:
/// every balance lies within `[-MAX_AMOUNT_ATOMS, MAX_AMOUNT_ATOMS]`.
pub const MAX_AMOUNT_ATOMS: i64 = 1_000_000_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: PrincipalId,
    pub handle: Handle,
    pub kind: PrincipalKind,
    pub display_name: Option<String>,
    pub created_at_us: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = principals)]
pub(crate) struct PrincipalRow {
    id: i64,
    handle: String,
    kind: String,
    display_name: Option<String>,
    created_at_us: i64,
}

impl TryFrom<PrincipalRow> for Principal {
    type Error = LedgerError;
    fn try_from(row: PrincipalRow) -> Result<Self, LedgerError> {
        Ok(Self {
            id: PrincipalId::new(row.id),
            handle: Handle::parse(&row.handle)?,
            kind: PrincipalKind::parse(&row.kind).ok_or(corrupt("principals.kind"))?,
            display_name: row.display_name,
            created_at_us: row.created_at_us,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub id: CurrencyId,
    pub code: CurrencyCode,
    pub name: String,
    pub issuer_id: PrincipalId,
    pub scale: Scale,
    pub credit_limit: Amount,
    pub max_balance: Option<Amount>,
    pub unit: UnitCode,
    pub par: Par,
    pub created_at_us: i64,
    pub policies: Policies,
    /// The last demurrage period every account has paid (none without demurrage).
    pub demurrage_through: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = currencies)]
pub(crate) struct CurrencyRow {
    id: i64,
    code: String,
    name: String,
    issuer_id: i64,
    scale: i32,
    credit_limit_atoms: i64,
    max_balance_atoms: Option<i64>,
    unit: String,
    par: String,
    created_at_us: i64,
    kind: String,
    member_credit_limit_atoms: i64,
    max_payment_atoms: Option<i64>,
    transfer_fee_bps: Option<i32>,
    transfer_fee_min_atoms: i64,
    transfer_fee_to_id: Option<i64>,
    demurrage_rate_bps: Option<i32>,
    demurrage_period: Option<String>,
    demurrage_to_id: Option<i64>,
    demurrage_through: Option<i64>,
    requires_admission: i32,
    freezable: i32,
    sealed: String,
    backing_currency_id: Option<i64>,
    backing_ratio_bps: Option<i32>,
    backing_lock_days: Option<i32>,
    joining_fee_atoms: Option<i64>,
    joining_fee_currency_id: Option<i64>,
    joining_fee_refundable_after_days: Option<i32>,
}

impl CurrencyRow {
    fn policies(&self) -> Result<Policies, LedgerError> {
        let transfer_fee = self.transfer_fee_bps.map(|bps| TransferFee {
            bps: i64::from(bps),
            min_atoms: self.transfer_fee_min_atoms,
            to: self.transfer_fee_to_id.map(PrincipalId::new),
        });
        let demurrage = match (self.demurrage_rate_bps, &self.demurrage_period) {
            (Some(rate_bps), Some(period)) => Some(Demurrage {
                rate_bps: i64::from(rate_bps),
                period: DemurragePeriod::parse(period)
                    .ok_or(corrupt("currencies.demurrage_period"))?,
                to: self.demurrage_to_id.map(PrincipalId::new),
            }),
            _ => None,
        };
        let backing = match (
            self.backing_currency_id,
            self.backing_ratio_bps,
            self.backing_lock_days,
        ) {
            (Some(currency), Some(ratio_bps), Some(lock_days)) => Some(Backing {
                currency: CurrencyId::new(currency),
                ratio_bps: i64::from(ratio_bps),
                lock_days: i64::from(lock_days),
            }),
            _ => None,
        };
        let joining_fee = match (self.joining_fee_atoms, self.joining_fee_currency_id) {
            (Some(atoms), Some(currency)) => Some(JoiningFee {
                atoms,
                currency: CurrencyId::new(currency),
                refundable_after_days: self.joining_fee_refundable_after_days.map(i64::from),
            }),
            _ => None,
        };
        Ok(Policies {
            backing,
            joining_fee,
            kind: CurrencyKind::parse(&self.kind).ok_or(corrupt("currencies.kind"))?,
            member_credit_limit_atoms: self.member_credit_limit_atoms,
            max_payment_atoms: self.max_payment_atoms,
            transfer_fee,
            demurrage,
            requires_admission: self.requires_admission != 0,
            freezable: self.freezable != 0,
            sealed: Policies::parse_sealed(&self.sealed).ok_or(corrupt("currencies.sealed"))?,
        })
    }
}

impl TryFrom<CurrencyRow> for Currency {
    type Error = LedgerError;
    fn try_from(row: CurrencyRow) -> Result<Self, LedgerError> {
        let scale = Scale::new(i64::from(row.scale))?;
        let policies = row.policies()?;
        Ok(Self {
            policies,
            demurrage_through: row.demurrage_through,
            id: CurrencyId::new(row.id),
            code: CurrencyCode::parse(&row.code)?,
            name: row.name,
            issuer_id: PrincipalId::new(row.issuer_id),
            scale,
            credit_limit: Amount::from_atoms(row.credit_limit_atoms, scale),
            max_balance: row.max_balance_atoms.map(|a| Amount::from_atoms(a, scale)),
            unit: UnitCode::parse(&row.unit)?,
            par: Par::parse(&row.par)?,
            created_at_us: row.created_at_us,
        })
    }
}

/// One principal's position in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub principal_id: PrincipalId,
    pub currency_id: CurrencyId,
    pub balance: Amount,
    /// Reserved by holds (open orders); not spendable.
    pub held: Amount,
    /// The lowest the balance may go: `-credit_limit` for the issuer, zero for everyone else.
    pub floor: Amount,
    /// The currency's `max_balance` for holders; none for the issuer.
    pub ceiling: Option<Amount>,
    /// Frozen by the stewards: can neither pay nor trade.
    pub frozen: bool,
}

impl Account {
    /// `balance - held - floor`: what a transfer, hold or order may spend.
    pub fn available(&self) -> Amount {
        let atoms = self.balance.atoms() - self.held.atoms() - self.floor.atoms();
        Amount::from_atoms(atoms, self.balance.scale())
    }
}

#[derive(Queryable, QueryableByName, Selectable, Debug, Clone, Copy)]
#[diesel(table_name = accounts)]
pub(crate) struct AccountRow {
    pub id: i64,
    pub principal_id: i64,
    pub currency_id: i64,
    pub balance_atoms: i64,
    pub held_atoms: i64,
    pub floor_atoms: i64,
    pub ceiling_atoms: Option<i64>,
    /// 0 or 1 (the schema keeps to integers on both backends).
    pub frozen: i32,
}

impl AccountRow {
    pub(crate) fn into_account(self, scale: Scale) -> Account {
        let amount = |atoms| Amount::from_atoms(atoms, scale);
        Account {
            id: AccountId::new(self.id),
            principal_id: PrincipalId::new(self.principal_id),
            currency_id: CurrencyId::new(self.currency_id),
            balance: amount(self.balance_atoms),
            held: amount(self.held_atoms),
            floor: amount(self.floor_atoms),
            ceiling: self.ceiling_atoms.map(amount),
            frozen: self.frozen != 0,
        }
    }
}

/// Why money moved. Every balance change is exactly one transfer of one of these kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// A payment between principals; out of the issuer's account it is issuance, into it redemption.
    Payment,
    /// One side of a trade fill on the exchange.
    Trade,
    /// An exchange fee paid to the registry.
    Fee,
    /// A set-off applied by a clearing run.
    Clearing,
    /// A currency's transfer fee, paid on top of a payment to its collector.
    TransferFee,
    /// A currency's demurrage, paid by a positive balance once per period.
    Demurrage,
    /// New coinage: the registry's onboarding fund paying part of a newcomer's purchase.
    Onboarding,
    /// A currency's joining fee, paid once by a new member to the issuer.
    JoiningFee,
    /// A joining fee given back to a member leaving after the refundable time.
    JoiningFeeRefund,
}

impl TransferKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Trade => "trade",
            Self::Fee => "fee",
            Self::Clearing => "clearing",
            Self::TransferFee => "transfer_fee",
            Self::Demurrage => "demurrage",
            Self::Onboarding => "onboarding",
            Self::JoiningFee => "joining_fee",
            Self::JoiningFeeRefund => "joining_fee_refund",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Payment,
            Self::Trade,
            Self::Fee,
            Self::Clearing,
            Self::TransferFee,
            Self::Demurrage,
            Self::Onboarding,
            Self::JoiningFee,
            Self::JoiningFeeRefund,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub currency_id: CurrencyId,
    pub from_account: AccountId,
    pub to_account: AccountId,
    pub amount: Amount,
    pub kind: TransferKind,
    pub memo: Option<String>,
    /// Set when the money came out of a hold (a trade settling an order's reserved funds).
    pub hold_id: Option<HoldId>,
    pub created_at_us: i64,
    /// The currency's transfer fee this payment paid on top (a journal line of its own, kind
    /// `transfer_fee`). Reported by the payment that made it; `None` for a line read back
    /// from the journal.
    pub fee: Option<Amount>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = transfers)]
pub(crate) struct TransferRow {
    pub id: i64,
    pub currency_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    amount_atoms: i64,
    kind: String,
    memo: Option<String>,
    hold_id: Option<i64>,
    created_at_us: i64,
}

impl TransferRow {
    pub(crate) fn into_transfer(self, scale: Scale) -> Result<Transfer, LedgerError> {
        Ok(Transfer {
            id: TransferId::new(self.id),
            currency_id: CurrencyId::new(self.currency_id),
            from_account: AccountId::new(self.from_account_id),
            to_account: AccountId::new(self.to_account_id),
            amount: Amount::from_atoms(self.amount_atoms, scale),
            kind: TransferKind::parse(&self.kind).ok_or(corrupt("transfers.kind"))?,
            memo: self.memo,
            hold_id: self.hold_id.map(HoldId::new),
            created_at_us: self.created_at_us,
            fee: None,
        })
    }
}

#[derive(Insertable, Debug)]
#[diesel(table_name = transfers)]
pub(crate) struct NewTransferRow<'a> {
    pub currency_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount_atoms: i64,
    pub kind: &'a str,
    pub memo: Option<&'a str>,
    pub hold_id: Option<i64>,
    pub created_at_us: i64,
}

/// A stored row that no longer parses means someone wrote the database behind the ledger's back.
fn corrupt(what: &'static str) -> LedgerError {
    LedgerError::Store(diesel::result::Error::DeserializationError(
        format!("corrupt value in {what}").into(),
    ))
}

pub(crate) fn now_us() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
