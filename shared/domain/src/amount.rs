//! Exact money: integer atoms with a per-currency scale.

use std::fmt;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::{AmountError, DomainError};

/// The largest number of decimals a currency may have.
pub const MAX_SCALE: u8 = 8;

/// Longest decimal string we try to parse; anything longer cannot fit in an `i64` of atoms
/// anyway, and the bound keeps hostile input from costing work.
const MAX_DECIMAL_LEN: usize = 64;

/// The number of decimals of a currency: 0 to [`MAX_SCALE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scale(u8);

impl Scale {
    pub fn new(decimals: i64) -> Result<Self, DomainError> {
        match u8::try_from(decimals) {
            Ok(d) if d <= MAX_SCALE => Ok(Self(d)),
            _ => Err(DomainError::BadScale),
        }
    }

    pub const fn decimals(self) -> u8 {
        self.0
    }

    /// Atoms in one whole unit: `10^scale`.
    pub const fn atoms_per_unit(self) -> i64 {
        10_i64.pow(self.0 as u32)
    }
}

/// An exact amount of one currency: `atoms / 10^scale` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    atoms: i64,
    scale: Scale,
}

impl Amount {
    pub const fn from_atoms(atoms: i64, scale: Scale) -> Self {
        Self { atoms, scale }
    }

    pub const fn zero(scale: Scale) -> Self {
        Self { atoms: 0, scale }
    }

    /// Parses a decimal string (`"12.50"`, `"-3"`) exactly. More significant decimals than
    /// `scale` is an error, never a rounding; trailing zeros past the scale are exact and allowed.
    pub fn parse(raw: &str, scale: Scale) -> Result<Self, AmountError> {
        let digits = PlainDecimal::parse(raw)?;
        if digits.significant_fraction().len() > usize::from(scale.decimals()) {
            return Err(AmountError::TooManyDecimals {
                scale: scale.decimals(),
            });
        }
        // Exact decimal arithmetic by rust_decimal: the significant digits, times 10^scale.
        let decimal =
            Decimal::from_str_exact(&digits.significant()).map_err(|_| AmountError::Overflow)?;
        let atoms = decimal
            .checked_mul(Decimal::from(scale.atoms_per_unit()))
            .and_then(|atoms| atoms.to_i64())
            .ok_or(AmountError::Overflow)?;
        Ok(Self { atoms, scale })
    }

    /// Parses an amount that moves money: it must be strictly positive.
    pub fn parse_positive(raw: &str, scale: Scale) -> Result<Self, AmountError> {
        let amount = Self::parse(raw, scale)?;
        amount.ensure_positive()?;
        Ok(amount)
    }

    /// Parses a limit: zero is fine, negative is not.
    pub fn parse_non_negative(raw: &str, scale: Scale) -> Result<Self, AmountError> {
        let amount = Self::parse(raw, scale)?;
        if amount.atoms < 0 {
            return Err(AmountError::Negative);
        }
        Ok(amount)
    }

    pub fn ensure_positive(self) -> Result<Self, AmountError> {
        if self.atoms > 0 {
            Ok(self)
        } else {
            Err(AmountError::NotPositive)
        }
    }

    pub const fn atoms(self) -> i64 {
        self.atoms
    }

    pub const fn scale(self) -> Scale {
        self.scale
    }

    pub fn checked_add(self, other: Self) -> Result<Self, AmountError> {
        self.combine(other, i64::checked_add)
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, AmountError> {
        self.combine(other, i64::checked_sub)
    }

    fn combine(self, other: Self, op: fn(i64, i64) -> Option<i64>) -> Result<Self, AmountError> {
        if self.scale != other.scale {
            return Err(AmountError::ScaleMismatch);
        }
        let atoms = op(self.atoms, other.atoms).ok_or(AmountError::Overflow)?;
        Ok(Self {
            atoms,
            scale: self.scale,
        })
    }
}

/// A decimal string in the one form the API accepts: an optional `-`, digits, and optionally
/// a `.` followed by digits. rust_decimal reads more (`+1`, `1_000`, `.5`), which are no money
/// strings, so the form is checked here and the arithmetic left to it.
struct PlainDecimal<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> PlainDecimal<'a> {
    fn parse(raw: &'a str) -> Result<Self, AmountError> {
        if raw.len() > MAX_DECIMAL_LEN {
            return Err(AmountError::Overflow);
        }
        let (negative, unsigned) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if !all_digits(whole) || (unsigned.contains('.') && !all_digits(fraction)) {
            return Err(AmountError::Malformed);
        }
        Ok(Self {
            negative,
            whole,
            fraction,
        })
    }

    /// The decimals that are not trailing zeros.
    fn significant_fraction(&self) -> &'a str {
        self.fraction.trim_end_matches('0')
    }

    /// The same number without trailing zeros of the fraction nor leading zeros of the whole
    /// part (which need not fit rust_decimal's 28 digits to be exact).
    fn significant(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let whole = self.whole.trim_start_matches('0');
        let whole = if whole.is_empty() { "0" } else { whole };
        match self.significant_fraction() {
            "" => format!("{sign}{whole}"),
            fraction => format!("{sign}{whole}.{fraction}"),
        }
    }
}

