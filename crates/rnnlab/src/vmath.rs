//! `exp`, `tanh` and the sigmoid for float32, correctly rounded in practice and vectorised.
//!
//! Keras' printed digits (the tutorials' 8 digits) need float32 results that are the correctly rounded values of
//! the true functions, which rnnlab used to get by calling the C library's double-precision `exp`/`tanh` and
//! rounding. Those calls were more than a third of an LSTM's forward time and cannot be vectorised. Here the same
//! double-precision evaluation is written branch-free (range reduction with a 16-entry table, a degree-7
//! polynomial, exponent bits) and rounded to float32 once: with AVX-512 intrinsics 16 floats at a time, elsewhere
//! as scalar code the compiler vectorises. The double-precision error (a few units in the 16th digit) is 10⁸ times
//! smaller than float32's rounding step, so the float32 result equals the libm-based one unless the true value
//! lies within that error of a rounding midpoint: it never does, over all 2³² float32 inputs (see the tests).
//!
//! The scalar code uses plain IEEE multiplies, adds and divides only (no fused multiply-add), so it gives identical
//! bits on every machine. The vector code (AVX-512; AVX2 with FMA) takes fewer operations (fused multiply-adds,
//! exponent bits or `scalef` for the powers of two), so its doubles differ in the last bits; its float32 results
//! are the same as the scalar code's on all 2³² inputs (the ignored test `every_float32_input_on_every_path` checks
//! every path against libm; run it after changing this module).
//!
//! With AVX-512 or AVX2, `exp` and the sigmoid first try a float32 evaluation, 16 or 8 values to a register with
//! no conversions: it carries the result as a float plus an exact error term, so it knows which lanes it rounded
//! correctly; the lanes it cannot vouch for (about one value in a thousand with AVX-512's 32-entry table, one in a
//! few hundred with AVX2's 8-entry one, and any |x| > 87) are recomputed in double precision (AVX-512: the register;
//! AVX2: the lane, by the scalar code). tanh is computed in double precision with a check of its own rounding in
//! the same way. The results are the same bits either way.

/// `ln 2 / 16` split for Cody–Waite range reduction: `HI` has 32 trailing zero bits, so `n * HI` is exact for
/// |n| < 2²¹. (Written with the digits they were derived from; the literals round to the intended doubles.)
#[allow(clippy::excessive_precision)]
const L_HI: f64 = 6.931_471_803_691_238_164_9e-1 / 16.0;
#[allow(clippy::excessive_precision)]
const L_LO: f64 = 1.908_214_929_270_587_700_02e-10 / 16.0;
const INV_L: f64 = 16.0 * std::f64::consts::LOG2_E;
/// 1.5 · 2⁵²: adding it rounds to an integer (ties to even) in the low mantissa bits without a rounding instruction.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// `(2^(j/16), 2^(j/16) − 1)` for j = 0..16, each correctly rounded (computed with 50-digit arithmetic). Entry 8
/// is √2, kept as a literal so the table reads as one list.
#[allow(clippy::approx_constant)]
const TABLE: [(f64, f64); 16] = [
    (1.0, 0.0),
    (1.0442737824274138, 0.04427378242741384),
    (1.0905077326652577, 0.09050773266525766),
    (1.1387886347566916, 0.13878863475669165),
    (1.189207115002721, 0.18920711500272105),
    (1.241857812073484, 0.24185781207348406),
    (1.2968395546510096, 0.29683955465100964),
    (1.3542555469368927, 0.3542555469368927),
    (1.4142135623730951, 0.41421356237309503),
    (1.4768261459394993, 0.4768261459394993),
    (1.5422108254079407, 0.5422108254079409),
    (1.6104903319492543, 0.6104903319492543),
    (1.681792830507429, 0.6817928305074291),
    (1.7562521603732995, 0.7562521603732995),
    (1.8340080864093424, 0.8340080864093424),
    (1.9152065613971474, 0.9152065613971473),
];
/// Taylor coefficients of `(expm1(r) − r) / r²`: 1/2!, 1/3!, ..., 1/7!.
const C: [f64; 6] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
];

/// `x = (16m + j) · ln2/16 + r` with |r| ≤ ln2/32: returns `(2^m, 2^(j/16), 2^(j/16) − 1, expm1(r))`, for
/// |x| ≤ 200 (callers clamp). `exp(x) = 2^m (T + T·expm1(r))`; `expm1(x) = 2^m (T−1 + T·expm1(r)) + (2^m − 1)`.
///
/// A 16-entry table shortens the polynomial from degree 13 to 7 (the next term is below 2·10⁻¹⁸); on AVX-512 the
/// table lookup is one register permute ([`avx512`] computes the same terms with fused multiply-adds).
#[inline(always)]
fn exp_parts(x: f64) -> (f64, f64, f64, f64) {
    let t = x * INV_L + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    // The low bits of `t` hold n (two's complement).
    let ni = (t.to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64);
    let (tj, tm1) = TABLE[(ni & 15) as usize];
    let scale = f64::from_bits((((ni >> 4) + 1023) as u64) << 52);
    let r = (x - n * L_HI) - n * L_LO;
    let r2 = r * r;
    let q0 = C[0] + r * C[1];
    let q1 = C[2] + r * C[3];
    let q2 = C[4] + r * C[5];
    let p = q0 + r2 * (q1 + r2 * q2);
    let em1 = r + r2 * p;
    (scale, tj, tm1, em1)
}

