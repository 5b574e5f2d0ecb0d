//! NumPy-identical text for float32 arrays: `str(a)` and `repr(a)`.
//!
//! A port of numpy 2.x `numpy/_core/arrayprint.py` (`FloatingFormat`,
//! `_formatArray`, `_extendLine`, `_array_repr_implementation`) and of the
//! float32 paths of `numpy/_core/src/multiarray/dragon4.c`, fixed to the
//! default print options (precision=8, floatmode='maxprec', suppress=False,
//! linewidth=75, threshold=1000, edgeitems=3, sign='-'). Digits come from a
//! port of NumPy's own Dragon4 rather than Rust's float formatting, because
//! NumPy's tie-breaking and its precision cut-off are part of the output.

use ndarray::{ArrayViewD, IxDyn};
use std::cmp::Ordering;

/// `precision` print option: at most this many fractional digits.
const PRECISION: i32 = 8;
/// `linewidth` print option.
const LINEWIDTH: isize = 75;
/// `threshold` print option: larger arrays are summarized with `...`.
const THRESHOLD: usize = 1000;
/// `edgeitems` print option: items kept at each end of a summarized axis.
const EDGEITEMS: usize = 3;

/// Unsigned big integer, little-endian 32-bit limbs without zero high limbs.
/// Dragon4 needs exact arithmetic on values up to about 2^180 for float32.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    /// Multiplies in place by a small factor.
    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let wide = u64::from(*limb) * u64::from(m) + carry;
            (*limb, carry) = (wide as u32, wide >> 32);
        }
        self.0.push(carry as u32);
        self.trim();
    }

    /// Multiplies in place by `2^n` (a few hundred limb operations at most).
    fn shl(&mut self, n: u32) {
        (0..n / 16).for_each(|_| self.mul_small(1 << 16));
        self.mul_small(1 << (n % 16));
    }

    /// Multiplies in place by `10^n`.
    fn mul_pow10(&mut self, n: u32) {
        (0..n).for_each(|_| self.mul_small(10));
    }

    /// Returns `self + sign * o`; subtraction requires `self >= o`.
    fn add(&self, o: &Big, sign: i64) -> Big {
        let (mut out, mut carry) = (Big(Vec::new()), 0i64);
        for i in 0..self.0.len().max(o.0.len()) {
            let limb = |b: &Big| i64::from(b.0.get(i).copied().unwrap_or(0));
            let wide = limb(self) + sign * limb(o) + carry;
            out.0.push(wide.rem_euclid(1 << 32) as u32);
            carry = wide.div_euclid(1 << 32);
        }
        out.0.push(carry as u32);
        out.trim();
        out
    }

    /// Drops zero high limbs so that comparison can start from the length.
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// Numeric comparison.
    fn cmp(&self, o: &Big) -> Ordering {
        let by_len = self.0.len().cmp(&o.0.len());
        by_len.then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
}

/// Which digit position a Dragon4 cut-off counts from.
#[derive(Clone, Copy, PartialEq)]
enum Cutoff {
    /// Count significant digits (scientific notation).
    Total,
    /// Count digits after the decimal point (positional notation).
    Fraction,
}

/// Trailing-zero handling, NumPy's `trim` argument.
#[derive(Clone, Copy, PartialEq)]
enum Trim {
    /// 'k': keep trailing zeros and pad with zeros up to `min_digits`.
    None,
    /// '.': trim trailing zeros, keep the decimal point.
    Zeros,
    /// '0': trim trailing zeros but leave one after the point.
    LeaveOneZero,
    /// '-': trim trailing zeros and the point. Only used here for scientific
    /// notation, so the positional-only rules of this mode are not ported.
    DptZeros,
}

/// Options of one Dragon4 formatting call (dragon4.c `Dragon4_Options`,
/// always in unique digit mode); a negative number disables that option.
#[derive(Clone, Copy)]
struct Opts {
    /// Most digits after the point (positional) or after the first digit.
    precision: i32,
    /// Fewest digits, likewise counted; `Trim::None` pads with zeros to it.
    min_digits: i32,
    /// Trailing-zero handling.
    trim: Trim,
    /// Width left of the decimal point, sign included (space padded).
    pad_left: i32,
    /// Width right of the decimal point (positional only, space padded).
    pad_right: i32,
    /// Minimum exponent digits (scientific only; default 2).
    exp_digits: i32,
}

impl Opts {
    /// Options without any padding (NumPy's defaults for the paddings).
    const fn new(precision: i32, min_digits: i32, trim: Trim) -> Opts {
        let (pad_left, pad_right, exp_digits) = (-1, -1, -1);
        Opts {
            precision,
            min_digits,
            trim,
            pad_left,
            pad_right,
            exp_digits,
        }
    }
}

