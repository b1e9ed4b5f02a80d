//! The one place that decides whether money may move.
//!
//! Pure: the positions of the accounts a change touches go in, a verdict comes out. Nothing
//! here reads or writes the database, so every rule can be tested with made-up numbers, and
//! the same functions run twice on every plan: where it is made (against the numbers read for
//! it) and where it is written (against the numbers locked for the write), TigerBeetle's paired
//! assertions. Payments ([`pay`]), holds ([`hold`]), the settlement of trades out of holds and
//! clearing set-offs (which are payments) all come through here; no other code compares a
//! balance with a floor or a ceiling.
//!
//! The rules (DESIGN.md, invariants 2 and 3):
//! - **floor**: `available = balance - held - floor` never goes below zero through a change
//!   that lowers it. Refused as `CreditLimitExceeded` for the currency's issuer (its floor is
//!   minus its credit limit) and `InsufficientFunds` for everyone else; both are the API's
//!   `insufficient_funds`.
//! - **ceiling** (one meaning for every kind of movement): an account whose balance a *plan*
//!   raises may not end that plan above its ceiling. A plan is a unit that commits or is
//!   refused whole: one payment, one clearing settlement, or one batch of an order book's
//!   commands with their fills and fees (a buyer's fee comes out of the base it just received,
//!   so its net receipt is what must fit). An account a plan lowers or leaves unchanged is
//!   never refused by its ceiling, so a lowered limit cannot trap money.
//! - **holds**: an account never holds less than zero, and a hold never pays out more than it
//!   has left.

use scrip_domain::{Amount, AmountError, CurrencyId, PrincipalId, PrincipalKind, Scale};

use crate::LedgerError;
use crate::model::MAX_AMOUNT_ATOMS;

/// What the rules need to know of a currency. Fixed for a currency's life (scale, issuer), so
/// a long-lived caller (a market's writer) reads it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyRules {
    pub id: CurrencyId,
    pub scale: Scale,
    pub issuer: PrincipalId,
}

impl CurrencyRules {
    /// Checks an amount that moves money: the currency's scale, positive, bounded.
    pub fn atoms(&self, amount: Amount) -> Result<i64, LedgerError> {
        if amount.scale() != self.scale {
            return Err(LedgerError::ScaleMismatch {
                expected: self.scale.decimals(),
            });
        }
        amount.ensure_positive()?;
        positive_atoms(amount.atoms())
    }
}

/// An amount of atoms that moves money must be positive and within the ledger's bound, so
/// that no sum of a balance and an amount can overflow.
pub fn positive_atoms(atoms: i64) -> Result<i64, LedgerError> {
    if atoms <= 0 {
        return Err(AmountError::NotPositive.into());
    }
    if atoms > MAX_AMOUNT_ATOMS {
        return Err(AmountError::Overflow.into());
    }
    Ok(atoms)
}

/// An account's numbers as the rules see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub balance_atoms: i64,
    pub held_atoms: i64,
    /// The lowest the balance may go: minus the credit limit for the issuer, zero otherwise.
    pub floor_atoms: i64,
    /// The highest a plan that raises the balance may leave it; none for the issuer.
    pub ceiling_atoms: Option<i64>,
    pub is_issuer: bool,
}

impl Position {
    /// A holder's empty account, as opened on first receipt.
    pub fn empty(ceiling_atoms: Option<i64>) -> Self {
        Self {
            balance_atoms: 0,
            held_atoms: 0,
            floor_atoms: 0,
            ceiling_atoms,
            is_issuer: false,
        }
    }

    /// What a payment, hold or order may spend.
    pub fn available_atoms(&self) -> i64 {
        self.balance_atoms - self.held_atoms - self.floor_atoms
    }

    /// The position after `change`.
    pub fn after(&self, change: Change) -> Self {
        Self {
            balance_atoms: self.balance_atoms + change.balance_atoms,
            held_atoms: self.held_atoms + change.held_atoms,
            ..*self
        }
    }

