//! Sums that do not depend on the order they were taken in, and means rounded as SQL rounds them.
//!
//! A rollup's sum is built once per commit and merged with other partial sums at query time, in whatever
//! grouping the answer needs; floating-point addition would give a different last bit for each grouping.
//! Each 32-bit float is therefore taken in exactly, as an integer count of `2^-FRAC_BITS` (binary fixed
//! point: every float of the table's ranges is a whole number of such units, so nothing is rounded), and
//! added as an integer: any grouping and order of the same values gives the same sum, bit for bit.
//!
//! A mean is the exact quotient rounded once to the nearest `f64`: what SQL's `AVG` over doubles gives
//! whenever its own running sum is exact (always for a few values, and for the typical four-decimal
//! scores of sentiment models), so a mean of two scores lying exactly between two 32-bit floats is
//! presented the same way by both paths. Decimal units would round each score by up to half a unit and
//! move such a tie to either side.
//!
//! The rollup table stores a sum as an Iceberg `decimal(38, 0)` counting units (columns named `_q64`
//! and `_q40` for their fraction bits): any engine sums them exactly and divides by `2^64` or `2^40`.

use std::cmp::Ordering;
use std::fmt;

/// A sum of 32-bit floats in units of `2^-FRAC_BITS`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FixedSum<const FRAC_BITS: u32>(i128);

/// The largest magnitude an Iceberg `decimal(38, 0)` holds.
const DECIMAL_38_MAX: i128 = 10i128.pow(38) - 1;

impl<const FRAC_BITS: u32> FixedSum<FRAC_BITS> {
    pub const ZERO: Self = Self(0);

    /// The sum as stored: units of `2^-FRAC_BITS`.
    pub fn from_units(units: i128) -> Self {
        Self(units)
    }

    pub fn units(self) -> i128 {
        self.0
    }

    /// `value` in units, rounded to the nearest unit (ties to even) only when it is finer than one (far
    /// below anything a score or magnitude holds). `None` for a value that is not finite or does not
    /// fit 38 decimal digits.
    pub fn of(value: f32) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let bits = value.to_bits();
        let negative = bits >> 31 == 1;
        let biased = ((bits >> 23) & 0xff) as i32;
        let fraction = u128::from(bits & 0x7f_ffff);
        // value = mantissa * 2^exponent, exactly.
        let (mantissa, exponent) = if biased == 0 { (fraction, -149) } else { (fraction | 0x80_0000, biased - 150) };
        if mantissa == 0 {
            return Some(Self(0));
        }
        let shift = exponent + FRAC_BITS as i32;
        let units = if shift >= 0 {
            let shift = shift as u32;
            if shift >= 128 || mantissa.leading_zeros() <= shift {
                return None;
            }
            mantissa << shift
        } else {
            let shift = (-shift) as u32;
            if shift >= 128 {
                0
            } else {
                let (quotient, remainder) = (mantissa >> shift, mantissa & ((1u128 << shift) - 1));
                let half = 1u128 << (shift - 1);
                if remainder > half || (remainder == half && quotient & 1 == 1) {
                    quotient + 1
                } else {
                    quotient
                }
            }
        };
        let units = i128::try_from(units).ok().filter(|u| *u <= DECIMAL_38_MAX)?;
        Some(Self(if negative { -units } else { units }))
    }

    /// The mean of `count` values summing to `self`, rounded once to the nearest `f64` (ties to even);
    /// `None` for no values.
    pub fn mean(self, count: i64) -> Option<f64> {
        (count > 0).then(|| quotient_to_f64(self.0, count as u128, FRAC_BITS))
    }

    /// Orders the exact means `self / count` and `other / other_count` (counts above zero).
    pub fn cmp_means(self, count: i64, other: Self, other_count: i64) -> Ordering {
        // Compare a/b with c/d as a*d with c*b, in 256 bits: units stay below 2^127, counts below 2^63.
        let wide = |units: i128, count: i64| -> (bool, u128, u128) {
            let (magnitude, negative) = (units.unsigned_abs(), units < 0);
            let count = count.max(1) as u128;
            let (low, high) = mul_wide(magnitude, count);
            (negative && (low != 0 || high != 0), high, low)
        };
        let (a_negative, a_high, a_low) = wide(self.0, other_count);
        let (b_negative, b_high, b_low) = wide(other.0, count);
        match (a_negative, b_negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => (a_high, a_low).cmp(&(b_high, b_low)),
            (true, true) => (b_high, b_low).cmp(&(a_high, a_low)),
        }
    }
}