/// `exp(x)` rounded to float32 (overflow to `inf`, underflow to 0, NaN stays NaN).
#[inline(always)]
pub(crate) fn exp32(x: f32) -> f32 {
    // exp(±150) is already out of float32's range, so clamping there changes no float32 result.
    let xd = f64::from(x).clamp(-150.0, 150.0);
    let (scale, tj, _, em1) = exp_parts(xd);
    let y = (scale * (tj + tj * em1)) as f32;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `tanh(x)` rounded to float32, from `expm1(2|x|) / (expm1(2|x|) + 2)` with an accurate `expm1`, so small
/// arguments keep full relative precision.
#[inline(always)]
pub(crate) fn tanh32(x: f32) -> f32 {
    // tanh(20) is 1 in double precision already.
    let ax = f64::from(x).abs().min(20.0);
    let (scale, tj, tm1, em1) = exp_parts(2.0 * ax);
    // expm1(2|x|) from terms that are exact or nearly and (for |x| ≥ 0) never cancel badly.
    let e = scale * (tm1 + tj * em1) + (scale - 1.0);
    let t = (e / (e + 2.0)) as f32;
    // NaN: |NaN|.min(20) is 20 in Rust, so pass NaN through explicitly; the sign comes back with copysign.
    if x.is_nan() {
        x
    } else {
        t.copysign(x)
    }
}

/// TensorFlow's CPU sigmoid (Eigen's `scalar_logistic_op<float>`): `e = exp(min(x, 16.6355324)); e / (1 + e)` in
/// float32. Keras' printed digits depend on it: with this formula the tutorial LSTM gives Keras 3's
/// c = 0.05020291, where `1 / (1 + exp(-x))` gives 0.05020292.
#[inline(always)]
pub(crate) fn sigmoid32(x: f32) -> f32 {
    // `f32::min` would turn NaN into the bound: NaN stays NaN.
    if x.is_nan() {
        return x;
    }
    let e = exp32(x.min(16.635_532));
    e / (1.0 + e)
}

/// The same three functions on 16 floats at a time with AVX-512 intrinsics: the scalar code's terms with fused
/// multiply-adds (same float32 results on all inputs, see the module docs); the compiler's own vectorisation of
/// the scalar code would look the table up with slow gathers and could not fuse.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{C, INV_L, L_HI, L_LO, ROUND_MAGIC, TABLE};
    use std::arch::x86_64::*;

    /// One operation on every register of a group: `each!(N, |i| op(x[i], ...))` is `[op(x[0], ...), ...]`
    /// (`N` long). A loop, not `array::from_fn`: a closure would not inherit the caller's target features, and
    /// its intrinsics would be called instead of inlined.
    macro_rules! each {
        ($n:expr, |$i:ident| $e:expr) => {{
            let mut out = [std::mem::zeroed(); $n];
            for $i in 0..$n {
                out[$i] = $e;
            }
            out
        }};
    }

    #[inline(always)]
    unsafe fn set(v: f64) -> __m512d {
        _mm512_set1_pd(v)
    }

    #[inline(always)]
    unsafe fn set32(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }

    /// `2^(j/32)` for j = 0..32 as float32 pairs: `HI` correctly rounded, `LO` the rest, rounded (60-digit
    /// arithmetic); `HI + LO` is within 2⁻⁴⁸ of the true value.
    #[allow(clippy::approx_constant, clippy::excessive_precision)]
    pub(super) const TAB32_HI: [f32; 32] = [
        1.0,
        1.0218971967697144,
        1.0442737340927124,
        1.0671404600143433,
        1.0905077457427979,
        1.114386796951294,
        1.1387885808944702,
        1.1637248992919922,
        1.1892070770263672,
        1.215247392654419,
        1.2418577671051025,
        1.2690509557724,
        1.2968395948410034,
        1.3252366781234741,
        1.3542555570602417,
        1.3839099407196045,
        1.4142135381698608,
        1.4451807737350464,
        1.4768261909484863,
        1.5091644525527954,
        1.5422108173370361,
        1.5759809017181396,
        1.610490322113037,
        1.6457555294036865,
        1.6817928552627563,
        1.7186193466186523,
        1.7562521696090698,
        1.7947090864181519,
        1.8340080976486206,
        1.8741676807403564,
        1.9152065515518188,
        1.9571441411972046,
    ];
    #[allow(clippy::excessive_precision)]
    pub(super) const TAB32_LO: [f32; 32] = [
        0.0,
        -4.811559861650494e-08,
        4.8334701574503924e-08,
        -5.9337519786595294e-08,
        -1.3077539939843064e-08,
        -5.435540018083884e-08,
        5.386222312608879e-08,
        -4.051441493402308e-08,
        3.797635272917432e-08,
        -3.267394887984665e-08,
        4.496838101886169e-08,
        1.419333317542737e-09,
        -4.018999533172973e-08,
        -3.496373324196611e-08,
        -1.0123349269974824e-08,
        -5.875577357983275e-08,
        2.4203234971764687e-08,
        3.324199937537742e-08,
        -4.500898853621038e-08,
        -2.4959373234878512e-08,
        8.070904833346049e-09,
        -5.661025426206834e-08,
        9.836217174097328e-09,
        -5.124972091152813e-08,
        -2.4755326677450284e-08,
        -4.8496175963919086e-08,
        -9.235770370707996e-09,
        -1.141504490931311e-08,
        -1.1239277952768134e-08,
        -4.663005626071026e-08,
        9.845328108326612e-09,
        -1.7021804410433106e-08,
    ];

    /// `exp` of `N` registers of 16 floats in float32 arithmetic, a third faster than the double-precision
    /// [`exp8`] pair, for the lanes where it can prove its rounding: returns the results and masks of the lanes it
    /// cannot vouch for (|x| > 87, NaN, and about one value in a thousand lying too near a rounding midpoint),
    /// which the caller recomputes with [`exp8`]. The rest are the correctly rounded results (the same bits as
    /// [`super::exp32`]).
    ///
    /// `x = n ln2/32 + r_hi + r_lo` (`r_hi` exact: `ln2/32` rounded to float32 has 29 fraction bits and
    /// |x − n·it| < 2⁻⁵, so the fused product-subtract loses nothing; |r_lo| < 2⁻²²), then
    /// `exp(x) = 2^(n/32) (1 + r_hi + s)` with `s = q + r_lo·w`, `q = r_hi²(1/2 + r_hi/6 + r_hi²/24)`,
    /// `w = 1 + r_hi + q` (terms left out: below 2⁻³⁹). With `T = 2^(j/32) = HI + LO`, `T(1 + r_hi + s) = R0 + tail` where `R0 = HI + HI·r_hi`
    /// rounded once (a fused multiply-add) and `tail` gathers its rounding error (exact: `HI − R0` is exact by
    /// Sterbenz) with `HI·s + LO·w`. `R0 + tail` rounded is then the float32 result unless the true value
    /// (within 2⁻³⁴·⁸ of `R0 + tail`: the float32 roundings of the small terms) may lie on the other side of a
    /// rounding midpoint: a lane is unsure when `R0 + tail` plus and minus a margin round apart. Scaling by 2^m
    /// (m = n >> 5) adds to the exponent bits: results stay normal for |x| ≤ 87.
    ///
    /// The registers go in lockstep: each operation on every register before the next, so that their dependency
    /// chains (about 60 cycles each) overlap in the core's window.
    #[inline(always)]
    unsafe fn exp16n<const N: usize>(x: [__m512; N]) -> ([__m512; N], [__mmask16; N]) {
        let ln2_32 = std::f64::consts::LN_2 / 32.0;
        let (l_hi, l_lo) = (ln2_32 as f32, (ln2_32 - f64::from(ln2_32 as f32)) as f32);
        let hi = (
            _mm512_loadu_ps(TAB32_HI.as_ptr()),
            _mm512_loadu_ps(TAB32_HI.as_ptr().add(16)),
        );
        let lo = (
            _mm512_loadu_ps(TAB32_LO.as_ptr()),
            _mm512_loadu_ps(TAB32_LO.as_ptr().add(16)),
        );
        // Ordered compare: NaN lanes are out of range.
        let in_range: [__mmask16; N] = each!(N, |i| _mm512_cmp_ps_mask::<_CMP_LE_OQ>(
            _mm512_abs_ps(x[i]),
            set32(87.0)
        ));
        // n = round(x · 32/ln2) through 1.5·2²³, whose low bits then hold n (two's complement).
        let magic = 12_582_912.0;
        let t: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(
            x[i],
            set32((32.0 / std::f64::consts::LN_2) as f32),
            set32(magic),
        ));
        let n: [__m512; N] = each!(N, |i| _mm512_sub_ps(t[i], set32(magic)));
        let ti: [__m512i; N] = each!(N, |i| _mm512_castps_si512(t[i]));
        // permutex2var reads the low 5 bits of each index: j = n & 31.
        let t_hi: [__m512; N] = each!(N, |i| _mm512_permutex2var_ps(hi.0, ti[i], hi.1));
        let t_lo: [__m512; N] = each!(N, |i| _mm512_permutex2var_ps(lo.0, ti[i], lo.1));
        let r_hi: [__m512; N] = each!(N, |i| _mm512_fnmadd_ps(n[i], set32(l_hi), x[i]));
        let r_lo: [__m512; N] = each!(N, |i| _mm512_mul_ps(n[i], set32(-l_lo)));
        let r2: [__m512; N] = each!(N, |i| _mm512_mul_ps(r_hi[i], r_hi[i]));
        let p: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(
            r_hi[i],
            _mm512_fmadd_ps(r_hi[i], set32(1.0 / 24.0), set32(1.0 / 6.0)),
            set32(0.5),
        ));
        let q: [__m512; N] = each!(N, |i| _mm512_mul_ps(r2[i], p[i]));
        // w = exp(r_hi) to float32 precision, the factor of r_lo (and of LO).
        let w: [__m512; N] = each!(N, |i| _mm512_add_ps(
            _mm512_add_ps(set32(1.0), r_hi[i]),
            q[i]
        ));
        let s: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(r_lo[i], w[i], q[i]));
        let r0: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(t_hi[i], r_hi[i], t_hi[i]));
        let e0: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(
            t_hi[i],
            r_hi[i],
            _mm512_sub_ps(t_hi[i], r0[i])
        ));
        let tail: [__m512; N] = each!(N, |i| _mm512_fmadd_ps(
            t_hi[i],
            s[i],
            _mm512_fmadd_ps(t_lo[i], w[i], e0[i])
        ));
        // The true value is within 2⁻³⁴·⁸ of R0 + tail: s carries four roundings of quantities below 2⁻¹³ (2⁻³⁸
        // each at most) and is multiplied by HI < 2, tail's own rounding is 2⁻³⁷, the polynomial's truncation
        // 2⁻³⁸·⁵. Rounding is monotonic, so if R0 + tail ± 2⁻³⁴ round to the same float (tail ± 2⁻³⁴ lose at
        // most 2⁻³⁷ more, as |tail| < 2⁻¹²), so does the true value.
        let margin = set32(2f32.powi(-34));
        let up: [__m512; N] = each!(N, |i| _mm512_add_ps(r0[i], _mm512_add_ps(tail[i], margin)));
        let down: [__m512; N] = each!(N, |i| _mm512_add_ps(r0[i], _mm512_sub_ps(tail[i], margin)));
        // 2^m: (n >> 5) << 23 is (n & !31) << 18, and the low 22 bits of t are n's.
        let e: [__m512; N] = each!(N, |i| _mm512_castsi512_ps(_mm512_add_epi32(
            _mm512_castps_si512(up[i]),
            _mm512_slli_epi32::<18>(_mm512_andnot_si512(_mm512_set1_epi32(31), ti[i])),
        )));
        let unsure: [__mmask16; N] =
            each!(N, |i| _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(up[i], down[i])
                | !in_range[i]);
        (e, unsure)
    }

    /// The table step of [`super::exp_parts`] on 8 doubles: `n = round(x·16/ln2)` through `ROUND_MAGIC` (the low bits
    /// of `t = x·16/ln2 + ROUND_MAGIC` are then n's, ROUND_MAGIC's being zero) and, for j = n & 15, `2^(j/16)` and
    /// `2^(j/16) − 1` (permutex2var reads the low 4 bits of each index, picking from the two halves of the table).
    /// Returns `(t's bits, n, 2^(j/16), 2^(j/16) − 1)`.
    #[inline(always)]
    unsafe fn table_step(x: __m512d) -> (__m512i, __m512d, __m512d, __m512d) {
        let tab: [f64; 16] = std::array::from_fn(|j| TABLE[j].0);
        let tabm1: [f64; 16] = std::array::from_fn(|j| TABLE[j].1);
        let t = _mm512_fmadd_pd(x, set(INV_L), set(ROUND_MAGIC));
        let n = _mm512_sub_pd(t, set(ROUND_MAGIC));
        let ti = _mm512_castpd_si512(t);
        let lookup = |tab: &[f64; 16]| {
            _mm512_permutex2var_pd(
                _mm512_loadu_pd(tab.as_ptr()),
                ti,
                _mm512_loadu_pd(tab.as_ptr().add(8)),
            )
        };
        (ti, n, lookup(&tab), lookup(&tabm1))
    }

    /// [`super::exp_parts`] on 8 doubles, in fewer operations: fused multiply-adds (each rounded once, so the
    /// doubles differ from the scalar code's in the last bits; the float32 results do not, see the module docs),
    /// the table index read from the low bits of `n + ROUND_MAGIC` as they are, and `m / 16` (for
    /// `_mm512_scalef_pd`, which multiplies by 2^floor of it, exactly) in place of the bits of `2^m`.
    /// Returns `(n / 16, 2^(j/16), 2^(j/16) − 1, expm1(r))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp_parts(x: __m512d) -> (__m512d, __m512d, __m512d, __m512d) {
        let (_, n, tj, tm1) = table_step(x);
        // n * L_HI is exact, so the first step is exact; the second rounds once.
        let r = _mm512_fnmadd_pd(n, set(L_LO), _mm512_fnmadd_pd(n, set(L_HI), x));
        let r2 = _mm512_mul_pd(r, r);
        let q0 = _mm512_fmadd_pd(r, set(C[1]), set(C[0]));
        let q1 = _mm512_fmadd_pd(r, set(C[3]), set(C[2]));
        let q2 = _mm512_fmadd_pd(r, set(C[5]), set(C[4]));
        let p = _mm512_fmadd_pd(r2, _mm512_fmadd_pd(r2, q2, q1), q0);
        let em1 = _mm512_fmadd_pd(r2, p, r);
        (_mm512_mul_pd(n, set(1.0 / 16.0)), tj, tm1, em1)
    }

    /// [`exp16n`] on 16 floats in memory, for the tests: writes the results, returns the unsure lanes.
    #[cfg(test)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp16_lanes(x: &[f32], out: &mut [f32; 16]) -> u16 {
        let ([e], [unsure]) = exp16n([_mm512_loadu_ps(x[..16].as_ptr())]);
        _mm512_storeu_ps(out.as_mut_ptr(), e);
        unsure
    }

    /// `exp` of 8 floats already clamped to ±150 (in float32, 16 at a time, by the caller).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let (m16, tj, _, em1) = exp_parts(_mm512_cvtps_pd(x));
        _mm512_cvtpd_ps(_mm512_scalef_pd(_mm512_fmadd_pd(tj, em1, tj), m16))
    }

    /// `tanh` of 8 floats already made `min(|x|, 20)` (in float32, by the caller).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tanh8(ax: __m256) -> __m256 {
        let ax = _mm512_cvtps_pd(ax);
        let (m16, tj, tm1, em1) = exp_parts(_mm512_add_pd(ax, ax));
        // expm1(2|x|) = 2^m (T - 1 + T expm1(r)) + (2^m - 1), as the scalar code (the products by 2^m are exact).
        let e = _mm512_add_pd(
            _mm512_scalef_pd(_mm512_fmadd_pd(tj, em1, tm1), m16),
            _mm512_sub_pd(_mm512_scalef_pd(set(1.0), m16), set(1.0)),
        );
        _mm512_cvtpd_ps(_mm512_div_pd(e, _mm512_add_pd(e, set(2.0))))
    }

    /// [`tanh8`] on `M` registers of 8 doubles (|x|, made double) in lockstep (as [`exp16n`]), in fewer operations,
    /// for the lanes it can vouch for: a degree-6 polynomial (truncation 2⁻⁵⁰ in
    /// place of 2⁻⁵⁹: below 2⁻⁴⁴ relative to `expm1(2|x|)` ≥ |r|, or ≥ 2⁻⁵·⁵ when n ≠ 0; degree 5 was not enough
    /// there), one-step range reduction, 2^m from the exponent bits. The relative error of the quotient stays below
    /// 2⁻⁴², a thousand units in the last place of the double, so the float32 rounding is certain unless the double
    /// lies within 2¹³ units of a float32 midpoint (one value in 30 000); those lanes come back in the mask, for
    /// [`tanh8`]. (Subnormal inputs: the quotient is the input to far better than a float32 ulp.)
    #[inline(always)]
    unsafe fn tanh8n<const M: usize>(x: [__m512d; M]) -> ([__m256; M], [__mmask8; M]) {
        let y: [__m512d; M] = each!(M, |i| _mm512_add_pd(x[i], x[i]));
        // (t's bits, n, 2^(j/16), 2^(j/16) − 1) of each register.
        let steps: [(__m512i, __m512d, __m512d, __m512d); M] = each!(M, |i| table_step(y[i]));
        let (ti, n, tj, tm1): ([__m512i; M], [__m512d; M], [__m512d; M], [__m512d; M]) = (
            each!(M, |i| steps[i].0),
            each!(M, |i| steps[i].1),
            each!(M, |i| steps[i].2),
            each!(M, |i| steps[i].3),
        );
        // One step: ln2/16 rounded to double is off by under 2⁻⁵⁸, times |n| ≤ 924 (|x| ≤ 20).
        let r: [__m512d; M] = each!(M, |i| _mm512_fnmadd_pd(n[i], set(L_HI + L_LO), y[i]));
        let r2: [__m512d; M] = each!(M, |i| _mm512_mul_pd(r[i], r[i]));
        let p: [__m512d; M] = each!(M, |i| _mm512_fmadd_pd(
            r2[i],
            _mm512_fmadd_pd(
                r2[i],
                set(C[4]),
                _mm512_fmadd_pd(r[i], set(C[3]), set(C[2]))
            ),
            _mm512_fmadd_pd(r[i], set(C[1]), set(C[0])),
        ));
        let em1: [__m512d; M] = each!(M, |i| _mm512_fmadd_pd(r2[i], p[i], r[i]));
        // 2^m: (n >> 4) << 52 is (n & !15) << 48 (the low 48 bits of t are n's), plus the exponent bias.
        let scale: [__m512d; M] = each!(M, |i| _mm512_castsi512_pd(_mm512_add_epi64(
            _mm512_slli_epi64::<48>(_mm512_andnot_si512(_mm512_set1_epi64(15), ti[i])),
            _mm512_set1_epi64(1023 << 52),
        )));
        let e: [__m512d; M] = each!(M, |i| _mm512_fmadd_pd(
            scale[i],
            _mm512_fmadd_pd(tj[i], em1[i], tm1[i]),
            _mm512_sub_pd(scale[i], set(1.0)),
        ));
        let q: [__m512d; M] = each!(M, |i| _mm512_div_pd(e[i], _mm512_add_pd(e[i], set(2.0))));
        // The 29 bits below float32's last place: unsure when within 2¹³ of the midpoint 2²⁸.
        let unsure: [__mmask8; M] = each!(M, |i| _mm512_cmplt_epu64_mask(
            _mm512_and_si512(
                _mm512_add_epi64(
                    _mm512_castpd_si512(q[i]),
                    _mm512_set1_epi64((1 << 13) - (1 << 28)),
                ),
                _mm512_set1_epi64((1 << 29) - 1),
            ),
            _mm512_set1_epi64(1 << 14),
        ));
        (each!(M, |i| _mm512_cvtpd_ps(q[i])), unsure)
    }

    /// [`tanh16`] on `N` registers in lockstep (`M = 2N` registers of doubles): [`tanh8n`] on the halves, and
    /// [`tanh8`] on both halves of a register where either is unsure; copysign puts the sign back.
    #[inline(always)]
    unsafe fn tanh16n<const N: usize, const M: usize>(x: [__m512; N]) -> [__m512; N] {
        const { assert!(M == 2 * N) };
        let sign = _mm512_set1_epi32(i32::MIN);
        let ax: [__m512; N] = each!(N, |i| _mm512_min_ps(
            _mm512_abs_ps(x[i]),
            _mm512_set1_ps(20.0)
        ));
        let (t, unsure) = tanh8n::<M>(each!(M, |k| _mm512_cvtps_pd(if k % 2 == 0 {
            _mm512_castps512_ps256(ax[k / 2])
        } else {
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(ax[k / 2])))
        })));
        each!(N, |i| {
            let t = if unsure[2 * i] | unsure[2 * i + 1] == 0 {
                join(t[2 * i], t[2 * i + 1])
            } else {
                halves(ax[i], tanh8)
            };
            keep_nan(
                x[i],
                _mm512_castsi512_ps(_mm512_or_si512(
                    _mm512_andnot_si512(sign, _mm512_castps_si512(t)),
                    _mm512_and_si512(sign, _mm512_castps_si512(x[i])),
                )),
            )
        })
    }

    /// `f8` on the two halves of 16 floats (8 doubles each).
    #[inline(always)]
    unsafe fn halves(x: __m512, f8: unsafe fn(__m256) -> __m256) -> __m512 {
        join(
            f8(_mm512_castps512_ps256(x)),
            f8(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(x),
            ))),
        )
    }

    /// Two halves back into 16 floats.
    #[inline(always)]
    unsafe fn join(lo: __m256, hi: __m256) -> __m512 {
        _mm512_castpd_ps(_mm512_insertf64x4::<1>(
            _mm512_castps_pd(_mm512_castps256_ps512(lo)),
            _mm256_castps_pd(hi),
        ))
    }

    /// `y` with the lanes where `x` is NaN taken from `x` (the clamps would have turned them into numbers).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn keep_nan(x: __m512, y: __m512) -> __m512 {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), y, x)
    }

    /// `exp(clamp(x, -150, hi))` of `N` registers of 16 floats in lockstep: [`exp16n`], and for a register where
    /// it is unsure [`exp8`] on both halves (which needs x ≥ -150; the scalar code clamps there too: exp's float32
    /// result is 0 from -104 down). NaN lanes come out as numbers (the clamps): callers put them back with
    /// [`keep_nan`].
    #[inline(always)]
    unsafe fn exp16_clamped<const N: usize>(x: [__m512; N], hi: f32) -> [__m512; N] {
        let xc: [__m512; N] = each!(N, |i| _mm512_max_ps(
            _mm512_min_ps(x[i], _mm512_set1_ps(hi)),
            _mm512_set1_ps(-150.0)
        ));
        let (e, unsure) = exp16n(xc);
        each!(N, |i| if unsure[i] == 0 {
            e[i]
        } else {
            halves(xc[i], exp8)
        })
    }

    /// `exp` of 16 floats, as [`super::exp32`] (which clamps at ±150: float32 to double is exact).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp16_full(x: __m512) -> __m512 {
        keep_nan(x, exp16_clamped([x], 150.0)[0])
    }

    /// `tanh` of 16 floats, as [`super::tanh32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tanh16(x: __m512) -> __m512 {
        tanh16n::<1, 2>([x])[0]
    }

    /// The sigmoid of 16 floats, as [`super::sigmoid32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn sigmoid16(x: __m512) -> __m512 {
        sigmoid16n([x])[0]
    }

    /// [`sigmoid16`] on `N` registers in lockstep: `e = exp(min(x, 16.635532))`, then `e / (1 + e)` in float32,
    /// as the scalar [`super::sigmoid32`].
    #[inline(always)]
    unsafe fn sigmoid16n<const N: usize>(x: [__m512; N]) -> [__m512; N] {
        let e = exp16_clamped(x, 16.635_532);
        each!(N, |i| keep_nan(
            x[i],
            _mm512_div_ps(e[i], _mm512_add_ps(_mm512_set1_ps(1.0), e[i]))
        ))
    }

    /// Applies `f16` to the slice 16 floats at a time and `scalar` to the tail.
    #[inline(always)]
    unsafe fn map_slice(v: &mut [f32], f16: impl Fn(__m512) -> __m512, scalar: fn(f32) -> f32) {
        let mut chunks = v.chunks_exact_mut(16);
        for c in &mut chunks {
            _mm512_storeu_ps(c.as_mut_ptr(), f16(_mm512_loadu_ps(c.as_ptr())));
        }
        chunks
            .into_remainder()
            .iter_mut()
            .for_each(|x| *x = scalar(*x));
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_slice(v: &mut [f32]) {
        map_slice(v, |x| exp16_full(x), super::exp32)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tanh_slice(v: &mut [f32]) {
        map_slice(v, |x| tanh16(x), super::tanh32)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sigmoid_slice(v: &mut [f32]) {
        map_slice(v, |x| sigmoid16(x), super::sigmoid32)
    }

    /// [`super::lstm_row`] 16 units at a time; the caller checked the lengths.
    ///
    /// Three passes over the row, each with independent iterations: `g = tanh`, then the sigmoid gates with
    /// `c`, then `h = tanh(c)·o`, and the activations of an iteration in lockstep ([`sigmoid16n`], [`tanh16n`]).
    /// One pass with everything per 16 units was 11% slower: an iteration's chain (sigmoid, c, tanh(c)) is about
    /// 200 cycles of latency in some 250 instructions, more than the core's window overlaps.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lstm_row(
        z: &mut [f32],
        bias: Option<&[f32]>,
        c_prev: &[f32],
        c_next: &mut [f32],
        h_next: &mut [f32],
    ) {
        let u = c_prev.len();
        let full = u - u % 16;
        let pairs = full - full % 32;
        let zp = z.as_mut_ptr();
        let gate = |k: usize, j: usize| {
            let at = k * u + j;
            let x = _mm512_loadu_ps(zp.add(at));
            match bias {
                Some(b) => _mm512_add_ps(x, _mm512_loadu_ps(b.as_ptr().add(at))),
                None => x,
            }
        };
        for j in (0..pairs).step_by(32) {
            let g = tanh16n::<2, 4>([gate(2, j), gate(2, j + 16)]);
            _mm512_storeu_ps(zp.add(2 * u + j), g[0]);
            _mm512_storeu_ps(zp.add(2 * u + j + 16), g[1]);
        }
        for j in (pairs..full).step_by(16) {
            _mm512_storeu_ps(zp.add(2 * u + j), tanh16(gate(2, j)));
        }
        for j in (0..full).step_by(16) {
            let [i, f, o] = sigmoid16n([gate(0, j), gate(1, j), gate(3, j)]);
            for (k, v) in [(0, i), (1, f), (3, o)] {
                _mm512_storeu_ps(zp.add(k * u + j), v);
            }
            // c = f·c' + i·g, each product rounded (as the separate passes); h = tanh(c)·o in the next pass.
            let g = _mm512_loadu_ps(zp.add(2 * u + j));
            let c = _mm512_add_ps(
                _mm512_mul_ps(f, _mm512_loadu_ps(c_prev.as_ptr().add(j))),
                _mm512_mul_ps(i, g),
            );
            _mm512_storeu_ps(c_next.as_mut_ptr().add(j), c);
        }
        let cp = c_next.as_ptr();
        let hp = h_next.as_mut_ptr();
        for j in (0..pairs).step_by(32) {
            let t = tanh16n::<2, 4>([_mm512_loadu_ps(cp.add(j)), _mm512_loadu_ps(cp.add(j + 16))]);
            for (k, t) in t.into_iter().enumerate() {
                let at = j + 16 * k;
                _mm512_storeu_ps(
                    hp.add(at),
                    _mm512_mul_ps(t, _mm512_loadu_ps(zp.add(3 * u + at))),
                );
            }
        }
        for j in (pairs..full).step_by(16) {
            let t = tanh16(_mm512_loadu_ps(cp.add(j)));
            _mm512_storeu_ps(
                hp.add(j),
                _mm512_mul_ps(t, _mm512_loadu_ps(zp.add(3 * u + j))),
            );
        }
        super::lstm_row_scalar(z, bias, c_prev, c_next, h_next, full);
    }
}

/// The same three functions on 16 floats at a time with AVX2 and FMA intrinsics, in the AVX-512 code's way:
/// `exp` (and so the sigmoid) in float32 arithmetic that proves its rounding lane by lane (`exp8n`), tanh
/// in double precision with a check of its rounding; the few lanes either cannot vouch for are computed by the
/// scalar code. The float32 results are those of the scalar functions (the exhaustive test checks every input). On
/// an AVX2-only Zen 1 this took the exp from 3.8 to 2.5 ns a value, the sigmoid from 4.3 to 3.0 and tanh from
/// 6.0 to 4.2 (the earlier code: the scalar code's double-precision operations, four doubles to a register).
/// Each operation is applied to every register of an iteration before the next (the arrays below), so their
/// dependency chains overlap.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{C, INV_L, L_HI, L_LO, ROUND_MAGIC, TABLE};
    use std::arch::x86_64::*;

    /// 8-float registers per iteration.
    const G: usize = 2;
    /// 4-double registers (independent chains) per iteration.
    const N: usize = 2 * G;
    type F = [__m256; G];
    type D = [__m256d; N];

    #[inline(always)]
    unsafe fn set(v: f64) -> __m256d {
        _mm256_set1_pd(v)
    }

    /// `2^(j/16)` for j = 0..16, for tanh's gathers.
    static TAB: [f64; 16] = {
        let mut t = [0.0; 16];
        let mut j = 0;
        while j < 16 {
            t[j] = TABLE[j].0;
            j += 1;
        }
        t
    };

    /// One operation on every register of an iteration: `each!(|i| op(x[i], ...))` is `[op(x[0], ...), ...]`
    /// (the length from the result's type). A loop, not `array::from_fn`: a closure inherits no target features
    /// from an `#[inline(always)]` function, and its intrinsics would be called instead of inlined.
    macro_rules! each {
        (|$i:ident| $e:expr) => {{
            let mut out = [std::mem::zeroed(); _];
            for $i in 0..out.len() {
                out[$i] = $e;
            }
            out
        }};
    }

    /// The float32 registers as doubles, low half first.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn widen(x: F) -> D {
        each!(|i| _mm256_cvtps_pd(if i % 2 == 0 {
            _mm256_castps256_ps128(x[i / 2])
        } else {
            _mm256_extractf128_ps::<1>(x[i / 2])
        }))
    }

    /// The doubles rounded back to float32 registers.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn narrow(y: D) -> F {
        each!(|g| _mm256_insertf128_ps::<1>(
            _mm256_castps128_ps256(_mm256_cvtpd_ps(y[2 * g])),
            _mm256_cvtpd_ps(y[2 * g + 1])
        ))
    }

    /// `2^(j/8)` for j = 0..8 as float32 pairs (entries `4j` of the AVX-512 code's 32-entry table): `HI` correctly
    /// rounded, `HI + LO` within 2⁻⁴⁷ (relative) of the true power.
    const TAB8_HI: [f32; 8] = {
        let mut t = [0.0; 8];
        let mut j = 0;
        while j < 8 {
            t[j] = super::avx512::TAB32_HI[4 * j];
            j += 1;
        }
        t
    };
    const TAB8_LO: [f32; 8] = {
        let mut t = [0.0; 8];
        let mut j = 0;
        while j < 8 {
            t[j] = super::avx512::TAB32_LO[4 * j];
            j += 1;
        }
        t
    };

    /// `tab[j & 7]` for each lane, `j` in the low bits of `idx`: an in-lane permute of each half of the table
    /// (entries 0..4 and 4..8, repeated in both 128-bit lanes) and a blend on bit 2. Cheaper than a gather or a
    /// cross-lane permute (several micro-ops each on a Zen 1); a 16-entry table (two more permutes and blends)
    /// cost more than the fewer unsure lanes saved.
    #[inline(always)]
    unsafe fn lookup8(tab: &[f32; 8], idx: __m256i) -> __m256 {
        let a = _mm256_setr_ps(
            tab[0], tab[1], tab[2], tab[3], tab[0], tab[1], tab[2], tab[3],
        );
        let b = _mm256_setr_ps(
            tab[4], tab[5], tab[6], tab[7], tab[4], tab[5], tab[6], tab[7],
        );
        // blendv reads the sign bit: bit 2 of the index moved there.
        let upper = _mm256_castsi256_ps(_mm256_slli_epi32::<29>(idx));
        _mm256_blendv_ps(
            _mm256_permutevar_ps(a, idx),
            _mm256_permutevar_ps(b, idx),
            upper,
        )
    }

    /// `exp` of [`G`] registers of 8 floats in float32 arithmetic with fused multiply-adds, for the lanes where it
    /// can prove its rounding (the AVX-512 code's `exp16n` with an 8-entry table, which AVX2 looks up in three
    /// cheap instructions): returns the results and, per register, the bits of the lanes it cannot vouch for
    /// (|x| > 87, NaN, and values lying too near a rounding midpoint), which the caller computes with the scalar
    /// code ([`exp`]). The rest are the correctly rounded results (the same bits as [`super::exp32`]).
    ///
    /// `x = n ln2/8 + r_hi + r_lo` (`r_hi` exact: `ln2/8` rounded to float32 has 27 fraction bits and
    /// |x − n·it| < 2⁻⁴, so the fused product-subtract loses nothing; |r_lo| < 2⁻¹⁸), then
    /// `exp(x) = 2^(n/8) (1 + r_hi + s)` with `s = q + r_lo·w`, `q = r_hi²(1/2 + r_hi/6 + ... + r_hi⁴/720)`,
    /// `w = 1 + r_hi + q` (terms left out: below 2⁻⁴³). With `T = 2^(j/8) = HI + LO`, `T(1 + r_hi + s) = R0 + tail`
    /// where `R0 = HI + HI·r_hi` rounded once and `tail` gathers its rounding error (exact: `HI − R0` is exact by
    /// Sterbenz) with `HI·s + LO·w`. |q| < 2⁻¹⁰ here (|r_hi| ≤ ln2/16), so the float32 roundings of `q`, `s` and
    /// `tail` (each below 2⁻³⁴, `q`'s inputs three more) leave `R0 + tail` within 2⁻³¹ of the true value; a lane is
    /// unsure when `R0 + tail` plus and minus that margin round apart (one lane in 400 over [-87, 87], one in a
    /// hundred for gate pre-activations in [-4, 4]).
    #[inline(always)]
    unsafe fn exp8n(x: F) -> (F, [i32; G]) {
        let set = _mm256_set1_ps;
        let ln2_8 = std::f64::consts::LN_2 / 8.0;
        let (l_hi, l_lo) = (ln2_8 as f32, (ln2_8 - f64::from(ln2_8 as f32)) as f32);
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        // Ordered compare: NaN lanes are out of range.
        let in_range: F =
            each!(|g| _mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_and_ps(x[g], abs), set(87.0)));
        // n = round(x · 8/ln2) through 1.5·2²³, whose low bits then hold n (two's complement).
        let magic = 12_582_912.0;
        let t: F = each!(|g| _mm256_fmadd_ps(
            x[g],
            set((8.0 / std::f64::consts::LN_2) as f32),
            set(magic)
        ));
        let n: F = each!(|g| _mm256_sub_ps(t[g], set(magic)));
        let ti: [__m256i; G] = each!(|g| _mm256_castps_si256(t[g]));
        let t_hi: F = each!(|g| lookup8(&TAB8_HI, ti[g]));
        let t_lo: F = each!(|g| lookup8(&TAB8_LO, ti[g]));
        let r_hi: F = each!(|g| _mm256_fnmadd_ps(n[g], set(l_hi), x[g]));
        let r_lo: F = each!(|g| _mm256_mul_ps(n[g], set(-l_lo)));
        let r2: F = each!(|g| _mm256_mul_ps(r_hi[g], r_hi[g]));
        // 1/2 + r/6 + r²/24 + r³/120 + r⁴/720 in Estrin's order: three multiply-adds deep instead of Horner's five
        // (the chains' latency, not the number of operations, sets the speed).
        let p_lo: F = each!(|g| _mm256_fmadd_ps(r_hi[g], set(1.0 / 6.0), set(0.5)));
        let p_hi: F = each!(|g| _mm256_fmadd_ps(
            r2[g],
            set(1.0 / 720.0),
            _mm256_fmadd_ps(r_hi[g], set(1.0 / 120.0), set(1.0 / 24.0))
        ));
        let p: F = each!(|g| _mm256_fmadd_ps(r2[g], p_hi[g], p_lo[g]));
        let q: F = each!(|g| _mm256_mul_ps(r2[g], p[g]));
        // w = exp(r_hi) to float32 precision, the factor of r_lo (and of LO).
        let w: F = each!(|g| _mm256_add_ps(_mm256_add_ps(set(1.0), r_hi[g]), q[g]));
        let s: F = each!(|g| _mm256_fmadd_ps(r_lo[g], w[g], q[g]));
        let r0: F = each!(|g| _mm256_fmadd_ps(t_hi[g], r_hi[g], t_hi[g]));
        let e0: F = each!(|g| _mm256_fmadd_ps(t_hi[g], r_hi[g], _mm256_sub_ps(t_hi[g], r0[g])));
        let tail: F =
            each!(|g| _mm256_fmadd_ps(t_hi[g], s[g], _mm256_fmadd_ps(t_lo[g], w[g], e0[g])));
        let margin = set(2f32.powi(-31));
        let up: F = each!(|g| _mm256_add_ps(r0[g], _mm256_add_ps(tail[g], margin)));
        let down: F = each!(|g| _mm256_add_ps(r0[g], _mm256_sub_ps(tail[g], margin)));
        // 2^m: (n >> 3) << 23 is (n & !7) << 20, and the low 22 bits of t are n's.
        let e: F = each!(|g| _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_castps_si256(up[g]),
            _mm256_slli_epi32::<20>(_mm256_andnot_si256(_mm256_set1_epi32(7), ti[g])),
        )));
        // Lanes whose bounds round apart, and lanes out of range (`in_range` is all ones where true).
        let unsure: [i32; G] = each!(|g| _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(
            up[g], down[g]
        )) | (!_mm256_movemask_ps(in_range[g]) & 0xff));
        (e, unsure)
    }

    /// `v` with the lanes set in `unsure` (one mask per register) replaced by `f` of the same lanes of `x`: the
    /// few values a quick path cannot vouch for, one at a time (recomputing a whole register in double precision
    /// cost more than the quick path saved).
    #[inline(always)]
    unsafe fn fix_lanes(v: F, x: F, unsure: [i32; G], f: fn(f32) -> f32) -> F {
        if unsure.iter().all(|&u| u == 0) {
            return v;
        }
        let (mut vs, mut xs) = ([0.0f32; 8 * G], [0.0f32; 8 * G]);
        for g in 0..G {
            _mm256_storeu_ps(vs.as_mut_ptr().add(8 * g), v[g]);
            _mm256_storeu_ps(xs.as_mut_ptr().add(8 * g), x[g]);
        }
        for (g, &u) in unsure.iter().enumerate() {
            for k in (0..8).filter(|k| u & (1 << k) != 0) {
                vs[8 * g + k] = f(xs[8 * g + k]);
            }
        }
        each!(|g| _mm256_loadu_ps(vs.as_ptr().add(8 * g)))
    }

    /// [`super::exp32`] on [`G`] registers: [`exp8n`], and the scalar code on the lanes it cannot vouch for.
    #[inline(always)]
    unsafe fn exp(x: F) -> F {
        let (e, unsure) = exp8n(x);
        fix_lanes(e, x, unsure, super::exp32)
    }

    /// [`super::sigmoid32`] on [`G`] registers: `e = exp(min(x, 16.635532))`, then `e / (1 + e)` in float32.
    #[inline(always)]
    unsafe fn sigmoid(x: F) -> F {
        let e = exp(each!(|g| _mm256_min_ps(x[g], _mm256_set1_ps(16.635_532))));
        each!(|g| _mm256_div_ps(e[g], _mm256_add_ps(_mm256_set1_ps(1.0), e[g])))
    }

    /// [`super::tanh32`] on [`G`] registers: the AVX-512 code's `tanh8n` (fused multiply-adds, a degree-6
    /// polynomial, one-step range reduction, 2^m from the exponent bits), `2^(j/16) − 1` computed from the table's
    /// `2^(j/16)`; the quotient is within 2⁻⁴² (relative) of the true value, so the float32 rounding is
    /// certain unless the double lies within 2¹³ units of a float32 midpoint (one value in 30 000), and those lanes
    /// are computed by the scalar code.
    #[inline(always)]
    unsafe fn tanh(x: F) -> F {
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let ax: F = each!(|g| _mm256_min_ps(_mm256_and_ps(x[g], abs), _mm256_set1_ps(20.0)));
        let xd = widen(ax);
        let y: D = each!(|i| _mm256_add_pd(xd[i], xd[i]));
        let t: D = each!(|i| _mm256_fmadd_pd(y[i], set(INV_L), set(ROUND_MAGIC)));
        let n: D = each!(|i| _mm256_sub_pd(t[i], set(ROUND_MAGIC)));
        let ti: [__m256i; N] = each!(|i| _mm256_castpd_si256(t[i]));
        // j = n & 15 is in the low bits of t as they are (ROUND_MAGIC's are zero).
        let j: [__m256i; N] = each!(|i| _mm256_and_si256(ti[i], _mm256_set1_epi64x(15)));
        let tj: D = each!(|i| _mm256_i64gather_pd::<8>(TAB.as_ptr(), j[i]));
        // 2^(j/16) − 1 as tj − 1 (exact, Sterbenz): off by tj's rounding, 2⁻⁵³, under 2⁻⁴⁸ of it (j ≥ 1); a
        // second gather cost more (several micro-ops each on a Zen 1).
        let tm1: D = each!(|i| _mm256_sub_pd(tj[i], set(1.0)));
        // One step: ln2/16 rounded to double is off by under 2⁻⁵⁸, times |n| ≤ 924 (|x| ≤ 20).
        let r: D = each!(|i| _mm256_fnmadd_pd(n[i], set(L_HI + L_LO), y[i]));
        let r2: D = each!(|i| _mm256_mul_pd(r[i], r[i]));
        let p: D = each!(|i| _mm256_fmadd_pd(
            r2[i],
            _mm256_fmadd_pd(
                r2[i],
                set(C[4]),
                _mm256_fmadd_pd(r[i], set(C[3]), set(C[2]))
            ),
            _mm256_fmadd_pd(r[i], set(C[1]), set(C[0])),
        ));
        let em1: D = each!(|i| _mm256_fmadd_pd(r2[i], p[i], r[i]));
        // 2^m: (n >> 4) << 52 is (n & !15) << 48 (the low 48 bits of t are n's), plus the exponent bias.
        let scale: D = each!(|i| _mm256_castsi256_pd(_mm256_add_epi64(
            _mm256_slli_epi64::<48>(_mm256_andnot_si256(_mm256_set1_epi64x(15), ti[i])),
            _mm256_set1_epi64x(1023 << 52),
        )));
        let e: D = each!(|i| _mm256_fmadd_pd(
            scale[i],
            _mm256_fmadd_pd(tj[i], em1[i], tm1[i]),
            _mm256_sub_pd(scale[i], set(1.0)),
        ));
        let q: D = each!(|i| _mm256_div_pd(e[i], _mm256_add_pd(e[i], set(2.0))));
        // The 29 bits below float32's last place: unsure when within 2¹³ of the midpoint 2²⁸ (the masked value is
        // below 2²⁹, so a signed compare does).
        let near: [__m256i; N] = each!(|i| _mm256_cmpgt_epi64(
            _mm256_set1_epi64x(1 << 14),
            _mm256_and_si256(
                _mm256_add_epi64(
                    _mm256_castpd_si256(q[i]),
                    _mm256_set1_epi64x((1 << 13) - (1 << 28))
                ),
                _mm256_set1_epi64x((1 << 29) - 1),
            ),
        ));
        // Per float32 register, its lanes' bits (two registers of doubles each).
        let unsure: [i32; G] = each!(|g| _mm256_movemask_pd(_mm256_castsi256_pd(near[2 * g]))
            | (_mm256_movemask_pd(_mm256_castsi256_pd(near[2 * g + 1])) << 4));
        let t = narrow(q);
        // copysign: the magnitude from tanh(|x|), the sign bit from x.
        let sign = _mm256_set1_ps(-0.0);
        let t: F = each!(|g| _mm256_or_ps(_mm256_andnot_ps(sign, t[g]), _mm256_and_ps(sign, x[g])));
        fix_lanes(t, x, unsure, super::tanh32)
    }

    /// [`exp8n`] on 16 floats in memory, for the tests: writes the results, returns the unsure lanes.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp16_lanes(x: &[f32], out: &mut [f32; 16]) -> u16 {
        const { assert!(G == 2) };
        let (e, unsure) = exp8n(each!(|g| _mm256_loadu_ps(x[..16].as_ptr().add(8 * g))));
        for (g, e) in e.into_iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * g), e);
        }
        (unsure[0] | (unsure[1] << 8)) as u16
    }

    /// `y` with the lanes where `x` is NaN taken from `x` (the clamps would have turned them into numbers).
    #[inline(always)]
    unsafe fn keep_nan(x: F, y: F) -> F {
        each!(|g| _mm256_blendv_ps(y[g], x[g], _mm256_cmp_ps::<_CMP_UNORD_Q>(x[g], x[g])))
    }

    /// [`super::lstm_row`] 16 units at a time; the caller checked the lengths. The AVX-512 kernel's three passes
    /// (`g = tanh`, then the sigmoid gates with `c`, then `h = tanh(c)·o`), each iteration's activations on
    /// independent registers, the same operations in the same order as the separate passes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lstm_row(
        z: &mut [f32],
        bias: Option<&[f32]>,
        c_prev: &[f32],
        c_next: &mut [f32],
        h_next: &mut [f32],
    ) {
        const W: usize = 8 * G;
        let u = c_prev.len();
        let full = u - u % W;
        let zp = z.as_mut_ptr();
        let load = |p: *const f32| -> F { each!(|g| _mm256_loadu_ps(p.add(8 * g))) };
        let store = |p: *mut f32, v: F| {
            for (g, v) in v.into_iter().enumerate() {
                _mm256_storeu_ps(p.add(8 * g), v);
            }
        };
        let gate = |k: usize, j: usize| -> F {
            let at = k * u + j;
            let x = load(zp.add(at));
            match bias {
                Some(b) => {
                    let bv = load(b.as_ptr().add(at));
                    each!(|g| _mm256_add_ps(x[g], bv[g]))
                }
                None => x,
            }
        };
        for j in (0..full).step_by(W) {
            let x = gate(2, j);
            store(zp.add(2 * u + j), keep_nan(x, tanh(x)));
        }
        for j in (0..full).step_by(W) {
            let (xi, xf, xo) = (gate(0, j), gate(1, j), gate(3, j));
            let i = keep_nan(xi, sigmoid(xi));
            let f = keep_nan(xf, sigmoid(xf));
            let o = keep_nan(xo, sigmoid(xo));
            for (k, v) in [(0, i), (1, f), (3, o)] {
                store(zp.add(k * u + j), v);
            }
            // c = f·c' + i·g, each product rounded (as the separate passes); h = tanh(c)·o in the next pass.
            let (g, cp) = (load(zp.add(2 * u + j)), load(c_prev.as_ptr().add(j)));
            let c: F =
                each!(|r| _mm256_add_ps(_mm256_mul_ps(f[r], cp[r]), _mm256_mul_ps(i[r], g[r])));
            store(c_next.as_mut_ptr().add(j), c);
        }
        for j in (0..full).step_by(W) {
            let c = load(c_next.as_ptr().add(j));
            let o = load(zp.add(3 * u + j));
            let t = keep_nan(c, tanh(c));
            store(
                h_next.as_mut_ptr().add(j),
                each!(|r| _mm256_mul_ps(t[r], o[r])),
            );
        }
        super::lstm_row_scalar(z, bias, c_prev, c_next, h_next, full);
    }

    /// Applies `f` to the slice [`G`] registers at a time (NaN lanes keep their NaN) and `scalar` to the tail.
    #[inline(always)]
    unsafe fn map_slice(v: &mut [f32], f: impl Fn(F) -> F, scalar: fn(f32) -> f32) {
        let mut chunks = v.chunks_exact_mut(8 * G);
        for c in &mut chunks {
            let x: F = each!(|g| _mm256_loadu_ps(c.as_ptr().add(8 * g)));
            let y = keep_nan(x, f(x));
            for (g, y) in y.into_iter().enumerate() {
                _mm256_storeu_ps(c.as_mut_ptr().add(8 * g), y);
            }
        }
        chunks
            .into_remainder()
            .iter_mut()
            .for_each(|x| *x = scalar(*x));
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_slice(v: &mut [f32]) {
        map_slice(v, |x| exp(x), super::exp32)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tanh_slice(v: &mut [f32]) {
        map_slice(v, |x| tanh(x), super::tanh32)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sigmoid_slice(v: &mut [f32]) {
        map_slice(v, |x| sigmoid(x), super::sigmoid32)
    }
}

/// Whether [`lstm_row`] has a vector kernel on this CPU (AVX-512, or AVX2 with FMA). Without one the separate
/// passes are the faster way: callers ask once per step, then run [`lstm_row`] on every row.
pub(crate) fn has_lstm_row() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            || (std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One row of an LSTM step with Keras' default activations (sigmoid gates, tanh cell), in one call: `z` holds the
/// row's pre-activations `[i f g o]` (each `u = c_prev.len()` long) before the bias, which is added here; leaves
/// the activated gates in `z` and writes `c_next = f·c_prev + i·g`, `h_next = tanh(c_next)·o`. The same operations
/// in the same order as the separate passes (bias add, sigmoid and tanh slices, the state updates), so the same
/// bits; one kernel over a row that stays in L1 saves the slices' calls and keeps the bias add and `c` in
/// registers. 16 units at a time where [`has_lstm_row`], else one at a time (same bits, slower than the separate
/// passes: callers check [`has_lstm_row`] first).
pub(crate) fn lstm_row(
    z: &mut [f32],
    bias: Option<&[f32]>,
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
) {
    let u = c_prev.len();
    assert!(z.len() == 4 * u && c_next.len() == u && h_next.len() == u);
    assert!(bias.is_none_or(|b| b.len() == 4 * u));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above); the lengths are checked above.
            unsafe { avx512::lstm_row(z, bias, c_prev, c_next, h_next) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above); the lengths are checked above.
            unsafe { avx2::lstm_row(z, bias, c_prev, c_next, h_next) };
            return;
        }
    }
    lstm_row_scalar(z, bias, c_prev, c_next, h_next, 0)
}