/// NumPy's Dragon4 (unique mode) for a finite, non-negative float32: the
/// shortest digits that round-trip (closest to the value, ties to even),
/// but stopping at `cut_max` digits (rounding there) and not before
/// `cut_min` digits; negative limits are off. Returns the ASCII digits and
/// the decimal exponent of the first one.
fn dragon4(v: f32, mode: Cutoff, cut_max: i32, cut_min: i32) -> (Vec<u8>, i32) {
    let (raw_mant, raw_exp) = (v.to_bits() & 0x7f_ffff, (v.to_bits() >> 23) as i32);
    let (mantissa, exponent, top_bit, unequal) = match raw_exp {
        0 => (raw_mant, -149, 31 - raw_mant.leading_zeros() as i32, false),
        _ => (
            raw_mant | 1 << 23,
            raw_exp - 150,
            23,
            raw_exp > 1 && raw_mant == 0,
        ),
    };
    if mantissa == 0 {
        return (vec![b'0'], 0);
    }
    // v = value / scale; the margins are half the gaps to the neighbours
    // (the upper one is double at a power of two), scaled by 2 or 4 to stay
    // integral.
    let extra = 1 + u32::from(unequal);
    let (mut value, mut scale, mut margin) = (Big(vec![mantissa]), Big(vec![1]), Big(vec![1]));
    if exponent > 0 {
        value.shl(exponent as u32 + extra);
        scale.shl(extra);
        margin.shl(exponent as u32);
    } else {
        value.shl(extra);
        scale.shl(extra + exponent.unsigned_abs());
    }
    // Burger & Dybvig estimate of floor(log10(v)) + 1, maybe one too low.
    let log_est = f64::from(top_bit + exponent) * std::f64::consts::LOG10_2 - 0.69;
    let mut digit_exp = log_est.ceil() as i32;
    // A fraction cut-off above the first digit: start there so the value
    // rounds at the cut-off (tiny values come out as "0").
    if cut_max >= 0 && mode == Cutoff::Fraction && digit_exp <= -cut_max {
        digit_exp = 1 - cut_max;
    }
    if digit_exp > 0 {
        scale.mul_pow10(digit_exp as u32);
    } else {
        value.mul_pow10(digit_exp.unsigned_abs());
        margin.mul_pow10(digit_exp.unsigned_abs());
    }
    if value.cmp(&scale) != Ordering::Less {
        digit_exp += 1;
    } else {
        value.mul_small(10);
        margin.mul_small(10);
    }
    let cut_exp = |cut: i32| match mode {
        Cutoff::Total => digit_exp - cut,
        Cutoff::Fraction => -cut,
    };
    let cut_max_exp = if cut_max >= 0 {
        cut_exp(cut_max)
    } else {
        i32::MIN
    };
    let cut_min_exp = if cut_min >= 0 {
        digit_exp.min(cut_exp(cut_min))
    } else {
        digit_exp
    };
    let mut first_exp = digit_exp - 1;
    let mut digits = Vec::new();
    loop {
        digit_exp -= 1;
        let mut digit = 0;
        while value.cmp(&scale) != Ordering::Less {
            value = value.add(&scale, -1);
            digit += 1;
        }
        let mut margin_high = margin.clone();
        margin_high.shl(u32::from(unequal));
        let (c_low, c_high) = (value.cmp(&margin), value.add(&margin_high, 1).cmp(&scale));
        // Round-half-even parsing makes the interval closed for even mantissas.
        let even = mantissa % 2 == 0;
        let low = c_low == Ordering::Less || (even && c_low == Ordering::Equal);
        let high = c_high == Ordering::Greater || (even && c_high == Ordering::Equal);
        if ((low || high) && digit_exp <= cut_min_exp) || digit_exp == cut_max_exp {
            // Round the last digit: to the only unique side, or else to the
            // nearer one with ties to even.
            let round_down = match (low, high) {
                (true, false) => true,
                (false, true) => false,
                _ => match value.add(&value, 1).cmp(&scale) {
                    Ordering::Equal => digit % 2 == 0,
                    order => order == Ordering::Less,
                },
            };
            if round_down || digit < 9 {
                digits.push(b'0' + digit + u8::from(!round_down));
            } else {
                // Carry through trailing nines; all nines give "1" a decade up.
                while digits.last() == Some(&b'9') {
                    digits.pop();
                }
                match digits.last_mut() {
                    Some(d) => *d += 1,
                    None => (digits, first_exp) = (vec![b'1'], first_exp + 1),
                }
            }
            return (digits, first_exp);
        }
        digits.push(b'0' + digit);
        value.mul_small(10);
        margin.mul_small(10);
    }
}

/// The tail shared by dragon4.c `FormatPositional` and `FormatScientific`:
/// decimal point, zero padding to `min_digits`, trimming. `s` ends with the
/// digits, `frac` of them after the point; returns the new `frac`.
fn finish_fraction(s: &mut String, mut frac: i32, o: &Opts) -> i32 {
    if o.trim != Trim::DptZeros && frac == 0 {
        s.push('.');
    }
    if o.trim == Trim::LeaveOneZero && frac == 0 {
        s.push('0');
        frac = 1;
    } else if o.trim == Trim::None && o.min_digits > frac {
        s.extend((frac..o.min_digits).map(|_| '0'));
        frac = o.min_digits;
    }
    if o.trim != Trim::None && frac > 0 {
        while s.ends_with('0') {
            s.pop();
            frac -= 1;
        }
        if o.trim == Trim::LeaveOneZero && s.ends_with('.') {
            s.push('0');
            frac += 1;
        }
    }
    frac
}

