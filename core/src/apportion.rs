//! Largest-remainder rounding: integers that add up to an exact target, each within one unit of its exact share.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds each exact value to an integer so that the integers add up to `target`.
/// Each result is the floor or the ceiling of its value (given `target` within the reachable range);
/// ties go to the earlier index. Never panics.
pub fn round_to_target(exact: &[Decimal], target: i128) -> Vec<i128> {
    let mut out: Vec<i128> = exact
        .iter()
        .map(|x| x.floor().to_i128().unwrap_or(0))
        .collect();
    let remainders: Vec<Decimal> = exact.iter().map(|x| *x - x.floor()).collect();
    let mut left = target - out.iter().sum::<i128>();
    if out.is_empty() {
        return out;
    }
    let mut order: Vec<usize> = (0..exact.len()).collect();
    if left > 0 {
        order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
        let mut i = 0;
        while left > 0 {
            out[order[i % order.len()]] += 1;
            left -= 1;
            i += 1;
        }
    } else if left < 0 {
        order.sort_by(|&a, &b| remainders[a].cmp(&remainders[b]).then(b.cmp(&a)));
        let mut guard = 0usize;
        let mut i = 0;
        while left < 0 && guard < order.len() * 4 {
            let k = order[i % order.len()];
            if out[k] > 0 {
                out[k] -= 1;
                left += 1;
            }
            i += 1;
            guard += 1;
        }
    }
    out
}

/// Splits `total` units in proportion to non-negative `weights` (all to the first when they sum to 0).
pub fn apportion(total: i128, weights: &[Decimal]) -> Vec<i128> {
    let sum: Decimal = weights
        .iter()
        .copied()
        .filter(|w| w.is_sign_positive())
        .sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum.is_zero() {
        let mut out = vec![0; weights.len()];
        out[0] = total;
        return out;
    }
    let total_dec = Decimal::from_i128_with_scale(total, 0);
    let exact: Vec<Decimal> = weights
        .iter()
        .map(|w| {
            let w = if w.is_sign_positive() {
                *w
            } else {
                Decimal::ZERO
            };
            total_dec
                .checked_mul(w)
                .and_then(|x| x.checked_div(sum))
                .unwrap_or_else(|| total_dec * (w / sum))
        })
        .collect();
    round_to_target(&exact, total)
}

/// `value / unit` rounded half away from zero, as an integer count of units.
pub fn to_units(value: Decimal, unit: Decimal) -> i128 {
    (value / unit)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i128()
        .unwrap_or(0)
}

/// `units × unit` as a decimal.
pub fn from_units(units: i128, unit: Decimal) -> Decimal {
    Decimal::from_i128_with_scale(units, 0) * unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn thirds_add_up_with_the_extra_unit_first() {
        assert_eq!(apportion(10, &[d("1"), d("1"), d("1")]), vec![4, 3, 3]);
        assert_eq!(round_to_target(&[d("0.5"), d("0.5")], 1), vec![1, 0]);
    }

    #[test]
    fn zero_weights_give_everything_to_the_first() {
        assert_eq!(apportion(7, &[d("0"), d("0")]), vec![7, 0]);
    }

    proptest! {
        #[test]
        fn apportion_conserves_and_stays_within_one_unit(
            total in 0i128..10_000_000,
            weights in prop::collection::vec(0u32..100_000, 1..120),
        ) {
            let w: Vec<Decimal> = weights.iter().map(|&x| Decimal::from(x)).collect();
            let out = apportion(total, &w);
            prop_assert_eq!(out.iter().sum::<i128>(), total);
            let sum: u64 = weights.iter().map(|&x| u64::from(x)).sum();
            if sum > 0 {
                for (o, &x) in out.iter().zip(&weights) {
                    let exact = Decimal::from(total as i64) * Decimal::from(x) / Decimal::from(sum);
                    prop_assert!((Decimal::from(*o as i64) - exact).abs() < Decimal::ONE);
                }
            }
        }
    }
}
