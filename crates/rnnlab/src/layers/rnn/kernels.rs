//! Small dense kernels for the time loop. They write into caller-owned buffers and never allocate, so the
//! per-step recurrence allocates nothing (the buffers are made once per call).

/// `out[b, :] += a[b, :] @ m` for row-major `a: (rows, k)`, `m: (k, n)`, `out: (rows, n)`.
///
/// The inner loop is an axpy over a contiguous row of `m`, which the compiler vectorises; at the batch sizes of
/// interactive use (1..64) this beats a packed GEMM that would also allocate its packing buffers.
///
/// On CPUs with AVX-512 a register-blocked kernel does the same arithmetic (one rounded multiply, then one rounded
/// add, `j` ascending, for every output element) with the output block held in registers, so the results are
/// bit-for-bit those of the portable loop, only faster.
#[inline]
pub(crate) fn matmul_acc(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    debug_assert_eq!(a.len(), rows * k);
    debug_assert_eq!(m.len(), k * n);
    debug_assert_eq!(out.len(), rows * n);
    #[cfg(target_arch = "x86_64")]
    {
        if n >= 16 && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present (checked above); the slices have the lengths asserted above.
            unsafe { avx512::matmul_acc(a, m, out, rows, k, n) };
            return;
        }
    }
    matmul_acc_portable(a, m, out, rows, k, n);
}

/// The portable [`matmul_acc`]; also the reference the AVX-512 kernel is tested against.
fn matmul_acc_portable(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    for r in 0..rows {
        let arow = &a[r * k..(r + 1) * k];
        let orow = &mut out[r * n..(r + 1) * n];
        for (j, &av) in arow.iter().enumerate() {
            if av == 0.0 {
                continue;
            }
            let mrow = &m[j * n..(j + 1) * n];
            for (o, &mv) in orow.iter_mut().zip(mrow) {
                *o += av * mv;
            }
        }
    }
}

/// `out[b, :] += a[b, :] @ m[:, col0..col0+width]` where `m` is row-major `(k, n)`: a product with a column block.
#[inline]
pub(crate) fn matmul_acc_cols(
    a: &[f32],
    m: &[f32],
    n: usize,
    col0: usize,
    width: usize,
    out: &mut [f32],
    rows: usize,
    k: usize,
) {
    debug_assert_eq!(a.len(), rows * k);
    debug_assert_eq!(out.len(), rows * width);
    for r in 0..rows {
        let arow = &a[r * k..(r + 1) * k];
        let orow = &mut out[r * width..(r + 1) * width];
        for (j, &av) in arow.iter().enumerate() {
            if av == 0.0 {
                continue;
            }
            let mrow = &m[j * n + col0..j * n + col0 + width];
            for (o, &mv) in orow.iter_mut().zip(mrow) {
                *o += av * mv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Rows per register block: four rows of 32 columns keep 8 accumulators and 2 weight vectors in registers.
    const MR: usize = 4;

    /// `out += a @ m` with `out` blocks of `rows_blk` x 32 (or 16) columns held in registers over the whole `k`
    /// loop. Each element gets `o = o + a[r, j] * m[j, c]` for `j = 0..k` in order, multiply and add rounded
    /// separately (no FMA), exactly as the portable loop computes it.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul_acc(
        a: &[f32],
        m: &[f32],
        out: &mut [f32],
        rows: usize,
        k: usize,
        n: usize,
    ) {
        let mut r0 = 0;
        while r0 < rows {
            let rb = MR.min(rows - r0);
            let mut c0 = 0;
            while c0 + 32 <= n {
                block::<2>(a, m, out, r0, rb, c0, k, n);
                c0 += 32;
            }
            while c0 + 16 <= n {
                block::<1>(a, m, out, r0, rb, c0, k, n);
                c0 += 16;
            }
            // Fewer than 16 columns left: the same arithmetic, one element at a time.
            for r in r0..r0 + rb {
                for c in c0..n {
                    let mut o = out[r * n + c];
                    for j in 0..k {
                        o += a[r * k + j] * m[j * n + c];
                    }
                    out[r * n + c] = o;
                }
            }
            r0 += rb;
        }
    }

    /// One block of `rb <= MR` rows and `V * 16` columns starting at `(r0, c0)`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const V: usize>(
        a: &[f32],
        m: &[f32],
        out: &mut [f32],
        r0: usize,
        rb: usize,
        c0: usize,
        k: usize,
        n: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        let op = out.as_mut_ptr();
        for (r, row) in acc.iter_mut().enumerate().take(rb) {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(op.add((r0 + r) * n + c0 + 16 * v));
            }
        }
        let mp = m.as_ptr();
        let ap = a.as_ptr();
        for j in 0..k {
            let mut w = [_mm512_setzero_ps(); V];
            for (v, x) in w.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(mp.add(j * n + c0 + 16 * v));
            }
            for (r, row) in acc.iter_mut().enumerate().take(rb) {
                let av = _mm512_set1_ps(*ap.add((r0 + r) * k + j));
                for (x, wv) in row.iter_mut().zip(&w) {
                    *x = _mm512_add_ps(*x, _mm512_mul_ps(av, *wv));
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(rb) {
            for (v, x) in row.iter().enumerate() {
                _mm512_storeu_ps(op.add((r0 + r) * n + c0 + 16 * v), *x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_acc_matches_a_naive_product() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // (2, 3)
        let m = [1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 1.0, 2.0, 1.0, 0.0]; // (3, 4)
        let mut out = [1.0; 8];
        matmul_acc(&a, &m, &mut out, 2, 3, 4);
        // numpy: np.ones((2,4)) + np.array(a).reshape(2,3) @ np.array(m).reshape(3,4)
        assert_eq!(out, [7.0, 9.0, 6.0, 8.0, 16.0, 18.0, 15.0, 20.0]);
        let mut block = [0.0; 4];
        // (the block test below uses the portable column kernel)
        matmul_acc_cols(&a, &m, 4, 1, 2, &mut block, 2, 3);
        assert_eq!(block, [8.0, 5.0, 17.0, 14.0]);
    }

    #[test]
    fn the_fast_kernel_is_bit_identical_to_the_portable_loop() {
        // Shapes that exercise 32- and 16-column blocks, the scalar column tail and a partial row block, with
        // values whose products and sums round (so any change of operation order or fusion would show).
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for &(rows, k, n) in &[
            (1, 3, 16),
            (5, 17, 53),
            (32, 128, 512),
            (3, 64, 100),
            (7, 9, 48),
        ] {
            let a: Vec<f32> = (0..rows * k).map(|_| next()).collect();
            let m: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let init: Vec<f32> = (0..rows * n).map(|_| next()).collect();
            let mut fast = init.clone();
            let mut slow = init.clone();
            matmul_acc(&a, &m, &mut fast, rows, k, n);
            matmul_acc_portable(&a, &m, &mut slow, rows, k, n);
            let same = fast
                .iter()
                .zip(&slow)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "rows {rows} k {k} n {n}");
        }
    }
}