impl fmt::Display for Amount {
    /// Always prints exactly `scale` decimals: `12.50` for 1250 atoms at scale 2.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimal = Decimal::new(self.atoms, u32::from(self.scale.decimals()));
        fmt::Display::fmt(&decimal, f)
    }
}

/// How many units of account one token is worth: a positive decimal with at most 8 decimals,
/// kept as atoms of scale 8 so clearing can value holdings with integer arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Par(Amount);

impl Par {
    const SCALE: Scale = Scale(MAX_SCALE);

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Amount::parse_positive(raw, Self::SCALE)
            .map(Self)
            .map_err(|_| DomainError::BadPar)
    }

    pub const fn one() -> Self {
        Self(Amount::from_atoms(
            Self::SCALE.atoms_per_unit(),
            Self::SCALE,
        ))
    }

    /// Par as a fraction `numerator_e8 / 10^8`.
    pub const fn numerator_e8(self) -> i64 {
        self.0.atoms()
    }
}

impl fmt::Display for Par {
    /// The shortest exact form: `1`, `0.5`, `2.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.0.to_string();
        let trimmed = full.trim_end_matches('0').trim_end_matches('.');
        f.write_str(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scale(d: i64) -> Scale {
        Scale::new(d).expect("valid scale")
    }

    #[test]
    fn parses_exactly() {
        let cases = [
            ("12.50", 2, 1250),
            ("12.5", 2, 1250),
            ("12", 2, 1200),
            ("0.01", 2, 1),
            ("-3", 0, -3),
            ("1.000", 2, 100),
            ("0.00000001", 8, 1),
            ("92233720368.54775807", 8, i64::MAX),
        ];
        for (raw, d, atoms) in cases {
            assert_eq!(
                Amount::parse(raw, scale(d)).map(Amount::atoms),
                Ok(atoms),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_rather_than_rounds() {
        let cases = [
            ("1.005", 2, AmountError::TooManyDecimals { scale: 2 }),
            ("0.5", 0, AmountError::TooManyDecimals { scale: 0 }),
            ("99999999999999999999", 2, AmountError::Overflow),
            ("92233720368.54775808", 8, AmountError::Overflow),
            (&"9".repeat(100), 0, AmountError::Overflow),
            ("", 2, AmountError::Malformed),
            ("-", 2, AmountError::Malformed),
            (".5", 2, AmountError::Malformed),
            ("5.", 2, AmountError::Malformed),
            ("+5", 2, AmountError::Malformed),
            ("1e3", 2, AmountError::Malformed),
            (" 1", 2, AmountError::Malformed),
            ("1,5", 2, AmountError::Malformed),
            ("--1", 2, AmountError::Malformed),
            ("١", 2, AmountError::Malformed),
        ];
        for (raw, d, err) in cases {
            assert_eq!(Amount::parse(raw, scale(d)), Err(err), "{raw}");
        }
        assert_eq!(
            Amount::parse_positive("0", scale(2)),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            Amount::parse_positive("-1", scale(2)),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            Amount::parse_non_negative("-1", scale(2)),
            Err(AmountError::Negative)
        );
        assert!(Amount::parse_non_negative("0", scale(2)).is_ok());
    }

    #[test]
    fn scales_are_bounded() {
        assert!(Scale::new(0).is_ok());
        assert!(Scale::new(8).is_ok());
        assert_eq!(Scale::new(9), Err(DomainError::BadScale));
        assert_eq!(Scale::new(-1), Err(DomainError::BadScale));
    }

    #[test]
    fn arithmetic_is_checked() {
        let s = scale(2);
        let max = Amount::from_atoms(i64::MAX, s);
        let one = Amount::from_atoms(1, s);
        assert_eq!(max.checked_add(one), Err(AmountError::Overflow));
        assert_eq!(
            one.checked_add(Amount::from_atoms(1, scale(3))),
            Err(AmountError::ScaleMismatch)
        );
        assert_eq!(one.checked_sub(one), Ok(Amount::zero(s)));
    }

    #[test]
    fn par_prints_shortest_form() {
        assert_eq!(Par::parse("1").map(|p| p.to_string()), Ok("1".into()));
        assert_eq!(Par::parse("0.50").map(|p| p.to_string()), Ok("0.5".into()));
        assert_eq!(Par::one().numerator_e8(), 100_000_000);
        assert_eq!(Par::parse("0"), Err(DomainError::BadPar));
        assert_eq!(Par::parse("0.000000001"), Err(DomainError::BadPar));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(atoms in any::<i64>(), d in 0_i64..=8) {
            let amount = Amount::from_atoms(atoms, scale(d));
            prop_assert_eq!(Amount::parse(&amount.to_string(), scale(d)), Ok(amount));
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,40}", d in 0_i64..=8) {
            let _ = Amount::parse(&raw, scale(d));
        }

        #[test]
        fn parse_agrees_with_integer_math(whole in 0_i64..1_000_000_000, frac in 0_i64..100, d in 2_i64..=8) {
            let raw = format!("{whole}.{frac:02}");
            let expected = whole * scale(d).atoms_per_unit() + frac * scale(d).atoms_per_unit() / 100;
            prop_assert_eq!(Amount::parse(&raw, scale(d)).map(Amount::atoms), Ok(expected));
        }
    }
}
