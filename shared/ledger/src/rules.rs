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

use scrip_domain::{Amount, AmountError, CurrencyId, Par, PrincipalId, PrincipalKind, Scale};

use crate::LedgerError;
use crate::model::MAX_AMOUNT_ATOMS;
use crate::policy::{BPS_PER_WHOLE, CurrencyKind, TransferFee};

/// What the rules need to know of a currency. Scale, issuer and kind are fixed for its life,
/// so a long-lived caller (a market's writer) may keep them; the payment policies (largest
/// payment, transfer fee, admission) can change and are read fresh for every payment batch
/// (a market checks them where an order enters, [`check_payment_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyRules {
    pub id: CurrencyId,
    pub scale: Scale,
    pub issuer: PrincipalId,
    pub kind: CurrencyKind,
    pub max_payment_atoms: Option<i64>,
    pub transfer_fee: Option<TransferFee>,
    /// Only members may hold it ([`crate::policy::Policies::members_only`]).
    pub requires_admission: bool,
    /// Whether its stewards may freeze holders' accounts (the exchange then looks).
    pub freezable: bool,
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

    /// Rules of a currency with no policy but its issuer's (tests, and plain currencies).
    pub fn plain(id: CurrencyId, scale: Scale, issuer: PrincipalId) -> Self {
        Self {
            id,
            scale,
            issuer,
            kind: CurrencyKind::IssuerCredit,
            max_payment_atoms: None,
            transfer_fee: None,
            requires_admission: false,
            freezable: false,
        }
    }

    /// `max_payment`: no single payment or order quantity may be larger.
    pub fn check_payment_size(&self, atoms: i64) -> Result<(), LedgerError> {
        check_payment_size(self.max_payment_atoms, atoms, self.scale)
    }

    /// The transfer fee a payment of `atoms` by `payer` pays on top, and who collects it:
    /// nothing when there is no fee or the payer is the collector.
    pub fn transfer_fee_of(&self, payer: PrincipalId, atoms: i64) -> Option<(PrincipalId, i64)> {
        let fee = self.transfer_fee?;
        let collector = fee.to.unwrap_or(self.issuer);
        let fee_atoms = transfer_fee_atoms(&fee, atoms);
        (collector != payer && fee_atoms > 0).then_some((collector, fee_atoms))
    }
}

/// `max_payment` (API.md `over_max_payment`): one payment, or one order's quantity or cost,
/// of at most `max` atoms.
pub fn check_payment_size(
    max_atoms: Option<i64>,
    atoms: i64,
    scale: Scale,
) -> Result<(), LedgerError> {
    match max_atoms {
        Some(max) if atoms > max => Err(LedgerError::OverMaxPayment {
            max: Amount::from_atoms(max, scale).to_string(),
        }),
        _ => Ok(()),
    }
}

/// A payment's transfer fee: `bps` of its amount rounded down to the atom, and at least
/// `min_atoms`. At most `max(atoms, min_atoms)`, so it stays inside the ledger's bound.
pub fn transfer_fee_atoms(fee: &TransferFee, atoms: i64) -> i64 {
    let share = i128::from(atoms) * i128::from(fee.bps) / i128::from(BPS_PER_WHOLE);
    // share <= atoms because bps <= 10,000.
    i64::try_from(share).unwrap_or(i64::MAX).max(fee.min_atoms)
}

/// One period's demurrage on a balance: `rate_bps` of it rounded down to the atom; nothing on
/// a balance of zero or less (demurrage is charged on holdings, never on debt).
pub fn demurrage_due_atoms(balance_atoms: i64, rate_bps: i64) -> i64 {
    if balance_atoms <= 0 {
        return 0;
    }
    let due = i128::from(balance_atoms) * i128::from(rate_bps) / i128::from(BPS_PER_WHOLE);
    i64::try_from(due).unwrap_or(i64::MAX)
}

/// What a currency's value is measured with, to value it at par: its scale and par.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParValue {
    pub scale: Scale,
    pub par: Par,
}