/// `a * b` as (low, high) 128-bit halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let mask = u64::MAX as u128;
    let (a_lo, a_hi, b_lo, b_hi) = (a & mask, a >> 64, b & mask, b >> 64);
    let (lo_lo, lo_hi, hi_lo, hi_hi) = (a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi);
    let middle = (lo_lo >> 64) + (lo_hi & mask) + (hi_lo & mask);
    let low = (lo_lo & mask) | (middle << 64);
    let high = hi_hi + (lo_hi >> 64) + (hi_lo >> 64) + (middle >> 64);
    (low, high)
}

/// `units / (count * 2^frac_bits)` rounded once to the nearest `f64`, ties to even.
fn quotient_to_f64(units: i128, count: u128, frac_bits: u32) -> f64 {
    if units == 0 {
        return 0.0;
    }
    let negative = units < 0;
    let mut numerator = units.unsigned_abs();
    // Scale the numerator up so the integer quotient carries at least 55 significant bits (53 kept, a
    // rounding bit and room), without overflowing: numerator < 2^127 and count < 2^64.
    let wanted = 56 + (128 - count.leading_zeros()) as i32;
    let have = (128 - numerator.leading_zeros()) as i32;
    let up = (wanted - have).clamp(0, numerator.leading_zeros() as i32 - 1);
    numerator <<= up;
    let (mut quotient, remainder) = (numerator / count, numerator % count);
    let mut sticky = remainder != 0;
    let mut scale = -(frac_bits as i32) - up;
    // Keep at most 62 bits of quotient plus a sticky bit, so the conversion below rounds once.
    let bits = 128 - quotient.leading_zeros() as i32;
    if bits > 62 {
        let down = (bits - 62) as u32;
        sticky |= quotient & ((1u128 << down) - 1) != 0;
        quotient >>= down;
        scale += down as i32;
    }
    // The sticky bit below the kept bits breaks what would otherwise look like a tie.
    let kept = (quotient << 1) | u128::from(sticky);
    let magnitude = kept as u64 as f64 * 2f64.powi(scale - 1);
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

impl<const FRAC_BITS: u32> fmt::Debug for FixedSum<FRAC_BITS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*2^-{FRAC_BITS}", self.0)
    }
}

/// Saturates at the 38-digit bound rather than wrapping (unreachable for validated values: scores sum
/// to 2^62 rows' worth before it).
impl<const FRAC_BITS: u32> std::ops::Add for FixedSum<FRAC_BITS> {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0).clamp(-DECIMAL_38_MAX, DECIMAL_38_MAX))
    }
}

