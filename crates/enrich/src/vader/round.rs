//! Rounding with CPython semantics.

/// Round `value` to `digits` decimal places the way CPython's `round(x, n)` does:
/// the exact binary value is rounded to `n` decimal digits, correctly rounded with
/// ties to even on the decimal digit, and the result is the nearest `f64` to that
/// decimal. This is not `(x * 10^n).round() / 10^n`, and the difference shows up
/// in this crate's output; the tie cases are pinned by `tie_cases_match_cpython`,
/// and the harness sweeps 10^6 random doubles against Python's `round`.
///
/// Rust's fixed-precision float formatting performs exactly that decimal rounding
/// (correctly rounded, ties to even, over the exact binary value), and `parse`
/// returns the nearest `f64`, so the composition is CPython's `round`.
pub(crate) fn python_round(value: f64, digits: usize) -> f64 {
    // sentiment-lake patch: fast path with the same result. When value·10^n
    // is not within 1e-6 of a .5 tie, rounding that product to an integer
    // picks the same decimal as rounding the exact binary value (the product's
    // float error is below 1e-11 for the |value| <= 10^4 scores rounded here),
    // and integer / 10^n is the nearest f64 to that decimal (IEEE division of
    // two exact values). Ties and large values take the formatting path.
    if digits <= 6 && value.is_finite() && value.abs() < 1e4 {
        let scale = 10f64.powi(digits as i32);
        let y = value * scale;
        if (y - y.floor() - 0.5).abs() > 1e-6 {
            return y.round() / scale;
        }
    }
    // The fallback cannot be reached: fixed-point formatting of a finite f64
    // always yields a parseable decimal, and every value this crate rounds is
    // finite by construction.
    format!("{value:.digits$}").parse::<f64>().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    /// sentiment-lake: the fast path must equal the formatting path.
    #[test]
    fn fast_path_equals_formatting() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Values in [-1.5, 1.5] plus exact-grid values near ties.
            let v = (x % 3_000_001) as f64 / 1_000_000.0 - 1.5;
            let grid = ((x >> 20) % 20_001) as f64 / 10_000.0 - 1.0 + 0.000_05;
            for value in [v, grid, v / 7.0] {
                for digits in [3usize, 4] {
                    let slow = format!("{value:.digits$}").parse::<f64>().unwrap_or(value);
                    assert_eq!(
                        super::python_round(value, digits).to_bits(),
                        slow.to_bits(),
                        "{value} {digits}"
                    );
                }
            }
        }
    }

    use super::python_round;

    #[test]
    fn tie_cases_match_cpython() {
        // Python: round(0.0625, 3) == 0.062 (exact tie, half to even)
        assert_eq!(python_round(0.0625, 3).to_bits(), 0.062_f64.to_bits());
        // Python: round(2.675, 2) == 2.67 (2.675 is below the tie in binary)
        assert_eq!(python_round(2.675, 2).to_bits(), 2.67_f64.to_bits());
        // Python: round(0.25, 1) == 0.2, round(0.75, 1) == 0.8
        assert_eq!(python_round(0.25, 1).to_bits(), 0.2_f64.to_bits());
        assert_eq!(python_round(0.75, 1).to_bits(), 0.8_f64.to_bits());
        // Python: round(0.00005, 4) == 0.0001 (binary value sits above the tie)
        assert_eq!(python_round(0.000_05, 4).to_bits(), 0.0001_f64.to_bits());
    }

    #[test]
    fn negative_zero_is_preserved() {
        // Python: round(-0.00004, 3) == -0.0
        let rounded = python_round(-0.000_04, 3);
        assert_eq!(rounded.to_bits(), (-0.0_f64).to_bits());
    }

    #[test]
    fn passthrough_of_representable_values() {
        assert_eq!(python_round(0.4404, 4).to_bits(), 0.4404_f64.to_bits());
        assert_eq!(python_round(-0.6597, 4).to_bits(), (-0.6597_f64).to_bits());
        assert_eq!(python_round(0.0, 4).to_bits(), 0.0_f64.to_bits());
        assert_eq!(python_round(1.0, 4).to_bits(), 1.0_f64.to_bits());
        assert_eq!(python_round(-1.0, 4).to_bits(), (-1.0_f64).to_bits());
    }
}