/// [`lstm_row`] for the units from `from` on, one value at a time.
fn lstm_row_scalar(
    z: &mut [f32],
    bias: Option<&[f32]>,
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
    from: usize,
) {
    let u = c_prev.len();
    for j in from..u {
        let mut gate = |k: usize, f: fn(f32) -> f32| {
            let at = k * u + j;
            let x = bias.map_or(z[at], |b| z[at] + b[at]);
            z[at] = f(x);
            z[at]
        };
        let (i, f, g, o) = (
            gate(0, sigmoid32),
            gate(1, sigmoid32),
            gate(2, tanh32),
            gate(3, sigmoid32),
        );
        c_next[j] = f * c_prev[j] + i * g;
        h_next[j] = tanh32(c_next[j]) * o;
    }
}

macro_rules! slice_kernels {
    ($($name:ident => $f:ident),* $(,)?) => {$(
        /// Applies the function in place to every value of the slice, vectorised for this CPU.
        pub(crate) fn $name(v: &mut [f32]) {
            #[inline(always)]
            fn body(v: &mut [f32]) {
                for x in v.iter_mut() {
                    *x = $f(*x);
                }
            }
            #[cfg(target_arch = "x86_64")]
            {
                // Short rows (the tutorial's 1-unit gates) skip the dispatch; the bits are the same either way.
                if v.len() >= 16 && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512::$name(v) };
                }
                if v.len() >= 8
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2::$name(v) };
                }
            }
            body(v)
        }
    )*};
}

