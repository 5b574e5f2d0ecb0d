//! Small dense kernels for the time loop. They write into caller-owned buffers and never allocate, so the
//! per-step recurrence allocates nothing (the buffers are made once per call).
//!
//! Every kernel sums each output element in the same order as the naive loop (`out + a[0]*m[0] + a[1]*m[1] + ...`,
//! a multiply then an add, never a fused multiply-add), so the results are bit-identical whichever instruction set
//! runs them: the Keras tutorial's 8 printed digits do not depend on the machine. Speed comes from register
//! blocking (a block of rows shares each loaded row of `m`, so the recurrent kernel is streamed once per block
//! instead of once per batch row) and from wider vectors chosen at run time (AVX-512 / AVX2, with a portable
//! fallback), so one binary runs everywhere.

/// Rows of `a` handled together: each row of `m` loaded from memory is used for this many rows of the output.
const ROWS: usize = 4;
/// Output columns handled together: 4 AVX-512 registers per row, 16 accumulators for a block of 4 rows.
const COLS: usize = 64;

/// `out[r, :width] += a[r, :k] @ m[:k, :width]` with leading dimensions (row strides) `lda`, `ldm`, `ldo`.
///
/// `m` and `out` may start at a column offset of a wider matrix (pass the sub-slice); only `width` columns are
/// read and written.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_acc_body(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    k: usize,
    width: usize,
) {
    let mut r0 = 0;
    while r0 + ROWS <= rows {
        block::<ROWS>(a, lda, m, ldm, out, ldo, r0, k, width);
        r0 += ROWS;
    }
    while r0 < rows {
        block::<1>(a, lda, m, ldm, out, ldo, r0, k, width);
        r0 += 1;
    }
}

/// One block of `R` rows, all columns, in chunks of [`COLS`] kept in local accumulators.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const R: usize>(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    r0: usize,
    k: usize,
    width: usize,
) {
    let mut c0 = 0;
    while c0 + COLS <= width {
        let mut acc = [[0.0f32; COLS]; R];
        for (r, accr) in acc.iter_mut().enumerate() {
            accr.copy_from_slice(&out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + COLS]);
        }
        for j in 0..k {
            let mrow: &[f32; COLS] = m[j * ldm + c0..j * ldm + c0 + COLS]
                .try_into()
                .expect("COLS values");
            for (r, accr) in acc.iter_mut().enumerate() {
                let av = a[(r0 + r) * lda + j];
                for c in 0..COLS {
                    accr[c] += av * mrow[c];
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + COLS].copy_from_slice(accr);
        }
        c0 += COLS;
    }
    if c0 < width {
        // Column tail (fewer than COLS): the plain axpy form, same summation order.
        let w = width - c0;
        for r in 0..R {
            let row = r0 + r;
            let orow = &mut out[row * ldo + c0..row * ldo + c0 + w];
            for j in 0..k {
                let av = a[row * lda + j];
                let mrow = &m[j * ldm + c0..j * ldm + c0 + w];
                for (o, &mv) in orow.iter_mut().zip(mrow) {
                    *o += av * mv;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_acc_avx512(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    k: usize,
    width: usize,
) {
    gemm_acc_body(a, lda, m, ldm, out, ldo, rows, k, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_acc_avx2(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    k: usize,
    width: usize,
) {
    gemm_acc_body(a, lda, m, ldm, out, ldo, rows, k, width)
}

/// Strided `out[r, :width] += a[r, :k] @ m[:k, :width]`, dispatched to the widest vector unit this CPU has.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_acc(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    k: usize,
    width: usize,
) {
    if rows == 0 || width == 0 {
        return;
    }
    // Bounds the unchecked-looking index arithmetic above: every index used is inside these slices.
    assert!(a.len() >= (rows - 1) * lda + k, "a too short");
    assert!(k == 0 || m.len() >= (k - 1) * ldm + width, "m too short");
    assert!(out.len() >= (rows - 1) * ldo + width, "out too short");
    #[cfg(target_arch = "x86_64")]
    {
        // The detection result is cached by std in an atomic, so this costs a load per call.
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { gemm_acc_avx512(a, lda, m, ldm, out, ldo, rows, k, width) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { gemm_acc_avx2(a, lda, m, ldm, out, ldo, rows, k, width) };
        }
    }
    gemm_acc_body(a, lda, m, ldm, out, ldo, rows, k, width)
}

/// `out[b, :] += a[b, :] @ m` for row-major `a: (rows, k)`, `m: (k, n)`, `out: (rows, n)`.
#[inline]
pub(crate) fn matmul_acc(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    debug_assert_eq!(a.len(), rows * k);
    debug_assert_eq!(m.len(), k * n);
    debug_assert_eq!(out.len(), rows * n);
    gemm_acc(a, k, m, n, out, n, rows, k, n)
}

/// The portable kernel without run-time dispatch, for tests that compare it with the dispatched one.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn gemm_acc_portable(
    a: &[f32],
    lda: usize,
    m: &[f32],
    ldm: usize,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    k: usize,
    width: usize,
) {
    gemm_acc_body(a, lda, m, ldm, out, ldo, rows, k, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive axpy loop the kernels must reproduce bit for bit.
    fn naive(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
        for r in 0..rows {
            for j in 0..k {
                for c in 0..n {
                    out[r * n + c] += a[r * k + j] * m[j * n + c];
                }
            }
        }
    }

    #[test]
    fn matmul_acc_matches_a_naive_product() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // (2, 3)
        let m = [1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 1.0, 2.0, 1.0, 0.0]; // (3, 4)
        let mut out = [1.0; 8];
        matmul_acc(&a, &m, &mut out, 2, 3, 4);
        // numpy: np.ones((2,4)) + np.array(a).reshape(2,3) @ np.array(m).reshape(3,4)
        assert_eq!(out, [7.0, 9.0, 6.0, 8.0, 16.0, 18.0, 15.0, 20.0]);
        // A column block (columns 1..3) written into a strided output.
        let mut block = [0.0; 4];
        gemm_acc(&a, 3, &m[1..], 4, &mut block, 2, 2, 3, 2);
        assert_eq!(block, [8.0, 5.0, 17.0, 14.0]);
    }

    #[test]
    fn blocked_kernels_are_bit_identical_to_the_naive_loop() {
        // Sizes that exercise full row blocks, row tails, full column chunks and column tails.
        for &(rows, k, n) in &[(1, 1, 1), (3, 5, 7), (4, 8, 64), (7, 13, 130), (9, 33, 200)] {
            let a: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0)
                .collect();
            let m: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 17.0)
                .collect();
            let init: Vec<f32> = (0..rows * n).map(|i| (i % 11) as f32 * 0.1).collect();
            let mut want = init.clone();
            naive(&a, &m, &mut want, rows, k, n);
            let mut got = init.clone();
            matmul_acc(&a, &m, &mut got, rows, k, n);
            assert_eq!(got, want, "dispatched {rows}x{k}x{n}");
            let mut got = init.clone();
            gemm_acc_portable(&a, k, &m, n, &mut got, n, rows, k, n);
            assert_eq!(got, want, "portable {rows}x{k}x{n}");
        }
    }
}