/// dragon4.c `FormatPositional` for a finite float32 (fraction cut-off).
fn positional(x: f32, o: &Opts) -> String {
    let (digits, exp) = dragon4(x.abs(), Cutoff::Fraction, o.precision, o.min_digits);
    let digits = String::from_utf8(digits).expect("ASCII digits");
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let (mut s, whole, frac) = if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        (
            format!("{sign}0.{zeros}{digits}"),
            1,
            zeros.len() + digits.len(),
        )
    } else if digits.len() as i32 <= exp + 1 {
        let zeros = "0".repeat((exp + 1) as usize - digits.len());
        (format!("{sign}{digits}{zeros}"), exp + 1, 0)
    } else {
        let (int, fr) = digits.split_at(exp as usize + 1);
        (format!("{sign}{int}.{fr}"), exp + 1, fr.len())
    };
    let frac = finish_fraction(&mut s, frac as i32, o);
    s.extend((frac..o.pad_right).map(|_| ' '));
    let pad_left = (o.pad_left - whole - sign.len() as i32).max(0) as usize;
    format!("{}{s}", " ".repeat(pad_left))
}

/// dragon4.c `FormatScientific` for a finite float32: `d.ddde+XX`.
fn scientific(x: f32, o: &Opts) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // Here the limits count all significant digits, so one more than asked.
    let plus_one = |n: i32| if n < 0 { -1 } else { n + 1 };
    let (digits, exp) = dragon4(
        x.abs(),
        Cutoff::Total,
        plus_one(o.precision),
        plus_one(o.min_digits),
    );
    let pad_left = (o.pad_left - 1 - sign.len() as i32).max(0) as usize;
    let mut s = format!("{}{sign}{}", " ".repeat(pad_left), char::from(digits[0]));
    if digits.len() > 1 {
        s += &format!(".{}", String::from_utf8_lossy(&digits[1..]));
    }
    finish_fraction(&mut s, digits.len() as i32 - 1, o);
    let width = if o.exp_digits < 0 {
        2
    } else {
        o.exp_digits.min(5)
    } as usize;
    let exp_sign = if exp < 0 { '-' } else { '+' };
    s + &format!("e{exp_sign}{:0width$}", exp.unsigned_abs())
}

/// NumPy `str()` of a float32 scalar (what `str` of a 0-d array shows):
/// positional in [1e-4, 1e6) and for zero, scientific otherwise.
fn scalar_str(x: f32) -> String {
    if !x.is_finite() {
        return non_finite(x).into();
    }
    // NumPy compares the exact float32 value with the long double 1e-4; no
    // float32 lies between that and the f64 1e-4 used here.
    if x == 0.0 || (1e-4..1e6).contains(&f64::from(x.abs())) {
        positional(x, &Opts::new(-1, -1, Trim::LeaveOneZero))
    } else {
        scientific(x, &Opts::new(-1, -1, Trim::DptZeros))
    }
}

/// NumPy's text for nan and the infinities (nan never shows a sign).
fn non_finite(x: f32) -> &'static str {
    match (x.is_nan(), x < 0.0) {
        (true, _) => "nan",
        (false, true) => "-inf",
        (false, false) => "inf",
    }
}

/// arrayprint.py `FloatingFormat` for float32 under the default options:
/// one layout (notation, digits, paddings) shared by all elements.
struct FloatFormat {
    /// Whole array in scientific notation.
    exp_format: bool,
    /// Options of the final per-element Dragon4 call.
    opts: Opts,
}

impl FloatFormat {
    /// `FloatingFormat.fillFormat`: fits the layout to the shown values.
    fn new(data: &[f32]) -> FloatFormat {
        let finite: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
        let nonzero = finite.iter().filter(|x| **x != 0.0).map(|x| x.abs());
        let max = nonzero.clone().reduce(f32::max);
        let min = nonzero.reduce(f32::min);
        // NumPy compares float32 scalars, so the literals round to float32
        // and the ratio is a float32 division; the upper cut-off is
        // 10**min(8, finfo(float32).precision) = 1e6.
        let exp_format = match (max, min) {
            (Some(mx), Some(mn)) => mx >= 1e6 || mn < 1e-4_f32 || mx / mn > 1000.0_f32,
            _ => false,
        };
        // First pass: the widest pieces of each value's own shortest text.
        let first = Opts::new(PRECISION, -1, Trim::Zeros);
        let (mut int_w, mut frac_w, mut exp_w) = (0, 0, 0);
        for &x in &finite {
            let text = if exp_format {
                scientific(x, &first)
            } else {
                positional(x, &first)
            };
            let (mant, exp) = text.split_once('e').unwrap_or((&text, ""));
            let (int, frac) = mant.split_once('.').expect("a decimal point");
            int_w = int_w.max(int.len() as i32);
            frac_w = frac_w.max(frac.len() as i32);
            exp_w = exp_w.max(exp.len() as i32 - 1);
        }
        let mut opts = Opts::new(PRECISION, 0, Trim::Zeros);
        (opts.pad_left, opts.pad_right) = (int_w, frac_w);
        if exp_format {
            // All mantissas get the same digit count, padded with zeros; the
            // right width only serves to align nan/inf.
            (opts.precision, opts.min_digits, opts.trim) = (frac_w, frac_w, Trim::None);
            (opts.exp_digits, opts.pad_right) = (exp_w, exp_w + 2 + frac_w);
        }
        if finite.len() != data.len() {
            // Widen the integer side so that "nan", "inf" or "-inf" fits.
            let neginf = i32::from(data.iter().any(|x| x.is_infinite() && *x < 0.0));
            let offset = opts.pad_right + 1;
            opts.pad_left = opts.pad_left.max(3 + neginf - offset);
        }
        FloatFormat { exp_format, opts }
    }

