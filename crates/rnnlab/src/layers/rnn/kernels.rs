//! Small dense kernels for the time loop. They write into caller-owned buffers and never allocate, so the
//! per-step recurrence allocates nothing (the buffers are made once per call).

/// `out[b, :] += a[b, :] @ m` for row-major `a: (rows, k)`, `m: (k, n)`, `out: (rows, n)`.
///
/// The inner loop is an axpy over a contiguous row of `m`, which the compiler vectorises; at the batch sizes of
/// interactive use (1..64) this beats a packed GEMM that would also allocate its packing buffers.
#[inline]
pub(crate) fn matmul_acc(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    debug_assert_eq!(a.len(), rows * k);
    debug_assert_eq!(m.len(), k * n);
    debug_assert_eq!(out.len(), rows * n);
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
        matmul_acc_cols(&a, &m, 4, 1, 2, &mut block, 2, 3);
        assert_eq!(block, [8.0, 5.0, 17.0, 14.0]);
    }
}