/// How much of a backed currency a reserve backs (`backing`): the most that may be
/// outstanding, in the backed currency's atoms, such that
/// `reserve value x 10,000 >= outstanding value x ratio_bps`, both valued at par. Rounded down,
/// so coverage is never overstated; at most the ledger's bound.
pub fn reserve_backs_atoms(
    reserve_atoms: i64,
    reserve: ParValue,
    backed: ParValue,
    ratio_bps: i64,
) -> i64 {
    let unsigned = |v: i64| u128::try_from(v.max(0)).unwrap_or(0);
    let (Some(pow_reserve), Some(pow_backed)) = (
        10_u128.checked_pow(u32::from(reserve.scale.decimals())),
        10_u128.checked_pow(u32::from(backed.scale.decimals())),
    ) else {
        return 0;
    };
    // reserve x par_r x 10^s_backed x 10,000 / (par_backed x 10^s_reserve x ratio): the value
    // is below 2^123, the multiplier below 2^40 and the divisor below 2^107, so the 256-bit
    // product and its division are exact.
    let value = unsigned(reserve_atoms) * unsigned(reserve.par.numerator_e8());
    let per = pow_backed * unsigned(BPS_PER_WHOLE);
    let divisor = unsigned(backed.par.numerator_e8()) * pow_reserve * unsigned(ratio_bps);
    if divisor == 0 {
        return 0;
    }
    let backs = mul_div_floor(value, per, divisor);
    i64::try_from(backs.min(unsigned(MAX_AMOUNT_ATOMS))).unwrap_or(MAX_AMOUNT_ATOMS)
}

/// `floor(a x b / d)` without overflow (a 256-bit product), saturating at `u128::MAX`.
/// `d` must be below 2^127 (it is: see [`reserve_backs_atoms`]).
fn mul_div_floor(a: u128, b: u128, d: u128) -> u128 {
    const LOW: u128 = u64::MAX as u128;
    let (a1, a0, b1, b0) = (a >> 64, a & LOW, b >> 64, b & LOW);
    let (low, cross_ab, cross_ba, high) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let middle = (low >> 64) + (cross_ab & LOW) + (cross_ba & LOW);
    let product_low = (middle << 64) | (low & LOW);
    let product_high = high + (cross_ab >> 64) + (cross_ba >> 64) + (middle >> 64);
    if product_high >= d {
        return u128::MAX;
    }
    // Long division, a bit at a time: the remainder stays below d < 2^127.
    let (mut remainder, mut quotient) = (product_high, 0_u128);
    for bit in (0..128).rev() {
        remainder = (remainder << 1) | ((product_low >> bit) & 1);
        quotient <<= 1;
        if remainder >= d {
            remainder -= d;
            quotient |= 1;
        }
    }
    quotient
}

/// The issuer's floor: minus its credit limit, and for a backed currency minus no more than
/// its reserve backs (`backs_atoms`).
pub fn issuer_floor_atoms(credit_limit_atoms: i64, backs_atoms: Option<i64>) -> i64 {
    -backs_atoms.map_or(credit_limit_atoms, |backs| credit_limit_atoms.min(backs))
}