    /// `FloatingFormat.__call__`: one element, padded to the common layout.
    fn format(&self, x: f32) -> String {
        if !x.is_finite() {
            let width = (self.opts.pad_left + self.opts.pad_right + 1).max(0) as usize;
            format!("{:>width$}", non_finite(x))
        } else if self.exp_format {
            scientific(x, &self.opts)
        } else {
            positional(x, &self.opts)
        }
    }
}

/// Positions printed along an axis of length `n`, in order; `None` marks
/// the "..." of a summarized axis (`_leading_trailing`, `_formatArray`).
fn shown(n: usize, summarize: bool) -> Vec<Option<usize>> {
    if summarize && n > 2 * EDGEITEMS {
        let (head, tail) = ((0..EDGEITEMS).map(Some), (n - EDGEITEMS..n).map(Some));
        head.chain([None]).chain(tail).collect()
    } else {
        (0..n).map(Some).collect()
    }
}

/// Appends `word` to `line`, first flushing `line` to `s` if it would pass
/// `width` (`_extendLine`; never wraps a line that holds only the indent).
fn extend_line(s: &mut String, line: &mut String, word: &str, width: isize, next_prefix: &str) {
    if (line.len() + word.len()) as isize > width && line.len() > next_prefix.len() {
        s.push_str(line.trim_end());
        s.push('\n');
        *line = next_prefix.to_string();
    }
    line.push_str(word);
}

/// State shared by the recursion of `_formatArray`.
struct Printer<'a, 'b> {
    /// The full array (indexing it is stride-agnostic).
    a: &'a ArrayViewD<'b, f32>,
    /// Element formatter fitted to the shown elements.
    fmt: FloatFormat,
    /// Element separator: " " for str, ", " for repr.
    sep: &'static str,
    /// Whether the array exceeds `threshold` and axes get `...`.
    summarize: bool,
}

impl Printer<'_, '_> {
    /// `_formatArray.recurser`: formats the sub-array at `index`, with
    /// continuation lines starting with `hanging` and at most `width` wide.
    fn recurse(&self, index: &mut Vec<usize>, hanging: &str, width: isize) -> String {
        let axis = index.len();
        let axes_left = self.a.ndim() - axis;
        if axes_left == 0 {
            return self.fmt.format(self.a[IxDyn(index)]);
        }
        let next_hanging = format!("{hanging} ");
        let items = shown(self.a.shape()[axis], self.summarize);
        let mut word = |item: Option<usize>| match item {
            None => "...".to_string(),
            Some(i) => {
                index.push(i);
                // The closing "]" of this level costs the child one column.
                let out = self.recurse(index, &next_hanging, width - 1);
                index.pop();
                out
            }
        };
        let last = items.len() - 1;
        let mut s = String::new();
        if axes_left == 1 {
            // Innermost axis: fill lines, reserving one column for the
            // "," or "]" that follows each element.
            let mut line = hanging.to_string();
            for (k, &item) in items.iter().enumerate() {
                extend_line(&mut s, &mut line, &word(item), width - 1, hanging);
                if k < last {
                    line += self.sep;
                }
            }
            s += &line;
        } else {
            // Outer axes: one sub-array per line, blank lines between blocks.
            let line_sep = format!("{}{}", self.sep.trim_end(), "\n".repeat(axes_left - 1));
            for (k, &item) in items.iter().enumerate() {
                s += hanging;
                s += &word(item);
                if k < last {
                    s += &line_sep;
                }
            }
        }
        format!("[{}]", &s[hanging.len()..])
    }
}

/// `array2string` for a non-empty array: picks the shown elements, fits the
/// formatter to them and lays them out within `line_width`.
fn array2string(a: &ArrayViewD<f32>, sep: &'static str, prefix: &str, line_width: isize) -> String {
    let summarize = a.len() > THRESHOLD;
    let axes: Vec<_> = a.shape().iter().map(|&n| shown(n, summarize)).collect();
    let mut data = Vec::new();
    let mut idx = vec![0usize; a.ndim()];
    collect(a, &axes, &mut idx, 0, &mut data);
    let printer = Printer {
        a,
        fmt: FloatFormat::new(&data),
        sep,
        summarize,
    };
    // Continuation lines align after "[" and after the prefix.
    let hanging = " ".repeat(1 + prefix.len());
    printer.recurse(&mut Vec::new(), &hanging, line_width)
}

/// Gathers the elements at the Cartesian product of the shown indices.
fn collect(
    a: &ArrayViewD<f32>,
    axes: &[Vec<Option<usize>>],
    idx: &mut Vec<usize>,
    axis: usize,
    out: &mut Vec<f32>,
) {
    if axis == axes.len() {
        out.push(a[IxDyn(idx)]);
        return;
    }
    for &i in axes[axis].iter().flatten() {
        idx[axis] = i;
        collect(a, axes, idx, axis + 1, out);
    }
}

/// NumPy `str(a)` of a float32 array, e.g. "[[0.00767819]]".
pub(crate) fn array_str(a: &ArrayViewD<f32>) -> String {
    if a.ndim() == 0 {
        return scalar_str(a[IxDyn(&[])]);
    }
    if a.is_empty() {
        return "[]".into();
    }
    array2string(a, " ", "", LINEWIDTH)
}