    /// The refusal for spending more than is available: one code for the issuer (its credit
    /// line is used up), another for everyone else.
    pub fn spend_refusal(&self) -> LedgerError {
        if self.is_issuer {
            LedgerError::CreditLimitExceeded
        } else {
            LedgerError::InsufficientFunds
        }
    }
}

/// How a plan changes one account: net deltas of its balance and of its held funds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    pub balance_atoms: i64,
    pub held_atoms: i64,
}

impl Change {
    pub fn is_zero(&self) -> bool {
        self.balance_atoms == 0 && self.held_atoms == 0
    }

    pub fn add(&mut self, other: Change) {
        self.balance_atoms += other.balance_atoms;
        self.held_atoms += other.held_atoms;
    }

    fn available_atoms(&self) -> i64 {
        self.balance_atoms - self.held_atoms
    }
}

/// The whole rule for one account a plan changes (see the module documentation). Every
/// accepted change of every kind passes this, once where it is planned and once where it is
/// written.
pub fn check_change(before: &Position, change: Change) -> Result<(), LedgerError> {
    let after = before.after(change);
    if after.held_atoms < 0 {
        return Err(LedgerError::HoldExceeded);
    }
    if change.available_atoms() < 0 && after.available_atoms() < 0 {
        return Err(before.spend_refusal());
    }
    if change.balance_atoms > 0
        && after
            .ceiling_atoms
            .is_some_and(|ceiling| after.balance_atoms > ceiling)
    {
        return Err(LedgerError::MaxBalanceExceeded);
    }
    Ok(())
}

/// A payment of `atoms` from `payer`'s available balance to `payee`: both positions move, or,
/// refused, neither does. The payer's refusal is reported first when both would refuse.
pub fn pay(payer: &mut Position, payee: &mut Position, atoms: i64) -> Result<(), LedgerError> {
    let atoms = positive_atoms(atoms)?;
    let debit = Change {
        balance_atoms: -atoms,
        held_atoms: 0,
    };
    let credit = Change {
        balance_atoms: atoms,
        held_atoms: 0,
    };
    check_change(payer, debit)?;
    check_change(payee, credit)?;
    *payer = payer.after(debit);
    *payee = payee.after(credit);
    Ok(())
}

/// Reserves `atoms` of the position's available balance (an order's funds); refused, it
/// changes nothing.
pub fn hold(position: &mut Position, atoms: i64) -> Result<(), LedgerError> {
    let atoms = positive_atoms(atoms)?;
    let change = Change {
        balance_atoms: 0,
        held_atoms: atoms,
    };
    check_change(position, change)?;
    *position = position.after(change);
    Ok(())
}

/// Whether an account may take a new floor and ceiling. Limits only ever move to where the
/// account already is (the invariants hold at every moment): a floor may not leave what is
/// held uncovered, and a ceiling may not be below the balance.
pub fn check_limits(
    position: &Position,
    floor_atoms: i64,
    ceiling_atoms: Option<i64>,
) -> Result<(), LedgerError> {
    let moved = Position {
        floor_atoms,
        ceiling_atoms,
        ..*position
    };
    let over_ceiling = ceiling_atoms.is_some_and(|ceiling| position.balance_atoms > ceiling);
    if moved.available_atoms() < 0 || over_ceiling {
        return Err(LedgerError::LimitBelowPosition);
    }
    Ok(())
}

/// The ceiling of a holder's account: the currency's maximum balance, except for the
/// registry's own accounts, which collect fees and have none (a maximum there would let anyone
/// who fills it refuse every fee, and so every trade, of the market).
pub fn holder_ceiling(holder: PrincipalKind, max_balance_atoms: Option<i64>) -> Option<i64> {
    match holder {
        PrincipalKind::Registry => None,
        PrincipalKind::User | PrincipalKind::Business => max_balance_atoms,
    }
}