/// The most of a reserve of `reserve_atoms` that may be released while the issuer needs
/// `needed_atoms` of credit (`held - balance`: what it owes and holds for orders), given what
/// each remaining reserve backs (`backs`, monotonic). The reserve is released only as
/// outstanding falls.
pub fn reserve_releasable_atoms(
    reserve_atoms: i64,
    needed_atoms: i64,
    backs: impl Fn(i64) -> i64,
) -> i64 {
    if needed_atoms <= 0 {
        return reserve_atoms.max(0);
    }
    // The smallest reserve that still backs what is needed, by bisection over [0, reserve].
    let (mut low, mut high) = (0_i64, reserve_atoms.max(0));
    if backs(high) < needed_atoms {
        return 0;
    }
    while low < high {
        let mid = low + (high - low) / 2;
        if backs(mid) >= needed_atoms {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    reserve_atoms - high
}

/// What a demurrage charge of `due_atoms` may take now: never what open orders hold (so an
/// order's hold never becomes unpayable: a hold is reserved money, and a charge only takes the
/// balance above it), never into credit (a mutual-credit member pays demurrage out of what it
/// holds, not out of its credit line). The rest is carried to the next period.
pub fn demurrage_collectable_atoms(position: &Position, due_atoms: i64) -> i64 {
    let free = (position.balance_atoms - position.held_atoms)
        .min(position.available_atoms())
        .max(0);
    due_atoms.clamp(0, free)
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
    /// Frozen by the currency's stewards: nothing may leave the account or be held on it.
    pub frozen: bool,
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
            frozen: false,
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
    // Frozen: it can neither pay nor trade, but what it holds for orders may be given back.
    if before.frozen && (change.balance_atoms < 0 || change.held_atoms > 0) {
        return Err(LedgerError::Frozen);
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
    pay_with_fee(payer, payee, atoms, None)
}

/// Where a payment's transfer fee goes: `atoms` to `collector`, or to the payee itself when
/// `collector` is `None` (a payment to the collector).
#[derive(Debug)]
pub struct FeeLeg<'a> {
    pub collector: Option<&'a mut Position>,
    pub atoms: i64,
}

fn credit(atoms: i64) -> Change {
    Change {
        balance_atoms: atoms,
        held_atoms: 0,
    }
}

/// A payment with its transfer fee on top: the payer must cover both, and every account that
/// receives must fit its ceiling. All positions move, or, refused, none does.
pub fn pay_with_fee(
    payer: &mut Position,
    payee: &mut Position,
    atoms: i64,
    fee: Option<FeeLeg<'_>>,
) -> Result<(), LedgerError> {
    let atoms = positive_atoms(atoms)?;
    let fee_atoms = fee.as_ref().map_or(0, |f| f.atoms);
    if fee_atoms < 0 {
        return Err(AmountError::Negative.into());
    }
    let debit = Change {
        balance_atoms: -(atoms + fee_atoms),
        held_atoms: 0,
    };
    check_change(payer, debit)?;
    match fee {
        Some(FeeLeg {
            collector: Some(collector),
            atoms: fee_atoms,
        }) if fee_atoms > 0 => {
            check_change(payee, credit(atoms))?;
            check_change(collector, credit(fee_atoms))?;
            *collector = collector.after(credit(fee_atoms));
            *payee = payee.after(credit(atoms));
        }
        _ => {
            check_change(payee, credit(atoms + fee_atoms))?;
            *payee = payee.after(credit(atoms + fee_atoms));
        }
    }
    *payer = payer.after(debit);
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
            frozen: false,
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
                    frozen: false,
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

#[cfg(test)]
mod policy_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::policy::MAX_RATIO_BPS;

    fn member(balance_atoms: i64, floor_atoms: i64) -> Position {
        Position {
            balance_atoms,
            floor_atoms,
            ..Position::empty(None)
        }
    }

    fn fee(bps: i64, min_atoms: i64) -> TransferFee {
        TransferFee {
            bps,
            min_atoms,
            to: None,
        }
    }

    #[test]
    fn a_mutual_credit_member_pays_down_to_its_own_limit() {
        let mut ann = member(0, -1_000);
        let mut bob = member(0, -1_000);
        pay(&mut ann, &mut bob, 1_000).expect("exactly at the limit");
        assert!(matches!(
            pay(&mut ann, &mut bob, 1),
            Err(LedgerError::InsufficientFunds)
        ));
        assert_eq!(ann.balance_atoms + bob.balance_atoms, 0, "sum zero");
    }

    #[test]
    fn the_fee_is_paid_on_top_and_must_be_covered_too() {
        let mut ann = member(1_010, 0);
        let mut bob = member(0, 0);
        let mut shop = member(0, 0);
        let fee_atoms = transfer_fee_atoms(&fee(100, 0), 1_000);
        assert_eq!(fee_atoms, 10);
        let leg = FeeLeg {
            collector: Some(&mut shop),
            atoms: fee_atoms,
        };
        pay_with_fee(&mut ann, &mut bob, 1_000, Some(leg)).expect("exactly covered");
        assert_eq!(
            (ann.balance_atoms, bob.balance_atoms, shop.balance_atoms),
            (0, 1_000, 10)
        );
        let mut carl = member(1_009, 0);
        let leg = FeeLeg {
            collector: Some(&mut shop),
            atoms: 10,
        };
        assert!(matches!(
            pay_with_fee(&mut carl, &mut bob, 1_000, Some(leg)),
            Err(LedgerError::InsufficientFunds)
        ));
        assert_eq!((carl.balance_atoms, shop.balance_atoms), (1_009, 10));
    }

    #[test]
    fn fees_round_down_with_a_minimum() {
        assert_eq!(transfer_fee_atoms(&fee(150, 0), 99), 1);
        assert_eq!(transfer_fee_atoms(&fee(150, 5), 99), 5);
        assert_eq!(
            transfer_fee_atoms(&fee(10_000, 0), MAX_AMOUNT_ATOMS),
            MAX_AMOUNT_ATOMS
        );
    }

    #[test]
    fn max_payment_refuses_one_atom_over() {
        let scale = Scale::new(2).expect("scale");
        check_payment_size(Some(5_000), 5_000, scale).expect("exactly the maximum");
        let refused = check_payment_size(Some(5_000), 5_001, scale);
        assert!(matches!(refused, Err(LedgerError::OverMaxPayment { max }) if max == "50.00"));
        check_payment_size(None, i64::MAX, scale).expect("no maximum");
    }

    #[test]
    fn a_frozen_account_neither_pays_nor_holds_but_gets_its_holds_back() {
        let frozen = Position {
            frozen: true,
            held_atoms: 30,
            ..member(100, 0)
        };
        let mut out = frozen;
        let mut bob = member(0, 0);
        assert!(matches!(
            pay(&mut out, &mut bob, 1),
            Err(LedgerError::Frozen)
        ));
        assert!(matches!(hold(&mut out, 1), Err(LedgerError::Frozen)));
        let release = Change {
            balance_atoms: 0,
            held_atoms: -30,
        };
        check_change(&frozen, release).expect("a cancelled order's hold comes back");
        let mut ann = member(50, 0);
        pay(&mut ann, &mut out, 10).expect("a frozen account may still be paid");
    }

    #[test]
    fn demurrage_never_takes_held_funds_or_credit() {
        assert_eq!(demurrage_due_atoms(10_000, 100), 100);
        assert_eq!(demurrage_due_atoms(99, 100), 0, "rounded down");
        assert_eq!(demurrage_due_atoms(-500, 100), 0, "never on debt");
        let busy = Position {
            held_atoms: 9_950,
            ..member(10_000, -1_000)
        };
        assert_eq!(demurrage_collectable_atoms(&busy, 100), 50);
        assert_eq!(
            demurrage_collectable_atoms(&member(10_000, -1_000), 100),
            100
        );
    }

    fn valued(decimals: i64, par: &str) -> ParValue {
        ParValue {
            scale: Scale::new(decimals).expect("scale"),
            par: Par::parse(par).expect("par"),
        }
    }

    #[test]
    fn a_reserve_backs_its_value_at_par_over_the_ratio() {
        let ale = valued(2, "1");
        let bread = valued(2, "1");
        // 100.00 ALE fully backs 100.00 BREAD; at 50 % it backs 200.00.
        assert_eq!(reserve_backs_atoms(10_000, ale, bread, 10_000), 10_000);
        assert_eq!(reserve_backs_atoms(10_000, ale, bread, 5_000), 20_000);
        // ALE worth half a unit, BREAD of scale 0: 100.00 ALE backs 50 BREAD.
        assert_eq!(
            reserve_backs_atoms(10_000, valued(2, "0.5"), valued(0, "1"), 10_000),
            50
        );
        // Rounded down: 1 atom of a reserve over 3 x the ratio backs nothing.
        assert_eq!(reserve_backs_atoms(1, ale, bread, 30_000), 0);
        // Huge figures saturate at the ledger's bound instead of overflowing.
        assert_eq!(
            reserve_backs_atoms(
                MAX_AMOUNT_ATOMS,
                valued(0, "1000000"),
                valued(8, "0.00000001"),
                1
            ),
            MAX_AMOUNT_ATOMS
        );
        assert_eq!(issuer_floor_atoms(500, None), -500);
        assert_eq!(issuer_floor_atoms(500, Some(200)), -200);
        assert_eq!(issuer_floor_atoms(500, Some(900)), -500);
    }

    proptest! {
        /// The 256-bit product's division agrees with exact arithmetic wherever that fits.
        #[test]
        fn mul_div_floor_is_exact(a in 0_u128..(1 << 62), b in 0_u128..(1 << 62), d in 1_u128..(1 << 100)) {
            prop_assert_eq!(mul_div_floor(a, b, d), a * b / d);
        }

        /// What a reserve backs is the largest outstanding amount it covers, to the atom.
        #[test]
        fn backing_is_the_largest_covered_amount(
            reserve_atoms in 0_i64..1_000_000_000_000, reserve_par in 1_i64..10_000_000_000,
            backed_par in 1_i64..10_000_000_000, reserve_decimals in 0_i64..=8,
            backed_decimals in 0_i64..=8, ratio_bps in 1_i64..=MAX_RATIO_BPS,
        ) {
            let par = |e8: i64| Par::parse(&Amount::from_atoms(e8, Scale::new(8).expect("8")).to_string()).expect("par");
            let reserve = ParValue { scale: Scale::new(reserve_decimals).expect("s"), par: par(reserve_par) };
            let backed = ParValue { scale: Scale::new(backed_decimals).expect("s"), par: par(backed_par) };
            let backs = reserve_backs_atoms(reserve_atoms, reserve, backed, ratio_bps);
            // reserve value x 10,000 >= outstanding value x ratio, in integers.
            let covers = |outstanding: i128| {
                i128::from(reserve_atoms) * i128::from(reserve_par) * 10_i128.pow(backed_decimals as u32) * 10_000
                    >= outstanding * i128::from(backed_par) * 10_i128.pow(reserve_decimals as u32) * i128::from(ratio_bps)
            };
            prop_assert!(covers(i128::from(backs)));
            if backs < MAX_AMOUNT_ATOMS {
                prop_assert!(!covers(i128::from(backs) + 1));
            }
        }

        /// Releasing what `reserve_releasable_atoms` allows still backs what is needed, and one
        /// atom more would not.
        #[test]
        fn a_release_never_uncovers_what_is_outstanding(
            reserve_atoms in 0_i64..10_000_000, needed_atoms in -1_000_i64..30_000_000,
            ratio_bps in 1_i64..=MAX_RATIO_BPS,
        ) {
            let (ale, bread) = (valued(2, "1"), valued(2, "1"));
            let backs = |r: i64| reserve_backs_atoms(r, ale, bread, ratio_bps);
            let releasable = reserve_releasable_atoms(reserve_atoms, needed_atoms, backs);
            prop_assert!((0..=reserve_atoms).contains(&releasable));
            if releasable > 0 {
                prop_assert!(backs(reserve_atoms - releasable) >= needed_atoms);
            }
            if releasable < reserve_atoms {
                prop_assert!(backs(reserve_atoms - releasable - 1) < needed_atoms);
            }
        }

        /// A payment with a fee moves exactly amount + fee out of the payer and into the payee
        /// and collector, or changes nothing.
        #[test]
        fn a_payment_with_its_fee_conserves_money(
            payer_balance in 0_i64..3_000, atoms in 1_i64..2_000,
            bps in 1_i64..=10_000, min in 0_i64..50, collector_is_payee in any::<bool>(),
        ) {
            let fee_atoms = transfer_fee_atoms(&fee(bps, min), atoms);
            let (mut payer, mut payee, mut collector) = (member(payer_balance, 0), member(0, 0), member(0, 0));
            let leg = FeeLeg {
                collector: (!collector_is_payee).then_some(&mut collector),
                atoms: fee_atoms,
            };
            match pay_with_fee(&mut payer, &mut payee, atoms, Some(leg)) {
                Ok(()) => {
                    prop_assert_eq!(payer.balance_atoms, payer_balance - atoms - fee_atoms);
                    prop_assert_eq!(payer.balance_atoms + payee.balance_atoms + collector.balance_atoms, payer_balance);
                    prop_assert!(payer.available_atoms() >= 0);
                }
                Err(_) => {
                    prop_assert!(payer_balance < atoms + fee_atoms);
                    prop_assert_eq!((payer.balance_atoms, payee.balance_atoms, collector.balance_atoms), (payer_balance, 0, 0));
                }
            }
        }
    }
}