/// NumPy `repr(a)` of a float32 array, e.g. "array([[0.00767819]], dtype=float32)".
pub(crate) fn array_repr(a: &ArrayViewD<f32>) -> String {
    let prefix = "array(";
    // The closing ")" is reserved from the line width (`suffix=")"`).
    let lst = if a.is_empty() {
        "[]".into()
    } else {
        array2string(a, ", ", prefix, LINEWIDTH - 1)
    };
    // float32 is never an implied dtype; the shape is shown when the text
    // cannot tell it (empty arrays other than (0,), summarized arrays).
    let mut extras = Vec::new();
    if (a.is_empty() && a.shape() != [0]) || a.len() > THRESHOLD {
        let dims: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
        let tuple = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        extras.push(format!("shape={tuple}"));
    }
    extras.push("dtype=float32".to_string());
    let arr_str = format!("{prefix}{lst},");
    let extra_str = format!("{})", extras.join(", "));
    let last_line_len = arr_str.len() - arr_str.rfind('\n').map_or(0, |p| p + 1);
    // The extras move to their own line when they would pass the line width.
    let spacer = if (last_line_len + extra_str.len() + 1) as isize > LINEWIDTH {
        format!("\n{}", " ".repeat(prefix.len()))
    } else {
        " ".to_string()
    };
    format!("{arr_str}{spacer}{extra_str}")
}