/// Who may be paid by a payment: anyone but the registry, whose accounts only collect fees.
pub fn may_be_paid(payee: PrincipalKind) -> Result<(), LedgerError> {
    match payee {
        PrincipalKind::Registry => Err(LedgerError::FeeAccount),
        PrincipalKind::User | PrincipalKind::Business => Ok(()),
    }
}

/// What is left of a hold after `atoms` of it are released or paid out; refused when less is
/// left than that.
pub fn consume_hold(remaining_atoms: i64, atoms: i64) -> Result<i64, LedgerError> {
    if atoms < 0 || atoms > remaining_atoms {
        return Err(LedgerError::HoldExceeded);
    }
    Ok(remaining_atoms - atoms)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn holder(balance_atoms: i64, held_atoms: i64, ceiling_atoms: Option<i64>) -> Position {
        Position {
            balance_atoms,
            held_atoms,
            ..Position::empty(ceiling_atoms)
        }
    }

    fn issuer(balance_atoms: i64, credit_limit_atoms: i64) -> Position {
        Position {
            balance_atoms,
            held_atoms: 0,
            floor_atoms: -credit_limit_atoms,
            ceiling_atoms: None,
            is_issuer: true,
        }
    }

    #[test]
    fn an_issuer_pays_down_to_its_credit_limit_and_no_further() {
        let mut bakery = issuer(0, 500);
        let mut carl = holder(0, 0, None);
        pay(&mut bakery, &mut carl, 500).expect("the whole credit line");
        assert_eq!((bakery.balance_atoms, carl.balance_atoms), (-500, 500));
        let refused = pay(&mut bakery, &mut carl, 1);
        assert!(matches!(refused, Err(LedgerError::CreditLimitExceeded)));
        assert_eq!((bakery.balance_atoms, carl.balance_atoms), (-500, 500));
    }

    #[test]
    fn a_holder_spends_what_is_available_not_what_is_held() {
        let mut carl = holder(100, 60, None);
        let mut dora = holder(0, 0, None);
        assert!(matches!(
            pay(&mut carl, &mut dora, 41),
            Err(LedgerError::InsufficientFunds)
        ));
        pay(&mut carl, &mut dora, 40).expect("available");
        assert_eq!(carl.available_atoms(), 0);
    }

    #[test]
    fn the_ceiling_refuses_a_receipt_above_it_and_never_a_payment_out() {
        let mut carl = holder(90, 0, Some(100));
        let mut bakery = issuer(-90, 500);
        assert!(matches!(
            pay(&mut bakery, &mut carl, 11),
            Err(LedgerError::MaxBalanceExceeded)
        ));
        pay(&mut bakery, &mut carl, 10).expect("up to the ceiling");
        // Above a ceiling (not reachable by payments, but by a plan's net) paying out is fine.
        let mut over = holder(150, 0, Some(100));
        pay(&mut over, &mut bakery, 10).expect("paying out is never refused by the ceiling");
    }

    #[test]
    fn the_ceiling_is_checked_on_a_plans_net_receipt() {
        // A buyer receives 12 base and pays a fee of 3 base out of it: the net, 9, must fit.
        let buyer = holder(90, 0, Some(100));
        let net = Change {
            balance_atoms: 12 - 3,
            held_atoms: 0,
        };
        check_change(&buyer, net).expect("the net fits");
        let too_much = Change {
            balance_atoms: 11,
            held_atoms: 0,
        };
        assert!(matches!(
            check_change(&buyer, too_much),
            Err(LedgerError::MaxBalanceExceeded)
        ));
    }

    #[test]
    fn holds_reserve_available_funds_and_settle_without_changing_available() {
        let mut carl = holder(100, 0, None);
        hold(&mut carl, 70).expect("covered");
        assert!(matches!(
            hold(&mut carl, 31),
            Err(LedgerError::InsufficientFunds)
        ));
        // Paying 50 out of the hold lowers balance and held together.
        let settle = Change {
            balance_atoms: -50,
            held_atoms: -50,
        };
        check_change(&carl, settle).expect("out of the hold");
        assert_eq!(carl.after(settle).available_atoms(), carl.available_atoms());
        let over_release = Change {
            balance_atoms: 0,
            held_atoms: -71,
        };
        assert!(matches!(
            check_change(&carl, over_release),
            Err(LedgerError::HoldExceeded)
        ));
        assert_eq!(consume_hold(70, 70).ok(), Some(0));
        assert!(consume_hold(70, 71).is_err());
    }

    #[test]
    fn limits_only_move_to_where_the_account_already_is() {
        // The bakery has issued 300.00 and holds 50.00 of its own for an order.
        let bakery = Position {
            held_atoms: 5_000,
            ..issuer(-30_000, 50_000)
        };
        check_limits(&bakery, -35_000, None).expect("exactly what is issued and held");
        assert!(matches!(
            check_limits(&bakery, -34_999, None),
            Err(LedgerError::LimitBelowPosition)
        ));
        let carl = holder(700, 0, Some(1_000));
        check_limits(&carl, 0, Some(700)).expect("down to the balance");
        assert!(check_limits(&carl, 0, Some(699)).is_err());
        check_limits(&carl, 0, None).expect("no maximum");
    }

    #[test]
    fn amounts_must_be_positive_and_bounded() {
        let mut a = holder(10, 0, None);
        let mut b = holder(0, 0, None);
        assert!(pay(&mut a, &mut b, 0).is_err());
        assert!(pay(&mut a, &mut b, -1).is_err());
        assert!(hold(&mut a, MAX_AMOUNT_ATOMS + 1).is_err());
        assert_eq!((a.balance_atoms, b.balance_atoms), (10, 0));
    }

    fn position() -> impl Strategy<Value = Position> {
        (
            -1_000_i64..1_000,
            0_i64..500,
            prop_oneof![Just(None), (0_i64..1_500).prop_map(Some)],
            any::<bool>(),
            0_i64..1_000,
        )
            .prop_map(|(balance, held, ceiling, is_issuer, limit)| {
                let floor = if is_issuer { -limit } else { 0 };
                Position {
                    // Start inside the rules, as every stored account is.
                    balance_atoms: balance.max(floor + held),
                    held_atoms: held,
                    floor_atoms: floor,
                    ceiling_atoms: if is_issuer { None } else { ceiling },
                    is_issuer,
                }
            })
    }

    fn inside(p: &Position) -> bool {
        p.available_atoms() >= 0 && p.held_atoms >= 0
    }

    proptest! {
        /// A payment either moves exactly `atoms` and keeps both accounts inside their floor
        /// and held bounds, or changes nothing; money is never created.
        #[test]
        fn a_payment_moves_exactly_its_amount_or_nothing(
            payer in position(), payee in position(), atoms in -5_i64..2_000,
        ) {
            let (mut p, mut q) = (payer, payee);
            match pay(&mut p, &mut q, atoms) {
                Ok(()) => {
                    prop_assert_eq!(p.balance_atoms, payer.balance_atoms - atoms);
                    prop_assert_eq!(q.balance_atoms, payee.balance_atoms + atoms);
                    prop_assert!(inside(&p) && inside(&q));
                    prop_assert!(q.ceiling_atoms.is_none_or(|c| q.balance_atoms <= c));
                }
                Err(_) => prop_assert_eq!((p, q), (payer, payee)),
            }
        }

        /// Any change accepted by the rules leaves the account inside its floor and held bounds.
        #[test]
        fn an_accepted_change_stays_inside_the_bounds(
            before in position(), balance in -1_500_i64..1_500, held in -600_i64..600,
        ) {
            let change = Change { balance_atoms: balance, held_atoms: held };
            if check_change(&before, change).is_ok() {
                let after = before.after(change);
                prop_assert!(after.held_atoms >= 0);
                prop_assert!(after.available_atoms() >= 0 || change.available_atoms() >= 0);
                if balance > 0 {
                    prop_assert!(after.ceiling_atoms.is_none_or(|c| after.balance_atoms <= c));
                }
            }
        }
    }
}