slice_kernels!(exp_slice => exp32, tanh_slice => tanh32, sigmoid_slice => sigmoid32);

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the C library's double-precision function, rounded once.
    fn libm_exp(x: f32) -> f32 {
        f64::from(x).exp() as f32
    }
    fn libm_tanh(x: f32) -> f32 {
        f64::from(x).tanh() as f32
    }

    /// Every 97th float32 bit pattern (about 44 million values, all exponents and both signs): the vectorisable
    /// functions give the libm-based result bit for bit. (All 2³² patterns: `every_float32_input_on_every_path`.)
    #[test]
    fn exp_and_tanh_equal_the_correctly_rounded_libm_results() {
        let mut checked = 0u64;
        for bits in (0..=u32::MAX).step_by(97) {
            let x = f32::from_bits(bits);
            let (e, t) = (exp32(x), tanh32(x));
            if x.is_nan() {
                assert!(e.is_nan() && t.is_nan());
                continue;
            }
            assert_eq!(e.to_bits(), libm_exp(x).to_bits(), "exp({x:e})");
            assert_eq!(t.to_bits(), libm_tanh(x).to_bits(), "tanh({x:e})");
            checked += 1;
        }
        assert!(checked > 40_000_000);
    }

    #[test]
    fn edge_values() {
        assert_eq!(exp32(0.0), 1.0);
        assert_eq!(exp32(-0.0), 1.0);
        assert_eq!(exp32(89.0), f32::INFINITY);
        assert_eq!(exp32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp32(-104.0), 0.0);
        assert_eq!(exp32(f32::NEG_INFINITY), 0.0);
        assert_eq!(tanh32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh32(1e-30), 1e-30);
        assert_eq!(tanh32(f32::INFINITY), 1.0);
        assert_eq!(tanh32(f32::NEG_INFINITY), -1.0);
        assert!(
            tanh32(f32::NAN).is_nan() && exp32(f32::NAN).is_nan() && sigmoid32(f32::NAN).is_nan()
        );
        assert_eq!(sigmoid32(100.0), 1.0);
        assert_eq!(sigmoid32(0.0), 0.5);
    }

    type Kernel = fn(&mut [f32]);

    /// Every vector path this CPU can run, not only the one dispatch picks (an AVX-512 machine also checks the
    /// AVX2 code): `(path, [exp, tanh, sigmoid])`.
    fn paths() -> Vec<(&'static str, [Kernel; 3])> {
        let mut paths: Vec<(&str, [Kernel; 3])> =
            vec![("dispatched", [exp_slice, tanh_slice, sigmoid_slice])];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY (each wrapper): the CPU supports the instruction set (checked just above).
                paths.push((
                    "avx2",
                    [
                        |v| unsafe { avx2::exp_slice(v) },
                        |v| unsafe { avx2::tanh_slice(v) },
                        |v| unsafe { avx2::sigmoid_slice(v) },
                    ],
                ));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                paths.push((
                    "avx512",
                    [
                        |v| unsafe { avx512::exp_slice(v) },
                        |v| unsafe { avx512::tanh_slice(v) },
                        |v| unsafe { avx512::sigmoid_slice(v) },
                    ],
                ));
            }
        }
        paths
    }

    /// The three slice kernels, on every vector path, give the scalar functions' bits on `src`.
    fn check_slices(src: &[f32]) {
        for (path, kernels) in paths() {
            for (kernel, f) in kernels
                .into_iter()
                .zip([exp32 as fn(f32) -> f32, tanh32, sigmoid32])
            {
                let mut v = src.to_vec();
                kernel(&mut v);
                for (got, &x) in v.iter().zip(src) {
                    assert_eq!(
                        got.to_bits(),
                        f(x).to_bits(),
                        "{path}: x = {x:e}, {} values",
                        src.len()
                    );
                }
            }
        }
    }

    /// All 2³² float32 bit patterns through every vector path this CPU has, against the libm-based results (exp,
    /// tanh) and the scalar sigmoid. Far too slow for a debug build, so not part of the test command; run it in
    /// release mode after changing this module: `cargo test --release -p rnnlab --lib every_float32 -- --ignored`
    /// (75 s on 2 cores of an Intel Xeon with AVX-512, AVX2 and AVX-512 paths: no difference; the AVX2 path alone
    /// also on an AVX2-only Zen 3).
    #[test]
    #[ignore = "exhaustive: all 2^32 inputs; run in release mode after changing this module"]
    fn every_float32_input_on_every_path() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = (1u64 << 32).div_ceil(threads as u64);
        let mismatches: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|i| {
                    s.spawn(move || {
                        let mut bad = 0u64;
                        let (lo, hi) = (i * per, ((i + 1) * per).min(1 << 32));
                        let mut src = vec![0.0f32; 1 << 16];
                        let (mut v, mut want) = (src.clone(), src.clone());
                        for start in (lo..hi).step_by(1 << 16) {
                            let n = (hi - start).min(1 << 16) as usize;
                            for (k, x) in src[..n].iter_mut().enumerate() {
                                *x = f32::from_bits((start + k as u64) as u32);
                            }
                            let refs: [fn(f32) -> f32; 3] = [libm_exp, libm_tanh, sigmoid32];
                            for (fi, f) in refs.into_iter().enumerate() {
                                want[..n].iter_mut().zip(&src[..n]).for_each(|(w, &x)| *w = f(x));
                                // "dispatched" is one of the others.
                                for (path, kernels) in paths().into_iter().skip(1) {
                                    v[..n].copy_from_slice(&src[..n]);
                                    kernels[fi](&mut v[..n]);
                                    for ((got, want), &x) in v[..n].iter().zip(&want[..n]).zip(&src[..n]) {
                                        if got.to_bits() != want.to_bits()
                                            && !(got.is_nan() && want.is_nan())
                                        {
                                            if bad < 10 {
                                                eprintln!(
                                                    "{path} {fi}: x = {x:e} ({:#x}): {got:e} != {want:e}",
                                                    x.to_bits()
                                                );
                                            }
                                            bad += 1;
                                        }
                                    }
                                }
                            }
                        }
                        bad
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .sum()
        });
        assert_eq!(mismatches, 0);
    }

    /// The float32 table of `2^(j/32)`: `HI` is the float32 nearest, and `HI + LO` is within 2⁻⁴⁷ (relative) of
    /// the double-precision power (itself within 2⁻⁵² of the true one).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn float32_table_pairs_split_the_powers_of_two() {
        for j in 0..32 {
            let want = 2f64.powf(j as f64 / 32.0);
            let (hi, lo) = (avx512::TAB32_HI[j], avx512::TAB32_LO[j]);
            assert_eq!(hi, want as f32, "j = {j}");
            let err = (f64::from(hi) + f64::from(lo) - want).abs() / want;
            assert!(err < 2f64.powi(-47), "j = {j}: relative error {err:e}");
        }
    }

    /// The float32 `exp` of each vector path decides nearly every lane itself (the speed-up depends on it) and
    /// every lane it decides is correctly rounded: every 7919th float32 in [-87, 87] (about 270 000 values). AVX-512
    /// (32-entry table) leaves under one lane in 200 to double precision, AVX2 (8-entry table) under one in 100.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn float32_exp_decides_almost_every_lane_and_rounds_those_correctly() {
        type Lanes = unsafe fn(&[f32], &mut [f32; 16]) -> u16;
        let mut paths: Vec<(&str, Lanes, u64)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            paths.push(("avx512", avx512::exp16_lanes, 200));
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            paths.push(("avx2", avx2::exp16_lanes, 100));
        }
        let xs: Vec<f32> = (0..=u32::MAX)
            .step_by(7919)
            .map(f32::from_bits)
            .filter(|x| x.abs() <= 87.0)
            .collect();
        for (path, lanes, ratio) in paths {
            let (mut unsure, mut checked) = (0, 0);
            for c in xs.chunks_exact(16) {
                let mut got = [0.0f32; 16];
                // SAFETY: the CPU supports the instruction set (checked above); the pointers cover 16 floats.
                let mask = unsafe { lanes(c, &mut got) };
                for (k, (&x, y)) in c.iter().zip(got).enumerate() {
                    if mask & (1 << k) != 0 {
                        unsure += 1;
                    } else {
                        assert_eq!(y.to_bits(), libm_exp(x).to_bits(), "{path}: exp({x:e})");
                        checked += 1;
                    }
                }
            }
            eprintln!("{path}: {unsure} unsure lanes of {}", unsure + checked);
            assert!(checked > 250_000, "{path}: {checked}");
            assert!(
                unsure * ratio < checked,
                "{path}: {unsure} unsure lanes of {}",
                unsure + checked
            );
        }
    }

    /// Every 101st float32 in [2⁻¹⁰, 2] (about 820 000 values), where gate pre-activations live and where the
    /// quick AVX-512 paths are nearest their error bounds (a degree-5 tanh polynomial failed here), through every
    /// vector path, against the libm-based results.
    #[test]
    fn slice_kernels_are_correctly_rounded_on_a_dense_range() {
        let (lo, hi) = (2f32.powi(-10).to_bits(), 2f32.to_bits());
        let src: Vec<f32> = (lo..hi).step_by(101).map(f32::from_bits).collect();
        for (path, [exp, tanh, _]) in paths() {
            for (kernel, reference, name) in [
                (exp, libm_exp as fn(f32) -> f32, "exp"),
                (tanh, libm_tanh, "tanh"),
            ] {
                for sign in [1.0f32, -1.0] {
                    let mut v: Vec<f32> = src.iter().map(|x| sign * x).collect();
                    kernel(&mut v);
                    for (&x, got) in src.iter().zip(&v) {
                        let want = reference(sign * x);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{path} {name}({:e})",
                            sign * x
                        );
                    }
                }
            }
        }
    }

    /// Every row kernel ([`row_paths`]) on `z` and `c_prev`, with and without a bias, gives the bits of the separate
    /// passes (bias add, sigmoid/tanh slices, state updates) as the LSTM step runs them without a row kernel.
    fn assert_row_equals_the_separate_passes(z: &[f32], c_prev: &[f32], bias: &[f32]) {
        let u = c_prev.len();
        for bias in [None, Some(bias)] {
            let mut want = z.to_vec();
            if let Some(b) = bias {
                want.iter_mut().zip(b).for_each(|(z, b)| *z += b);
            }
            sigmoid_slice(&mut want[..2 * u]);
            tanh_slice(&mut want[2 * u..3 * u]);
            sigmoid_slice(&mut want[3 * u..]);
            let (i, rest) = want.split_at(u);
            let (f, rest) = rest.split_at(u);
            let (g, o) = rest.split_at(u);
            let want_c: Vec<f32> = (0..u).map(|j| f[j] * c_prev[j] + i[j] * g[j]).collect();
            let mut want_h = want_c.clone();
            tanh_slice(&mut want_h);
            want_h.iter_mut().zip(o).for_each(|(h, o)| *h *= o);

            for (path, row) in row_paths() {
                let (mut got, mut c, mut h) = (z.to_vec(), vec![0.0; u], vec![0.0; u]);
                row(&mut got, bias, c_prev, &mut c, &mut h);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let case = format!("{path}, u = {u}, bias {}", bias.is_some());
                assert_eq!(bits(&got), bits(&want), "gates, {case}");
                assert_eq!(bits(&c), bits(&want_c), "c, {case}");
                assert_eq!(bits(&h), bits(&want_h), "h, {case}");
            }
        }
    }

    type RowKernel = fn(&mut [f32], Option<&[f32]>, &[f32], &mut [f32], &mut [f32]);

    /// Every LSTM row kernel this CPU can run (the vector kernels with their scalar tails, and the scalar code
    /// over every unit), not only the one [`lstm_row`] dispatches to.
    fn row_paths() -> Vec<(&'static str, RowKernel)> {
        let mut paths: Vec<(&str, RowKernel)> = vec![
            ("dispatched", lstm_row),
            ("scalar", |z, b, cp, cn, h| {
                lstm_row_scalar(z, b, cp, cn, h, 0)
            }),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above); `lstm_row`'s callers' lengths.
                paths.push(("avx2", |z, b, cp, cn, h| unsafe {
                    avx2::lstm_row(z, b, cp, cn, h)
                }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above); `lstm_row`'s callers' lengths.
                paths.push(("avx512", |z, b, cp, cn, h| unsafe {
                    avx512::lstm_row(z, b, cp, cn, h)
                }));
            }
        }
        paths
    }

    /// The LSTM row kernels give the separate passes' bits for every way the vector kernels split a row: a scalar
    /// tail only (5), pairs of 16 units only (32), pairs and a scalar tail (37), pairs and a single 16 (48), all
    /// three (53); on values spread over the gates' range plus a NaN and infinities.
    #[test]
    fn lstm_row_equals_the_separate_passes() {
        for u in [5, 32, 37, 48, 53] {
            let value = |k: usize, scale: f32| ((k * 7919 % 1000) as f32 / 1000.0 - 0.5) * scale;
            let mut z: Vec<f32> = (0..4 * u).map(|k| value(k, 24.0)).collect();
            z[3] = f32::NAN;
            z[u + 5] = f32::INFINITY;
            z[2 * u + 6] = f32::NEG_INFINITY;
            let c_prev: Vec<f32> = (0..u).map(|k| value(k + 11, 4.0)).collect();
            let bias: Vec<f32> = (0..4 * u).map(|k| value(k + 3, 2.0)).collect();
            assert_row_equals_the_separate_passes(&z, &c_prev, &bias);
        }
    }

    /// A row long enough that the vector code's fast paths give up on some registers: the float32 `exp` in the
    /// sigmoids (counted here: one value in a thousand) and tanh's quick path (one in 30 000, about 7 here). The
    /// kernel runs several registers in lockstep; a register that falls back must get its own results back.
    #[test]
    fn lstm_row_equals_the_separate_passes_where_fast_paths_give_up() {
        let u = 100_000 + 53;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |scale: f32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Uniform in [-scale, scale), with every 16th value tiny (tanh and exp near 0 and 1).
            let v = ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale;
            if state.is_multiple_of(16) {
                v * 1e-6
            } else {
                v
            }
        };
        let z: Vec<f32> = (0..4 * u).map(|_| next(12.0)).collect();
        let c_prev: Vec<f32> = (0..u).map(|_| next(6.0)).collect();
        let bias: Vec<f32> = (0..4 * u).map(|_| next(0.5)).collect();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let unsure: u32 = z
                .chunks_exact(16)
                .map(|x| {
                    let mut out = [0.0; 16];
                    // SAFETY: the CPU supports AVX-512F (checked above); chunks are 16 long.
                    let x: Vec<f32> = x.iter().map(|v| v.min(16.635_532)).collect();
                    unsafe { avx512::exp16_lanes(&x, &mut out) }.count_ones()
                })
                .sum();
            assert!(unsure > 100, "only {unsure} unsure exp lanes");
        }
        assert_row_equals_the_separate_passes(&z, &c_prev, &bias);
    }

    #[test]
    fn slice_kernels_equal_the_scalar_functions_on_all_kinds_of_values() {
        // Every 65 537th bit pattern: all exponents, both signs, infinities and NaNs, through the vector code.
        let src: Vec<f32> = (0..=u32::MAX).step_by(65_537).map(f32::from_bits).collect();
        check_slices(&src);
    }

    #[test]
    fn slice_kernels_equal_the_scalar_functions() {
        // Lengths around the vector widths, so both the vector body and the scalar tail run.
        for n in [1, 7, 8, 15, 16, 17, 33, 100] {
            let src: Vec<f32> = (0..n).map(|i| (i as f32 - 40.0) * 0.37).collect();
            check_slices(&src);
        }
    }
}