impl<const FRAC_BITS: u32> std::ops::AddAssign for FixedSum<FRAC_BITS> {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

/// Scores, intensities and aspect scores (values in [-1, 1]): exact down to 2^-64 (every float above
/// 2^-41 is a whole number of units).
pub type ScoreSum = FixedSum<64>;
/// Magnitudes (non-negative, unbounded): exact down to 2^-40; a magnitude above [`MAGNITUDE_CAP`]
/// counts as the cap, in rollups and in answers from raw rows alike.
pub type MagnitudeSum = FixedSum<40>;

/// The largest magnitude a sum takes in: real magnitudes grow with a text's length and stay far below it,
/// while 10^12 of them still fit a `decimal(38, 0)` of 2^-40 units.
pub const MAGNITUDE_CAP: f32 = 1.0e15;

/// A magnitude as sums take it in.
pub fn magnitude(value: f32) -> MagnitudeSum {
    MagnitudeSum::of(value.min(MAGNITUDE_CAP)).unwrap_or_default()
}

/// A score, intensity or aspect score as sums take it in (validated values always convert).
pub fn score(value: f32) -> ScoreSum {
    ScoreSum::of(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sum(values: &[f32]) -> ScoreSum {
        values.iter().fold(ScoreSum::ZERO, |s, v| s + score(*v))
    }

    #[test]
    fn values_are_taken_in_exactly() {
        assert_eq!(ScoreSum::of(1.0).unwrap().units(), 1i128 << 64);
        assert_eq!(ScoreSum::of(-0.5).unwrap().units(), -(1i128 << 63));
        // 0.1f32 is 13421773 * 2^-27.
        assert_eq!(ScoreSum::of(0.1).unwrap().units(), 13_421_773i128 << 37);
        assert_eq!(ScoreSum::of(0.0001).unwrap().units() as f64 / 2f64.powi(64), f64::from(0.0001f32), "four decimals: exact");
        assert_eq!(ScoreSum::of(f32::MIN_POSITIVE / 4.0).unwrap().units(), 0, "subnormals below the resolution round to 0");
        assert_eq!(ScoreSum::of(-0.0).unwrap(), ScoreSum::ZERO);
        assert!(ScoreSum::of(f32::NAN).is_none() && ScoreSum::of(f32::INFINITY).is_none());
        assert!(ScoreSum::of(1.0e30).is_none(), "beyond 38 digits");
        assert_eq!(MagnitudeSum::of(1.0e15).unwrap().units(), 999_999_986_991_104i128 << 40);
        assert_eq!(magnitude(f32::MAX), magnitude(MAGNITUDE_CAP), "capped");
    }

    #[test]
    fn a_mean_on_a_tie_between_floats_rounds_as_sql_does() {
        // Neighbouring floats: their mean lies exactly between them, and SQL's double keeps it exactly.
        let a = 0.7979f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let sql = (f64::from(a) + f64::from(b)) / 2.0;
        assert_eq!(sum(&[a, b]).mean(2), Some(sql));
        assert_eq!(ScoreSum::ZERO.mean(0), None);
        assert_eq!(sum(&[-0.25, -0.5]).mean(2), Some(-0.375));
    }

    #[test]
    fn means_compare_exactly() {
        assert_eq!(sum(&[0.5]).cmp_means(1, sum(&[1.0]), 2), Ordering::Equal);
        assert_eq!(sum(&[-0.25]).cmp_means(1, sum(&[-0.5]), 3), Ordering::Less, "-0.25 < -0.1666");
        assert_eq!(sum(&[0.7]).cmp_means(3, sum(&[0.1]), 1), Ordering::Greater);
        assert_eq!(sum(&[-0.1]).cmp_means(1, sum(&[0.0]), 1), Ordering::Less);
    }

    proptest! {
        /// Any grouping and order of the same values gives the same sum: what lets a rollup's partial sums
        /// be merged in any order and still equal the sum over raw rows.
        #[test]
        fn sums_do_not_depend_on_order_or_grouping(values in prop::collection::vec(-1.0f32..=1.0, 0..200), split in 0usize..200, seed in any::<u64>()) {
            let whole = sum(&values);
            let split = split.min(values.len());
            let (a, b) = values.split_at(split);
            prop_assert_eq!(sum(b) + sum(a), whole);
            let mut shuffled = values.clone();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(sum(&shuffled), whole);
        }

        /// Where a double holds the sum exactly (a few values), the mean is the double's sum divided by
        /// the count: the same number SQL's AVG gives.
        #[test]
        fn means_of_few_values_equal_the_double_mean(values in prop::collection::vec(-1.0f32..=1.0, 1..6)) {
            let double = values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64;
            prop_assert_eq!(sum(&values).mean(values.len() as i64), Some(double));
        }

        #[test]
        fn magnitude_means_of_few_values_equal_the_double_mean(values in prop::collection::vec(0.0f32..=50.0, 1..6)) {
            let double = values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64;
            let total = values.iter().fold(MagnitudeSum::ZERO, |s, v| s + magnitude(*v));
            prop_assert_eq!(total.mean(values.len() as i64), Some(double));
        }

        #[test]
        fn comparisons_agree_with_double_means(a in prop::collection::vec(-1.0f32..=1.0, 1..5), b in prop::collection::vec(-1.0f32..=1.0, 1..5)) {
            let (ma, mb) = (sum(&a).mean(a.len() as i64).unwrap(), sum(&b).mean(b.len() as i64).unwrap());
            let exact = sum(&a).cmp_means(a.len() as i64, sum(&b), b.len() as i64);
            if ma != mb {
                prop_assert_eq!(exact, ma.partial_cmp(&mb).unwrap());
            }
        }
    }
}