/// Expected strings come from numpy 2.4 (`str(a)`, `repr(a)` of the array in
/// each comment); the random cases were picked from a larger scratch
/// comparison against numpy.
#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    /// A row-major float32 array of `shape`.
    fn arr(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape matches values")
    }

    /// `np.arange(n, dtype=np.float32)` mapped through `f` (exact in f32).
    fn arange(n: usize, f: impl Fn(f32) -> f32) -> Vec<f32> {
        (0..n).map(|i| f(i as f32)).collect()
    }

    /// Asserts NumPy's `str(a)` and `repr(a)`.
    fn check(a: &ArrayD<f32>, want_str: &str, want_repr: &str) {
        assert_eq!(array_str(&a.view()), want_str, "str");
        assert_eq!(array_repr(&a.view()), want_repr, "repr");
    }

    /// The values of the Keras tutorial this crate reproduces.
    #[test]
    #[rustfmt::skip]
    fn tutorial_values() {
        // np.array([[[0.00767819],[0.01597687],[0.02480672]]], dtype=np.float32)
        check(&arr(&[1, 3, 1], vec![0.00767819, 0.01597687, 0.02480672]),
          "[[[0.00767819]\n  [0.01597687]\n  [0.02480672]]]",
          "array([[[0.00767819],\n        [0.01597687],\n        [0.02480672]]], dtype=float32)");
        // np.array([[0.02480672]], np.float32)
        check(&arr(&[1, 1], vec![0.02480672]), "[[0.02480672]]",
          "array([[0.02480672]], dtype=float32)");
        // np.array([[[0.1,0.2],[0.3,0.1],[0.2,0.3]]], np.float32)
        check(&arr(&[1, 3, 2], vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3]),
          "[[[0.1 0.2]\n  [0.3 0.1]\n  [0.2 0.3]]]",
          "array([[[0.1, 0.2],\n        [0.3, 0.1],\n        [0.2, 0.3]]], dtype=float32)");
    }

    /// Sign padding, trailing points, and the 8-digit cut (1/512 ties to even).
    #[test]
    #[rustfmt::skip]
    fn positional() {
        // np.array([-1.5, 2.25, -0.125, 3.0], np.float32)
        check(&arr(&[4], vec![-1.5, 2.25, -0.125, 3.0]), "[-1.5    2.25  -0.125  3.   ]",
          "array([-1.5  ,  2.25 , -0.125,  3.   ], dtype=float32)");
        // np.array([1., 0.5], np.float32)
        check(&arr(&[2], vec![1.0, 0.5]), "[1.  0.5]",
          "array([1. , 0.5], dtype=float32)");
        // np.array([1/512, 0.5], np.float32)
        check(&arr(&[2], vec![1.0 / 512.0, 0.5]), "[0.00195312 0.5       ]",
          "array([0.00195312, 0.5       ], dtype=float32)");
        // np.array([0.00012345679, 0.1], np.float32)
        check(&arr(&[2], vec![0.00012345679, 0.1]), "[0.00012346 0.1       ]",
          "array([0.00012346, 0.1       ], dtype=float32)");
        // np.zeros((2, 3), np.float32)
        check(&ArrayD::zeros(IxDyn(&[2, 3])), "[[0. 0. 0.]\n [0. 0. 0.]]",
          "array([[0., 0., 0.],\n       [0., 0., 0.]], dtype=float32)");
    }

    /// Each trigger of scientific notation (min < 1e-4, max >= 1e6, max/min > 1e3); digits
    /// past the shortest form when another value needs them ("3.0000001e-01").
    #[test]
    #[rustfmt::skip]
    fn scientific() {
        // np.array([1e-5, 1.0, 123.456], np.float32)
        check(&arr(&[3], vec![1e-5, 1.0, 123.456]), "[1.00000e-05 1.00000e+00 1.23456e+02]",
          "array([1.00000e-05, 1.00000e+00, 1.23456e+02], dtype=float32)");
        // np.array([1e6, 2.5], np.float32)
        check(&arr(&[2], vec![1e6, 2.5]), "[1.0e+06 2.5e+00]",
          "array([1.0e+06, 2.5e+00], dtype=float32)");
        // np.array([0.001, 2.0], np.float32)
        check(&arr(&[2], vec![0.001, 2.0]), "[1.e-03 2.e+00]",
          "array([1.e-03, 2.e+00], dtype=float32)");
        // np.array([[-1e-7, 3e10], [0.0, -2.5]], np.float32)
        check(&arr(&[2, 2], vec![-1e-7, 3e10, 0.0, -2.5]),
          "[[-1.0e-07  3.0e+10]\n [ 0.0e+00 -2.5e+00]]",
          "array([[-1.0e-07,  3.0e+10],\n       [ 0.0e+00, -2.5e+00]], dtype=float32)");
        // np.array([[1e-45, -3.4028235e38]], np.float32)
        check(&arr(&[1, 2], vec![1e-45, -3.4028235e38]), "[[ 1.4012985e-45 -3.4028235e+38]]",
          "array([[ 1.4012985e-45, -3.4028235e+38]], dtype=float32)");
        // np.array([0.3, 1.2345678e3], np.float32)
        check(&arr(&[2], vec![0.3, 1.2345678e3]), "[3.0000001e-01 1.2345677e+03]",
          "array([3.0000001e-01, 1.2345677e+03], dtype=float32)");
    }

    /// Wrapping (repr then moves the dtype down), blank lines between blocks, strides.
    #[test]
    #[rustfmt::skip]
    fn layout() {
        // np.arange(30, dtype=np.float32) / 7
        check(&arr(&[30], arange(30, |x| x / 7.0)),
          "[0.         0.14285715 0.2857143  0.42857143 0.5714286  0.71428573\n \
           0.85714287 1.         1.1428572  1.2857143  1.4285715  1.5714285\n \
           1.7142857  1.8571428  2.         2.142857   2.2857144  2.4285715\n \
           2.5714285  2.7142856  2.857143   3.         3.142857   3.2857144\n \
           3.4285715  3.5714285  3.7142856  3.857143   4.         4.142857  ]",
          "array([0.        , 0.14285715, 0.2857143 , 0.42857143, 0.5714286 ,\n       \
           0.71428573, 0.85714287, 1.        , 1.1428572 , 1.2857143 ,\n       \
           1.4285715 , 1.5714285 , 1.7142857 , 1.8571428 , 2.        ,\n       \
           2.142857  , 2.2857144 , 2.4285715 , 2.5714285 , 2.7142856 ,\n       \
           2.857143  , 3.        , 3.142857  , 3.2857144 , 3.4285715 ,\n       \
           3.5714285 , 3.7142856 , 3.857143  , 4.        , 4.142857  ],\n      \
           dtype=float32)");
        // np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3
        check(&arr(&[2, 3, 4], arange(24, |x| x * 0.5 - 3.0)),
          "[[[-3.  -2.5 -2.  -1.5]\n  \
           [-1.  -0.5  0.   0.5]\n  \
           [ 1.   1.5  2.   2.5]]\n\
           \n \
           [[ 3.   3.5  4.   4.5]\n  \
           [ 5.   5.5  6.   6.5]\n  \
           [ 7.   7.5  8.   8.5]]]",
          "array([[[-3. , -2.5, -2. , -1.5],\n        \
           [-1. , -0.5,  0. ,  0.5],\n        \
           [ 1. ,  1.5,  2. ,  2.5]],\n\
           \n       \
           [[ 3. ,  3.5,  4. ,  4.5],\n        \
           [ 5. ,  5.5,  6. ,  6.5],\n        \
           [ 7. ,  7.5,  8. ,  8.5]]], dtype=float32)");
        // np.arange(6, dtype=np.float32).reshape(2, 3).T
        check(&arr(&[2, 3], arange(6, |x| x)).reversed_axes(), "[[0. 3.]\n [1. 4.]\n [2. 5.]]",
          "array([[0., 3.],\n       [1., 4.],\n       [2., 5.]], dtype=float32)");
    }

    /// More than 1000 elements: edge items, "..." and the shape in repr.
    #[test]
    #[rustfmt::skip]
    fn summarized() {
        // np.arange(2000, dtype=np.float32) / 4
        check(&arr(&[2000], arange(2000, |x| x / 4.0)),
          "[0.0000e+00 2.5000e-01 5.0000e-01 ... 4.9925e+02 4.9950e+02 4.9975e+02]",
          "array([0.0000e+00, 2.5000e-01, 5.0000e-01, ..., 4.9925e+02, 4.9950e+02,\n       \
           4.9975e+02], shape=(2000,), dtype=float32)");
        // (np.arange(1008, dtype=np.float32) % 7 + 1).reshape(126, 8)
        check(&arr(&[126, 8], arange(1008, |x| x % 7.0 + 1.0)),
          "[[1. 2. 3. ... 6. 7. 1.]\n \
           [2. 3. 4. ... 7. 1. 2.]\n \
           [3. 4. 5. ... 1. 2. 3.]\n \
           ...\n \
           [5. 6. 7. ... 3. 4. 5.]\n \
           [6. 7. 1. ... 4. 5. 6.]\n \
           [7. 1. 2. ... 5. 6. 7.]]",
          "array([[1., 2., 3., ..., 6., 7., 1.],\n       \
           [2., 3., 4., ..., 7., 1., 2.],\n       \
           [3., 4., 5., ..., 1., 2., 3.],\n       \
           ...,\n       \
           [5., 6., 7., ..., 3., 4., 5.],\n       \
           [6., 7., 1., ..., 4., 5., 6.],\n       \
           [7., 1., 2., ..., 5., 6., 7.]], shape=(126, 8), dtype=float32)");
    }

    /// nan and inf widen the integer side; alone they print at width 3 or 4.
    #[test]
    #[rustfmt::skip]
    fn non_finite() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        // np.array([nan, 1.5, -inf, inf], np.float32)
        check(&arr(&[4], vec![nan, 1.5, -inf, inf]), "[ nan  1.5 -inf  inf]",
          "array([ nan,  1.5, -inf,  inf], dtype=float32)");
        // np.array([nan, -inf], np.float32)
        check(&arr(&[2], vec![nan, -inf]), "[ nan -inf]",
          "array([ nan, -inf], dtype=float32)");
        // np.array([1e-5, nan, inf], np.float32)
        check(&arr(&[3], vec![1e-5, nan, inf]), "[1.e-05    nan    inf]",
          "array([1.e-05,    nan,    inf], dtype=float32)");
    }

    /// Empty arrays print "[]"; repr adds the shape unless it is (0,).
    #[test]
    #[rustfmt::skip]
    fn empty() {
        // np.array([], np.float32)
        check(&arr(&[0], vec![]), "[]",
          "array([], dtype=float32)");
        // np.zeros((0, 3), np.float32)
        check(&arr(&[0, 3], vec![]), "[]",
          "array([], shape=(0, 3), dtype=float32)");
        // np.zeros((2, 0, 4), np.float32)
        check(&arr(&[2, 0, 4], vec![]), "[]",
          "array([], shape=(2, 0, 4), dtype=float32)");
    }

    /// 0-d arrays: str is the float32 scalar's str, repr formats the one value.
    #[test]
    fn zero_dimensional() {
        // for v in the values below: a = np.array(v, np.float32); str(a), repr(a)
        let cases: [(f32, &str, &str); 10] = [
            (1.5, "1.5", "array(1.5, dtype=float32)"),
            (1e-5, "1e-05", "array(1.e-05, dtype=float32)"),
            (100.0, "100.0", "array(100., dtype=float32)"),
            (-0.0, "-0.0", "array(-0., dtype=float32)"),
            (f32::NAN, "nan", "array(nan, dtype=float32)"),
            (1e6, "1e+06", "array(1.e+06, dtype=float32)"),
            (f32::NEG_INFINITY, "-inf", "array(-inf, dtype=float32)"),
            (0.1, "0.1", "array(0.1, dtype=float32)"),
            (1e-4, "1e-04", "array(0.0001, dtype=float32)"),
            (999999.94, "999999.94", "array(999999.94, dtype=float32)"),
        ];
        for (v, s, r) in cases {
            check(&ArrayD::from_elem(IxDyn(&[]), v), s, r);
        }
    }

    /// Random arrays (rank 1 to 3, mixed magnitudes, signs, nan/inf) as float32 bits:
    /// a = np.array(BITS, np.uint32).view(np.float32).reshape(SHAPE); str(a), repr(a)
    #[rustfmt::skip]
    const RANDOM: &[(&[usize], &[u32], &str, &str)] = &[
        (&[4], &[0x4b4387fd, 0xbcfa15ce, 0xc01e7bd7, 0x7f800000],
         "[ 1.2814333e+07 -3.0527975e-02 -2.4763086e+00            inf]",
         "array([ 1.2814333e+07, -3.0527975e-02, -2.4763086e+00,            inf],\n      dtype=float32)"),
        (&[2], &[0xb7739795, 0x3803156d],
         "[-1.4519222e-05  3.1252788e-05]",
         "array([-1.4519222e-05,  3.1252788e-05], dtype=float32)"),
        (&[2, 4], &[0xc445c000, 0xc4450000, 0xc3b20000, 0x43f88000, 0x446c8000, 0xc37c0000, 0x42380000, 0x44248000],
         "[[-791. -788. -356.  497.]\n [ 946. -252.   46.  658.]]",
         "array([[-791., -788., -356.,  497.],\n       [ 946., -252.,   46.,  658.]], dtype=float32)"),
        (&[2, 2], &[0x3c3ea881, 0x7fc00000, 0x3e1a6ad5, 0x3f749307],
         "[[0.01163685        nan]\n [0.15079816 0.95536846]]",
         "array([[0.01163685,        nan],\n       [0.15079816, 0.95536846]], dtype=float32)"),
        (&[2], &[0x49742400, 0x38d1b719],
         "[1.0000000e+06 1.0000001e-04]",
         "array([1.0000000e+06, 1.0000001e-04], dtype=float32)"),
        (&[1, 2, 2], &[0x3eb63af7, 0x3ef1dab1, 0x3f1a8ed8, 0x3f56da8c],
         "[[[0.35591862 0.4723716 ]\n  [0.6037421  0.83927226]]]",
         "array([[[0.35591862, 0.4723716 ],\n        [0.6037421 , 0.83927226]]], dtype=float32)"),
        (&[5, 2], &[0x3eb9a5ef, 0x3f64f1d9, 0x3f6b029c, 0x3e3061ac, 0x3f20d685, 0x3ce883fa, 0x3f32c9b5, 0x3f564ecd, 0x3e435993, 0x3ec8c49d],
         "[[0.3625941  0.8943153 ]\n [0.91800857 0.17224759]\n [0.6282733  0.02838324]\n [0.6983903  0.8371399 ]\n [0.19077139 0.39212504]]",
         "array([[0.3625941 , 0.8943153 ],\n       [0.91800857, 0.17224759],\n       [0.6282733 , 0.02838324],\n       [0.6983903 , 0.8371399 ],\n       [0.19077139, 0.39212504]], dtype=float32)"),
        (&[4], &[0x447a0002, 0x00000000, 0x447a0000, 0xbf000000],
         "[ 1.0000001e+03  0.0000000e+00  1.0000000e+03 -5.0000000e-01]",
         "array([ 1.0000001e+03,  0.0000000e+00,  1.0000000e+03, -5.0000000e-01],\n      dtype=float32)"),
        (&[5, 2, 1], &[0xcbf9e027, 0x63bdd377, 0x83a30c6f, 0x4433d60c, 0xae16ca21, 0xe703a2da, 0x5235aaad, 0x72c85796, 0xaf638931, 0x7d826777],
         "[[[-3.2751694e+07]\n  [ 7.0033446e+21]]\n\n [[-9.5831336e-37]\n  [ 7.1934448e+02]]\n\n [[-3.4285578e-11]\n  [-6.2163409e+23]]\n\n [[ 1.9506314e+11]\n  [ 7.9363695e+30]]\n\n [[-2.0694270e-10]\n  [ 2.1667107e+37]]]",
         "array([[[-3.2751694e+07],\n        [ 7.0033446e+21]],\n\n       [[-9.5831336e-37],\n        [ 7.1934448e+02]],\n\n       [[-3.4285578e-11],\n        [-6.2163409e+23]],\n\n       [[ 1.9506314e+11],\n        [ 7.9363695e+30]],\n\n       [[-2.0694270e-10],\n        [ 2.1667107e+37]]], dtype=float32)"),
        (&[6], &[0xb8d1b717, 0x38d1b716, 0x447a0002, 0x3f000000, 0x497423fe, 0x3a83126e],
         "[-9.9999997e-05  9.9999990e-05  1.0000001e+03  5.0000000e-01\n  9.9999988e+05  9.9999993e-04]",
         "array([-9.9999997e-05,  9.9999990e-05,  1.0000001e+03,  5.0000000e-01,\n        9.9999988e+05,  9.9999993e-04], dtype=float32)"),
        (&[2], &[0xff800000, 0x396ab909],
         "[      -inf 0.00022385]",
         "array([      -inf, 0.00022385], dtype=float32)"),
        (&[3], &[0x3717939c, 0x7f800000, 0xc5a4033f],
         "[ 9.034669e-06           inf -5.248406e+03]",
         "array([ 9.034669e-06,           inf, -5.248406e+03], dtype=float32)"),
        (&[4], &[0x450761f1, 0x4b177e74, 0x3c7be883, 0x371382a8],
         "[2.1661213e+03 9.9283080e+06 1.5375259e-02 8.7923036e-06]",
         "array([2.1661213e+03, 9.9283080e+06, 1.5375259e-02, 8.7923036e-06],\n      dtype=float32)"),
        (&[2], &[0x4270c310, 0xc01d1c19],
         "[60.19049 -2.45484]",
         "array([60.19049, -2.45484], dtype=float32)"),
        (&[1, 3, 2], &[0xc0b6e148, 0x42388b44, 0x42769cac, 0x427451ec, 0x42ab75c3, 0xc1065a1d],
         "[[[-5.715 46.136]\n  [61.653 61.08 ]\n  [85.73  -8.397]]]",
         "array([[[-5.715, 46.136],\n        [61.653, 61.08 ],\n        [85.73 , -8.397]]], dtype=float32)"),
        (&[3, 2], &[0x48e58d87, 0xb9daffc9, 0xb5884736, 0x4926861e, 0x4d3e81cc, 0xc74c9a8e],
         "[[ 4.7012422e+05 -4.1770775e-04]\n [-1.0153515e-06  6.8208188e+05]\n [ 1.9976109e+08 -5.2378555e+04]]",
         "array([[ 4.7012422e+05, -4.1770775e-04],\n       [-1.0153515e-06,  6.8208188e+05],\n       [ 1.9976109e+08, -5.2378555e+04]], dtype=float32)"),
        (&[2], &[0x3ea59f58, 0x3f0a9c71],
         "[0.32348132 0.5414496 ]",
         "array([0.32348132, 0.5414496 ], dtype=float32)"),
        (&[2], &[0xc3000000, 0x43b9c000],
         "[-128.   371.5]",
         "array([-128. ,  371.5], dtype=float32)"),
        (&[3, 1], &[0x41194f5a, 0x3dc80a6c, 0x7dab8dae],
         "[[9.5818729e+00]\n [9.7676128e-02]\n [2.8504204e+37]]",
         "array([[9.5818729e+00],\n       [9.7676128e-02],\n       [2.8504204e+37]], dtype=float32)"),
        (&[6], &[0x3edde42f, 0x3f7e8aa7, 0x00000000, 0x3f625f1d, 0x00000000, 0x3f640984],
         "[0.43338153 0.99430317 0.         0.8842638  0.         0.8907702 ]",
         "array([0.43338153, 0.99430317, 0.        , 0.8842638 , 0.        ,\n       0.8907702 ], dtype=float32)"),
    ];

    /// The random arrays above, checked against numpy 2.4.
    #[test]
    fn random_arrays() {
        for &(shape, bits, s, r) in RANDOM {
            check(
                &arr(shape, bits.iter().map(|&b| f32::from_bits(b)).collect()),
                s,
                r,
            );
        }
    }
}
