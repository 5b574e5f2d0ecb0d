//! Small dense kernels for the time loop. They write into caller-owned buffers and never allocate, so the
//! per-step recurrence allocates nothing (buffers and packed weights are made once per call).
//!
//! Each kernel computes `out += a @ m` in one of two fixed orders of rounding, so its results are bit-identical
//! whichever instruction set runs it and the Keras tutorials' 8 printed digits do not depend on the machine:
//! - **unfused** (the recurrent product `h R`): `out + a[0]*m[0] + a[1]*m[1] + ...`, a multiply then an add, in
//!   the order of the naive loop;
//! - **fused** (the input projection `x K`): exactly what `matrixmultiply` (ndarray's GEMM, which rnnlab used
//!   before) computes on a CPU with FMA: per block of [`KC`] terms a chain of fused multiply-adds from zero,
//!   each block's sum added to `out` once. A CPU without FMA gets the same bits from the correctly rounded
//!   software `mul_add`, only slower.
//!
//! Speed comes from register blocking (a block of rows shares each loaded row of `m`), from packing large weight
//! matrices into contiguous column panels once per call ([`Packed`]), and from wider vectors chosen at run time
//! (AVX-512 intrinsics, AVX2 / portable code the compiler vectorises), so one binary runs everywhere.

/// Rows of `a` handled together: each row of `m` loaded from memory is used for this many rows of the output.
const ROWS: usize = 4;
/// Output columns handled together: 4 AVX-512 registers per row, 16 accumulators for a block of 4 rows.
pub(crate) const COLS: usize = 64;
/// Columns per half of a [`Packed`] panel: each half's `k` rows are stored contiguously (see [`Packed`]).
const HALF: usize = COLS / 2;
/// Terms per fused chain: `matrixmultiply`'s `kc` for float32, whose blocking the fused kernels reproduce.
pub(crate) const KC: usize = 256;

/// `acc + a * m`, rounded once (`FUSED`) or twice.
#[inline(always)]
fn madd<const FUSED: bool>(acc: f32, a: f32, m: f32) -> f32 {
    if FUSED {
        a.mul_add(m, acc)
    } else {
        acc + a * m
    }
}

/// The term blocks of a product with `k` terms: [`KC`]-sized for the fused order, one block otherwise.
#[inline(always)]
fn term_blocks<const FUSED: bool>(k: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = if FUSED { KC } else { k.max(1) };
    (0..k).step_by(step).map(move |j0| j0..(j0 + step).min(k))
}

/// `out[r, :width] += a[r, :k] @ m[:k, :width]` with leading dimensions (row strides) `lda`, `ldm`, `ldo`.
///
/// `m` and `out` may start at a column offset of a wider matrix (pass the sub-slice); only `width` columns are
/// read and written.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_acc_body<const FUSED: bool>(
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
        block::<ROWS, FUSED>(a, lda, m, ldm, out, ldo, r0, k, width);
        r0 += ROWS;
    }
    while r0 < rows {
        block::<1, FUSED>(a, lda, m, ldm, out, ldo, r0, k, width);
        r0 += 1;
    }
}

/// One block of `R` rows, all columns, in chunks of [`COLS`] kept in local accumulators.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const R: usize, const FUSED: bool>(
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
        for js in term_blocks::<FUSED>(k) {
            // Unfused: accumulate onto `out` itself. Fused: a chain from zero, added to `out` at the end.
            let mut acc = [[0.0f32; COLS]; R];
            if !FUSED {
                for (r, accr) in acc.iter_mut().enumerate() {
                    accr.copy_from_slice(&out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + COLS]);
                }
            }
            for j in js {
                let mrow: &[f32; COLS] = m[j * ldm + c0..j * ldm + c0 + COLS]
                    .try_into()
                    .expect("COLS values");
                for (r, accr) in acc.iter_mut().enumerate() {
                    let av = a[(r0 + r) * lda + j];
                    for c in 0..COLS {
                        accr[c] = madd::<FUSED>(accr[c], av, mrow[c]);
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate() {
                let o = &mut out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + COLS];
                if FUSED {
                    o.iter_mut().zip(accr).for_each(|(o, s)| *o += s);
                } else {
                    o.copy_from_slice(accr);
                }
            }
        }
        c0 += COLS;
    }
    if c0 < width {
        // Column tail (fewer than COLS): the plain axpy form, same rounding order.
        let w = width - c0;
        for r in 0..R {
            let row = r0 + r;
            let orow = &mut out[row * ldo + c0..row * ldo + c0 + w];
            for js in term_blocks::<FUSED>(k) {
                let mut acc = [0.0f32; COLS];
                let acc = &mut acc[..w];
                if !FUSED {
                    acc.copy_from_slice(orow);
                }
                for j in js {
                    let av = a[row * lda + j];
                    let mrow = &m[j * ldm + c0..j * ldm + c0 + w];
                    for (o, &mv) in acc.iter_mut().zip(mrow) {
                        *o = madd::<FUSED>(*o, av, mv);
                    }
                }
                if FUSED {
                    orow.iter_mut().zip(acc.iter()).for_each(|(o, s)| *o += s);
                } else {
                    orow.copy_from_slice(acc);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_acc_avx512<const FUSED: bool>(
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
    gemm_acc_body::<FUSED>(a, lda, m, ldm, out, ldo, rows, k, width)
}

/// Strided `out[r, :width] += a[r, :k] @ m[:k, :width]` in the unfused (`FUSED = false`) or fused order,
/// dispatched to the widest vector unit this CPU has.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_acc<const FUSED: bool>(
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
            return unsafe { gemm_acc_avx512::<FUSED>(a, lda, m, ldm, out, ldo, rows, k, width) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2::gemm_acc::<FUSED>(a, lda, m, ldm, out, ldo, rows, k, width) };
        }
    }
    gemm_acc_body::<FUSED>(a, lda, m, ldm, out, ldo, rows, k, width)
}

/// `out[b, :] += a[b, :] @ m` for row-major `a: (rows, k)`, `m: (k, n)`, `out: (rows, n)` (tests' shorthand).
#[cfg(test)]
fn matmul_acc(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    debug_assert_eq!(a.len(), rows * k);
    debug_assert_eq!(m.len(), k * n);
    debug_assert_eq!(out.len(), rows * n);
    gemm_acc::<false>(a, k, m, n, out, n, rows, k, n)
}

/// A matrix `(k, width)` rearranged once per call into panels of [`COLS`] columns, each stored as two halves of
/// [`HALF`] columns whose `k` rows are contiguous (the last panel zero-padded): element `(j, c)` of panel `p` is at
/// `p·k·COLS + (c / HALF)·k·HALF + j·HALF + c % HALF`. The blocked kernel then streams a panel from the cache for
/// every block of rows, instead of reading rows 4 KB apart, which map to the same few cache sets and evict each
/// other; this made the recurrent product of a large LSTM 2-3x faster. The AVX-512 kernel works on one half at a
/// time (32 KB at k = 256), which then fills every set of the L1 cache evenly: with whole 64-column rows, the
/// 128-byte rows of a half panel were 256 bytes apart, used only half of the sets and did not fit. With this
/// layout and the prefetch of the next half panel (see `avx512::strip`) the large LSTM's forward pass went from
/// 122 to 114 ms on an Intel Xeon (AVX-512, 48 KB L1, 2 MB L2).
#[derive(Clone, Debug, Default)]
pub(crate) struct Packed {
    k: usize,
    width: usize,
    /// The panels, in cache lines: 64-byte aligned, so no 64-byte vector load of a panel row straddles two lines.
    /// (A `Vec<f32>` this large comes from `mmap` 16 bytes past a page boundary: every AVX-512 load of the
    /// weights was split in two, which cost a tenth of a large LSTM's time, varying with where the allocator
    /// put them.)
    lines: Vec<Line>,
}

/// A [`Packed`] matrix, or a range of its panels (a product split by columns over threads), as the kernels read
/// it: `k` rows, `width` columns from the first panel of `data`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Panels<'a> {
    k: usize,
    width: usize,
    data: &'a [f32],
}

impl<'a> Panels<'a> {
    fn data(&self) -> &'a [f32] {
        self.data
    }
}

/// One 64-byte cache line of floats.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f32; 16]);

impl Packed {
    /// Packs columns `0..width` of the row-major `m` (row stride `ldm`, `k` rows).
    pub(crate) fn new(m: &[f32], ldm: usize, k: usize, width: usize) -> Packed {
        let mut pk = Packed::default();
        pk.repack(m, ldm, k, width);
        pk
    }

    /// Packs another matrix into this one's storage (no allocation once it is large enough).
    pub(crate) fn repack(&mut self, m: &[f32], ldm: usize, k: usize, width: usize) {
        assert!(k == 0 || m.len() >= (k - 1) * ldm + width, "m too short");
        let panels = width.div_ceil(COLS);
        (self.k, self.width) = (k, width);
        self.lines.clear();
        self.lines.resize(panels * k * COLS / 16, Line([0.0; 16]));
        let data = self.data_mut();
        for c0 in (0..width).step_by(HALF) {
            let w = HALF.min(width - c0);
            // Half panels follow each other: panel p's halves 0 and 1, then panel p + 1's.
            let half = &mut data[c0 * k..(c0 + HALF) * k];
            for (j, row) in half.chunks_exact_mut(HALF).enumerate() {
                row[..w].copy_from_slice(&m[j * ldm + c0..j * ldm + c0 + w]);
            }
        }
    }

    /// All the panels.
    pub(crate) fn panels(&self) -> Panels<'_> {
        Panels {
            k: self.k,
            width: self.width,
            data: self.data(),
        }
    }

    /// How many panels of [`COLS`] columns the matrix has.
    pub(crate) fn panel_count(&self) -> usize {
        self.width.div_ceil(COLS)
    }

    /// Panels `part` (clamped to the matrix), whose first column is column `part.start * COLS` of the matrix.
    fn part(&self, part: std::ops::Range<usize>) -> Panels<'_> {
        let (p0, p1) = (
            part.start.min(self.panel_count()),
            part.end.min(self.panel_count()),
        );
        let (c0, c1) = (p0 * COLS, (p1 * COLS).min(self.width));
        Panels {
            k: self.k,
            width: c1.saturating_sub(c0),
            data: &self.data()[p0 * self.k * COLS..p1.max(p0) * self.k * COLS],
        }
    }

    /// The panels as floats, laid out as the type's docs say.
    fn data(&self) -> &[f32] {
        // SAFETY: `Line` is 16 f32 with no padding (repr(C), 64 bytes), so the lines are contiguous floats.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.lines.len() * 16) }
    }

    fn data_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `data`, and the borrow is unique.
        unsafe {
            std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.lines.len() * 16)
        }
    }

    /// Whether packing a `(k, width)` matrix pays: wide enough to fill a panel, and large enough that its rows'
    /// strided layout costs cache misses.
    pub(crate) fn worthwhile(k: usize, width: usize) -> bool {
        width >= COLS && k * width >= 16 * 1024
    }
}

/// `R` rows times `NP` panels of [`COLS`] columns from a [`Packed`] matrix, all `k` terms, in the portable code
/// (same order of rounding as [`gemm_acc`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block_packed<const R: usize, const NP: usize, const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: Panels<'_>,
    out: &mut [f32],
    ldo: usize,
    r0: usize,
    p0: usize,
    js: std::ops::Range<usize>,
) {
    let k = pk.k;
    let cols = |p: usize| COLS.min(pk.width - (p0 + p) * COLS);
    // Each panel's two halves.
    let halves: [[&[f32]; 2]; NP] = std::array::from_fn(|p| {
        std::array::from_fn(|h| {
            let at = (p0 + p) * k * COLS + h * k * HALF;
            &pk.data()[at..at + k * HALF]
        })
    });
    {
        let mut acc = [[[0.0f32; COLS]; NP]; R];
        if !FUSED {
            for (r, accr) in acc.iter_mut().enumerate() {
                for (p, accp) in accr.iter_mut().enumerate() {
                    let (c0, w) = ((p0 + p) * COLS, cols(p));
                    accp[..w].copy_from_slice(&out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + w]);
                }
            }
        }
        for j in js {
            let mrows: [[&[f32; HALF]; 2]; NP] = std::array::from_fn(|p| {
                std::array::from_fn(|h| {
                    halves[p][h][j * HALF..(j + 1) * HALF]
                        .try_into()
                        .expect("HALF values")
                })
            });
            for (r, accr) in acc.iter_mut().enumerate() {
                let av = a[(r0 + r) * lda + j];
                for (accp, mrow) in accr.iter_mut().zip(&mrows) {
                    for (acch, mh) in accp.chunks_exact_mut(HALF).zip(mrow) {
                        for c in 0..HALF {
                            acch[c] = madd::<FUSED>(acch[c], av, mh[c]);
                        }
                    }
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            for (p, accp) in accr.iter().enumerate() {
                let (c0, w) = ((p0 + p) * COLS, cols(p));
                let o = &mut out[(r0 + r) * ldo + c0..(r0 + r) * ldo + c0 + w];
                if FUSED {
                    o.iter_mut().zip(accp).for_each(|(o, s)| *o += s);
                } else {
                    o.copy_from_slice(&accp[..w]);
                }
            }
        }
    }
}

/// A register block of the packed kernels: rows × panels.
#[derive(Clone, Copy)]
enum Tile {
    /// [`ROWS`] rows, one panel.
    Rows,
    /// One row, four panels (16 accumulators hide the latency of the additions at batch 1).
    Panels4,
    /// One row, one panel.
    One,
}

/// The order both packed kernels (portable and AVX-512) visit a product in: per block of terms (fused order), each
/// panel for every block of [`ROWS`] rows while it is in cache, then the leftover rows four panels at a time.
/// `rev`: the panels from the last to the first (see [`gemm_acc_packed_dir`]). `f(tile, first row, first panel,
/// terms)`.
#[inline(always)]
fn schedule<const FUSED: bool>(
    k: usize,
    rows: usize,
    width: usize,
    rev: bool,
    mut f: impl FnMut(Tile, usize, usize, std::ops::Range<usize>),
) {
    let panels = width.div_ceil(COLS);
    let full = rows - rows % ROWS;
    // The tiles of one leftover row: four panels at a time, then one at a time.
    let fours = panels / 4;
    let row_tiles = (0..fours)
        .map(|i| (Tile::Panels4, 4 * i))
        .chain((4 * fours..panels).map(|p| (Tile::One, p)));
    for js in term_blocks::<FUSED>(k) {
        for i in 0..panels {
            let p = if rev { panels - 1 - i } else { i };
            for r0 in (0..full).step_by(ROWS) {
                f(Tile::Rows, r0, p, js.clone());
            }
        }
        for r in full..rows {
            if rev {
                row_tiles
                    .clone()
                    .rev()
                    .for_each(|(tile, p)| f(tile, r, p, js.clone()));
            } else {
                row_tiles
                    .clone()
                    .for_each(|(tile, p)| f(tile, r, p, js.clone()));
            }
        }
    }
}

#[inline(always)]
fn gemm_acc_packed_body<const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: Panels<'_>,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    rev: bool,
) {
    schedule::<FUSED>(pk.k, rows, pk.width, rev, |tile, r0, p0, js| match tile {
        Tile::Rows => block_packed::<ROWS, 1, FUSED>(a, lda, pk, out, ldo, r0, p0, js),
        Tile::Panels4 => block_packed::<1, 4, FUSED>(a, lda, pk, out, ldo, r0, p0, js),
        Tile::One => block_packed::<1, 1, FUSED>(a, lda, pk, out, ldo, r0, p0, js),
    })
}

/// AVX-512 register blocks over a [`Packed`] matrix, written with intrinsics: the compiler kept the portable
/// version's 64-float accumulator arrays partly on the stack, which halved its speed.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Panels, Tile, COLS, HALF, ROWS};
    use std::arch::x86_64::*;

    /// Vectors of 16 floats per panel.
    const V: usize = COLS / 16;

    /// `R` rows times `NP` panels starting at panel `p0`, terms `j0..j1`, in registers. Unfused: accumulates onto
    /// `out`; fused: a chain of FMAs from zero, added to `out` at the end. Lanes past the matrix width are neither
    /// read from nor written to `out` (masked loads and stores).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const NP: usize, const FUSED: bool>(
        a: &[f32],
        lda: usize,
        pk: Panels<'_>,
        out: &mut [f32],
        ldo: usize,
        r0: usize,
        p0: usize,
        j0: usize,
        j1: usize,
    ) {
        let k = pk.k;
        // Lane masks of the (possibly partial) last panel.
        let masks: [[__mmask16; V]; NP] = std::array::from_fn(|p| {
            let w = COLS.min(pk.width - (p0 + p) * COLS);
            std::array::from_fn(|v| {
                let lanes = w.saturating_sub(16 * v).min(16);
                ((1u32 << lanes) - 1) as __mmask16
            })
        });
        // SAFETY (all pointer arithmetic below): the caller checked `a` holds rows r0..r0+R of `k` values with
        // stride `lda` and `out` rows r0..r0+R of `width` values with stride `ldo`; panels p0..p0+NP exist and
        // hold k * COLS values each; j1 <= k; masked lanes are never touched.
        let ap = a.as_ptr().add(r0 * lda);
        let op = out.as_mut_ptr().add(r0 * ldo);
        let mp: [*const f32; NP] =
            std::array::from_fn(|p| pk.data().as_ptr().add((p0 + p) * k * COLS));
        let out_at = |r: usize, p: usize, v: usize| op.add(r * ldo + (p0 + p) * COLS + 16 * v);
        let mut acc = [[[_mm512_setzero_ps(); V]; NP]; R];
        if !FUSED {
            for r in 0..R {
                for p in 0..NP {
                    for v in 0..V {
                        acc[r][p][v] = _mm512_maskz_loadu_ps(masks[p][v], out_at(r, p, v));
                    }
                }
            }
        }
        for j in j0..j1 {
            let mut m = [[_mm512_setzero_ps(); V]; NP];
            for p in 0..NP {
                for v in 0..V {
                    // Vector v of a panel row: half v / 2, 16 floats in.
                    m[p][v] =
                        _mm512_loadu_ps(mp[p].add((v / 2) * k * HALF + j * HALF + 16 * (v % 2)));
                }
            }
            for r in 0..R {
                let av = _mm512_set1_ps(*ap.add(r * lda + j));
                for p in 0..NP {
                    for v in 0..V {
                        acc[r][p][v] = if FUSED {
                            _mm512_fmadd_ps(av, m[p][v], acc[r][p][v])
                        } else {
                            // A multiply then an add, never fused: the order of the naive loop.
                            _mm512_add_ps(acc[r][p][v], _mm512_mul_ps(av, m[p][v]))
                        };
                    }
                }
            }
        }
        for r in 0..R {
            for p in 0..NP {
                for v in 0..V {
                    let o = out_at(r, p, v);
                    let x = if FUSED {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(masks[p][v], o), acc[r][p][v])
                    } else {
                        acc[r][p][v]
                    };
                    _mm512_mask_storeu_ps(o, masks[p][v], x);
                }
            }
        }
    }

    /// Most rows per register block of [`strip`]: 12 rows × 32 columns = 24 accumulators, which with two loads of
    /// `m` and a broadcast fit AVX-512's 32 registers.
    const BLOCK_ROWS: usize = 12;

    /// `R` rows × `W` vectors of 16 columns of one half panel: `out[r, c] += a[r, j0..j1] @ m[j0..j1, c]` in the
    /// order of `FUSED`. `a[r, j]` is at `ap[r * lda + j]`, or with `TERMS` (`a` given transposed, term-major) at
    /// `ap[j * lda + r]`. `mp` points at the strip's first column in the half panel (row stride [`HALF`],
    /// zero-padded, so its loads need no mask), `op` at the output's (stride `ldo`), where only `lanes` columns
    /// exist: output loads and stores past them are masked off. Unless null, `pf` is the next half panel (same
    /// layout): its rows `j0..j1` are prefetched into L2 as the terms go by, so that the weights, which do not stay
    /// in L2 between time steps (the input and recurrent kernels of a large LSTM are 2 MB), are there when the
    /// next strip starts instead of arriving at the latency of L3. `SET`: `out` is taken as zeros, unread (see
    /// [`gemm_acc_packed`]).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn strip<
        const R: usize,
        const W: usize,
        const FUSED: bool,
        const TERMS: bool,
        const SET: bool,
    >(
        ap: *const f32,
        lda: usize,
        mp: *const f32,
        op: *mut f32,
        ldo: usize,
        lanes: usize,
        j0: usize,
        j1: usize,
        pf: *const f32,
    ) {
        debug_assert!(W * 16 <= HALF);
        let masks: [__mmask16; W] = std::array::from_fn(|v| {
            let n = lanes.saturating_sub(16 * v).min(16);
            ((1u32 << n) - 1) as __mmask16
        });
        // SAFETY (all pointer arithmetic below): the caller passes `ap` at R rows of at least j1 values (stride
        // `lda`; with TERMS: j1 terms of at least R values), `mp` at j1 panel rows holding W * 16 values each,
        // `op` at R rows with `lanes` writable columns.
        let mut acc = [[_mm512_setzero_ps(); W]; R];
        if !FUSED && !SET {
            for (r, accr) in acc.iter_mut().enumerate() {
                for (v, accv) in accr.iter_mut().enumerate() {
                    *accv = _mm512_maskz_loadu_ps(masks[v], op.add(r * ldo + 16 * v));
                }
            }
        }
        for j in j0..j1 {
            if !pf.is_null() {
                // The next half panel's row j: HALF floats, two cache lines.
                _mm_prefetch::<_MM_HINT_T1>(pf.add(j * HALF).cast());
                _mm_prefetch::<_MM_HINT_T1>(pf.add(j * HALF + 16).cast());
            }
            let m: [__m512; W] =
                std::array::from_fn(|v| _mm512_loadu_ps(mp.add(j * HALF + 16 * v)));
            for (r, accr) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(if TERMS { j * lda + r } else { r * lda + j }));
                for (accv, mv) in accr.iter_mut().zip(&m) {
                    *accv = if FUSED {
                        _mm512_fmadd_ps(av, *mv, *accv)
                    } else {
                        // A multiply then an add, never fused: the order of the naive loop.
                        _mm512_add_ps(*accv, _mm512_mul_ps(av, *mv))
                    };
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            for (v, accv) in accr.iter().enumerate() {
                let o = op.add(r * ldo + 16 * v);
                let x = match (FUSED, SET) {
                    (true, false) => _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], o), *accv),
                    // 0 + chain, as onto a zeroed `out` (+0 where the chain is -0).
                    (true, true) => _mm512_add_ps(_mm512_setzero_ps(), *accv),
                    (false, _) => *accv,
                };
                _mm512_mask_storeu_ps(o, masks[v], x);
            }
        }
    }

    /// The product with a [`Packed`](super::Packed) matrix. Four rows or more: per block of terms, per half panel (32 columns:
    /// 128 bytes of `m` per term for 24 multiply-adds), the rows split evenly into blocks of at most
    /// [`BLOCK_ROWS`]. Whole 64-column panels with 4-row blocks read 256 bytes per term for 16 multiply-adds and
    /// held a large LSTM to 55% of the FMA peak on an Intel Xeon (Emerald Rapids); this order reached 95-98% on
    /// its own there. (Packing `a` term-major per row block, with the row block outermost, measured slower.) Two or three rows: [`block`]s of
    /// all the rows and two panels. One row: [`schedule`](super::schedule)'s tiles of [`block`], whose 16
    /// accumulators span four panels. The order of rounding of each output value does not depend on the
    /// blocking, so the bits equal the portable kernel's.
    ///
    /// `SET`: `out[r, :width] = 0 + a[r, :] @ m`, the bits of zeroing those values first, without the pass that
    /// zeroes them where it can: four rows or more take the first block of terms' sums as zeros in [`strip`]
    /// (the memset before a time step's first product was 1% of a medium LSTM).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_acc_packed<const FUSED: bool, const SET: bool>(
        a: &[f32],
        lda: usize,
        pk: Panels<'_>,
        out: &mut [f32],
        ldo: usize,
        rows: usize,
        rev: bool,
    ) {
        let long = rows >= LONG_ROWS && pk.width >= LONG_WIDTH;
        if SET && (rows < 4 || long) {
            super::zero_rows(out, rows, ldo, pk.width);
            return gemm_acc_packed::<FUSED, false>(a, lda, pk, out, ldo, rows, rev);
        }
        if rows == 2 || rows == 3 {
            // All the rows at once per pair of panels (16 or 24 accumulators): one row at a time read every
            // weight once per row, and a step at batch 2 took twice as long as at batch 1.
            let panels = pk.width.div_ceil(COLS);
            let tiles = panels.div_ceil(2);
            for js in super::term_blocks::<FUSED>(pk.k) {
                let (j0, j1) = (js.start, js.end);
                for i in 0..tiles {
                    let p0 = 2 * if rev { tiles - 1 - i } else { i };
                    match (rows, p0 + 2 <= panels) {
                        (2, true) => block::<2, 2, FUSED>(a, lda, pk, out, ldo, 0, p0, j0, j1),
                        (2, false) => block::<2, 1, FUSED>(a, lda, pk, out, ldo, 0, p0, j0, j1),
                        (_, true) => block::<3, 2, FUSED>(a, lda, pk, out, ldo, 0, p0, j0, j1),
                        (_, false) => block::<3, 1, FUSED>(a, lda, pk, out, ldo, 0, p0, j0, j1),
                    }
                }
            }
            return;
        }
        if rows < 4 {
            super::schedule::<FUSED>(pk.k, rows, pk.width, rev, |tile, r0, p0, js| {
                let (j0, j1) = (js.start, js.end);
                match tile {
                    Tile::Rows => block::<ROWS, 1, FUSED>(a, lda, pk, out, ldo, r0, p0, j0, j1),
                    Tile::Panels4 => block::<1, 4, FUSED>(a, lda, pk, out, ldo, r0, p0, j0, j1),
                    Tile::One => block::<1, 1, FUSED>(a, lda, pk, out, ldo, r0, p0, j0, j1),
                }
            });
            return;
        }
        if long {
            // (Long products run once per training step, in one direction.)
            return gemm_acc_packed_long::<FUSED>(a, lda, pk, out, ldo, rows);
        }
        let (ap, op) = (a.as_ptr(), out.as_mut_ptr());
        for (i, js) in super::term_blocks::<FUSED>(pk.k).enumerate() {
            // SAFETY: the dispatcher checked `a` and `out` cover `rows` rows of `k` and `width` values.
            let at = |r0, _| (r0 * lda, lda);
            if SET && i == 0 {
                half_panels::<FUSED, false, true>(ap, at, pk, 0, op, ldo, rows, js, rev);
            } else {
                half_panels::<FUSED, false, false>(ap, at, pk, 0, op, ldo, rows, js, rev);
            }
        }
    }

    /// One block of terms `js` of a product with a [`Packed`](super::Packed) matrix, for all its columns: per half panel (32
    /// columns), `rows` rows in even blocks of 4 to [`BLOCK_ROWS`] rows (64 rows: 10 or 11 each, so none is left
    /// with few accumulators). Block `(r0, n)` reads `a` at `ap + offset` with stride `lda`, where `(offset, lda)
    /// = at(r0, n)` (`TERMS`: `a` term-major, see [`strip`]); the panels are read from row `first` + `js.start`
    /// (the long product's copy of `a` counts its terms from 0); the output is `op` with stride `ldo`. `rev`: the
    /// half panels from the last to the first. `SET`: see [`strip`].
    ///
    /// # Safety
    /// AVX-512F; `a` as `at` describes it holds the block's terms of `rows` rows, `op` `rows` rows of
    /// `pk.width` values, and `first + js.end <= pk.k`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn half_panels<const FUSED: bool, const TERMS: bool, const SET: bool>(
        ap: *const f32,
        at: impl Fn(usize, usize) -> (usize, usize),
        pk: Panels<'_>,
        first: usize,
        op: *mut f32,
        ldo: usize,
        rows: usize,
        js: std::ops::Range<usize>,
        rev: bool,
    ) {
        let (k, dp) = (pk.k, pk.data().as_ptr());
        let blocks = rows.div_ceil(BLOCK_ROWS);
        let halves = pk.width.div_ceil(HALF);
        for i in 0..halves {
            let (h, next) = if rev {
                (halves - 1 - i, (i + 1 < halves).then(|| halves - 2 - i))
            } else {
                (i, (i + 1 < halves).then_some(i + 1))
            };
            let c0 = h * HALF;
            // SAFETY: each half panel holds k * HALF floats, zero-padded past the width (no masks needed); the
            // half panels of the matrix follow each other.
            let mp = dp.add(c0 * k + first * HALF);
            let next = next.map_or(std::ptr::null(), |n| dp.add(n * HALF * k + first * HALF));
            for (r0, n) in even(rows, blocks) {
                let (offset, lda) = at(r0, n);
                let (ap, op) = (ap.add(offset), op.add(r0 * ldo + c0));
                let (lanes, j0, j1) = (pk.width - c0, js.start, js.end);
                // The first block of rows fetches the next half panel (the others find this one in L1).
                let pf = if r0 == 0 { next } else { std::ptr::null() };
                macro_rules! go {
                    ($($r:literal)*) => {
                        match n {
                            $($r => strip::<$r, 2, FUSED, TERMS, SET>(ap, lda, mp, op, ldo, lanes, j0, j1, pf),)*
                            _ => unreachable!("blocks of 4 to {BLOCK_ROWS} rows"),
                        }
                    };
                }
                go!(4 5 6 7 8 9 10 11 12);
            }
        }
    }

    /// From this many rows and columns [`gemm_acc_packed`] goes through [`gemm_acc_packed_long`]. The copy of
    /// `a` pays for itself over several half panels: at 64 columns (a medium LSTM's `dZ Kᵀ`, 3200 × 512 × 64) it
    /// made the product 1.9 -> 3.1 ms; at 256 (the large LSTM's) 92 -> 75 ms (Zen 4).
    const LONG_ROWS: usize = 4 * CHUNK_ROWS;
    const LONG_WIDTH: usize = 4 * COLS;
    /// Rows of `a` per chunk of [`gemm_acc_packed_long`]: 144 rows × 256 terms are 144 KB, which stay in L2 while
    /// every half panel passes over them.
    const CHUNK_ROWS: usize = 144;

    thread_local! {
        /// [`gemm_acc_packed_long`]'s copy of a chunk of `a`, kept per thread (it grows once, to the largest
        /// chunk, so a long product inside a time loop allocates nothing per step).
        static CHUNK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// `rows` split into `parts` consecutive ranges of even sizes (differing by one at most): `(start, len)`.
    fn even(rows: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..parts).scan(0, move |r0, i| {
            let len = (rows - *r0) / (parts - i);
            *r0 += len;
            Some((*r0 - len, len))
        })
    }

    /// [`gemm_acc_packed`] for a long `a` (the input gradient `dZ Kᵀ` of a training step: one row per sample and
    /// step, 12 800 at the large LSTM): per chunk of [`CHUNK_ROWS`] rows and block of terms, the chunk's `a` is
    /// copied term-major per block of rows, then multiplied as in [`gemm_acc_packed`]. Read in place, a long `a`
    /// was streamed from memory once per half panel, and rows 4 KB apart (dZ of 1024 gates) fell into one set of
    /// the L1 cache: the large LSTM's `dZ Kᵀ` took 92 ms, 75 ms this way (Zen 4). Same chains, same bits.
    #[target_feature(enable = "avx512f")]
    unsafe fn gemm_acc_packed_long<const FUSED: bool>(
        a: &[f32],
        lda: usize,
        pk: Panels<'_>,
        out: &mut [f32],
        ldo: usize,
        rows: usize,
    ) {
        let k = pk.k;
        let chunks = rows.div_ceil(CHUNK_ROWS);
        let most_terms = if FUSED { super::KC.min(k) } else { k };
        let op = out.as_mut_ptr();
        CHUNK.with(|buf| {
            let mut buf = buf.borrow_mut();
            let need = rows.div_ceil(chunks) * most_terms;
            if buf.len() < need {
                buf.resize(need, 0.0);
            }
            for (c0, cn) in even(rows, chunks) {
                // The blocks of half_panels (144 rows: 12 each).
                let blocks = cn.div_ceil(BLOCK_ROWS);
                for js in super::term_blocks::<FUSED>(k) {
                    let (j0, kb) = (js.start, js.len());
                    for (r0, n) in even(cn, blocks) {
                        let dst = &mut buf[r0 * kb..(r0 + n) * kb];
                        for r in 0..n {
                            let row = (c0 + r0 + r) * lda + j0;
                            for (d, &v) in dst[r..].iter_mut().step_by(n).zip(&a[row..row + kb]) {
                                *d = v;
                            }
                        }
                    }
                    // SAFETY: block (r0, n)'s copy holds kb terms of n rows at r0 * kb; the dispatcher checked
                    // `out` covers `rows` rows of `width` values. The copy counts terms from 0, the panels from j0.
                    let (ap, op) = (buf.as_ptr(), op.add(c0 * ldo));
                    half_panels::<FUSED, true, false>(
                        ap,
                        |r0, n| (r0 * kb, n),
                        pk,
                        j0,
                        op,
                        ldo,
                        cn,
                        0..kb,
                        false,
                    );
                }
            }
        })
    }

    /// `out[r, :] += Σ_j a[j, r] · m[j, :]` for `rows` ≥ 4 columns of `a` given term-major (`a[j, r]` at
    /// `a[j * lda + r]`, `j < pk.k`), in the fused order of one block of terms (`pk.k` ≤ [`KC`](super::KC)): the
    /// weight gradients' `Xᵀ dZ` without a transposed copy of X (which took 4% of a medium LSTM's training step).
    /// The blocking of [`gemm_acc_packed`]; each term's broadcasts are adjacent floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_acc_packed_tn(
        a: &[f32],
        lda: usize,
        pk: Panels<'_>,
        out: &mut [f32],
        ldo: usize,
        rows: usize,
    ) {
        debug_assert!(rows >= 4 && pk.k <= super::KC);
        // SAFETY: the caller checked `a` holds k terms of `rows` values (stride lda) and `out` rows rows of
        // `width` values.
        let (ap, op) = (a.as_ptr(), out.as_mut_ptr());
        half_panels::<true, true, false>(
            ap,
            |r0, _| (r0, lda),
            pk,
            0,
            op,
            ldo,
            rows,
            0..pk.k,
            false,
        );
    }
}

/// AVX2 register blocks over a [`Packed`] matrix, written with intrinsics. The portable kernel's 64-float
/// accumulator arrays need 32 of AVX2's 16 registers, and its closure-based schedule lost the FMA target feature
/// (each fused multiply-add became a library call): 1.5% of the FMA peak. Here a register block is a strip of
/// 6 rows × 16 columns, with its own schedule (see `avx2::BLOCK_ROWS`).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Panels, COLS, HALF};
    use std::arch::x86_64::*;

    /// Vector lanes (floats) per register.
    const L: usize = 8;

    /// Column `c` of a matrix whose columns come in groups of [`HALF`], group `g` starting `g * hs` floats after
    /// `mp` (a [`Packed`](super::Packed) matrix: `hs = k * HALF`; an unpacked one: `hs = HALF`, plain columns).
    #[inline(always)]
    unsafe fn col(mp: *const f32, c: usize, hs: usize) -> *const f32 {
        // SAFETY: the callers' pointers cover the columns asked for, see `strip`.
        mp.add((c / HALF) * hs + c % HALF)
    }

    /// `R` rows times `W` registers of 8 columns: `out[r, c] += a[r, j0..j1] @ m[j0..j1, c]` in the order of
    /// `FUSED` (see [`super::madd`]). `mp` points at the strip's first column of `m` (row stride `ldm`: [`HALF`]
    /// in a packed half panel; the columns of the next group of [`HALF`] `hs` floats on, see [`col`]), `op` at the
    /// output's; `lanes` columns exist from there: output loads and stores past them are masked off, and so are the
    /// loads of `m` when `MASK_M` (an unpacked matrix has no zero padding). A strip starts at a multiple of its
    /// width or of [`HALF`] (so its columns past a group boundary start the next group). `SET`: the output is taken
    /// as zeros, unread (`0 + chain`, the bits of zeroing it first; see [`super::gemm_set_packed_dir`]).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn strip<
        const R: usize,
        const W: usize,
        const FUSED: bool,
        const MASK_M: bool,
        const SET: bool,
    >(
        ap: *const f32,
        lda: usize,
        mp: *const f32,
        ldm: usize,
        hs: usize,
        op: *mut f32,
        ldo: usize,
        lanes: usize,
        j0: usize,
        j1: usize,
    ) {
        let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        // Masked loads and stores only where a register is partly outside the matrix: AMD's masked store is
        // many times slower than a plain one.
        let whole: [bool; W] = std::array::from_fn(|v| lanes >= L * (v + 1));
        let masks: [__m256i; W] = std::array::from_fn(|v| {
            let n = lanes.saturating_sub(L * v).min(L) as i32;
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota)
        });
        let load = |p: *const f32, v: usize| {
            if whole[v] {
                _mm256_loadu_ps(p)
            } else {
                _mm256_maskload_ps(p, masks[v])
            }
        };
        // SAFETY (all pointer arithmetic below): the caller passes `ap` at R rows of at least j1 values with
        // stride `lda`, `mp` at j1 rows (stride `ldm`) with `lanes` columns, or W * L zero-padded columns when
        // not MASK_M, and `op` at R output rows (stride `ldo`) with `lanes` writable columns.
        let mut acc = [[_mm256_setzero_ps(); W]; R];
        if !FUSED && !SET {
            for (r, accr) in acc.iter_mut().enumerate() {
                for (v, accv) in accr.iter_mut().enumerate() {
                    *accv = load(op.add(r * ldo + L * v), v);
                }
            }
        }
        for j in j0..j1 {
            let m: [__m256; W] = std::array::from_fn(|v| {
                let at = col(mp, L * v, hs).add(j * ldm);
                if MASK_M {
                    load(at, v)
                } else {
                    _mm256_loadu_ps(at)
                }
            });
            for (r, accr) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r * lda + j));
                for (accv, &mv) in accr.iter_mut().zip(&m) {
                    *accv = if FUSED {
                        _mm256_fmadd_ps(av, mv, *accv)
                    } else {
                        // A multiply then an add, never fused: the order of the naive loop.
                        _mm256_add_ps(*accv, _mm256_mul_ps(av, mv))
                    };
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            for (v, &accv) in accr.iter().enumerate() {
                let o = op.add(r * ldo + L * v);
                let x = match (FUSED, SET) {
                    (true, false) => _mm256_add_ps(load(o, v), accv),
                    // 0 + chain, as onto a zeroed `out` (+0 where the chain is -0).
                    (true, true) => _mm256_add_ps(_mm256_setzero_ps(), accv),
                    (false, _) => accv,
                };
                if whole[v] {
                    _mm256_storeu_ps(o, x)
                } else {
                    _mm256_maskstore_ps(o, masks[v], x)
                }
            }
        }
    }

    /// Rows per register block: 6 rows × 16 columns = 12 accumulators, which with two loads of `m` and a
    /// broadcast fill AVX2's 16 registers and keep both FMA (or multiply and add) units busy through their latency.
    const BLOCK_ROWS: usize = 6;

    /// `out[:rows, :lanes] += a[:rows, j0..j1] @ m[j0..j1, :lanes]` for one chunk of at most [`COLS`] columns:
    /// blocks of [`BLOCK_ROWS`] rows in strips of 16 columns, then the leftover rows in a block shaped to keep 8
    /// or more accumulators (one row: the whole chunk at once). The order of rounding of each output value does not
    /// depend on the blocking, so the bits equal the portable kernel's.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn chunk<const FUSED: bool, const MASK_M: bool, const SET: bool>(
        ap: *const f32,
        lda: usize,
        mp: *const f32,
        ldm: usize,
        hs: usize,
        op: *mut f32,
        ldo: usize,
        rows: usize,
        lanes: usize,
        j0: usize,
        j1: usize,
    ) {
        // SAFETY: the callers pass pointers covering `rows` rows and `lanes` (≤ COLS) columns, see `strip`.
        let full = rows - rows % BLOCK_ROWS;
        for c in (0..lanes).step_by(2 * L) {
            for r0 in (0..full).step_by(BLOCK_ROWS) {
                strip::<BLOCK_ROWS, 2, FUSED, MASK_M, SET>(
                    ap.add(r0 * lda),
                    lda,
                    col(mp, c, hs),
                    ldm,
                    hs,
                    op.add(r0 * ldo + c),
                    ldo,
                    lanes - c,
                    j0,
                    j1,
                );
            }
        }
        let (ap, op) = (ap.add(full * lda), op.add(full * ldo));
        macro_rules! rest {
            ($r:literal, $w:literal) => {
                for c in (0..lanes).step_by($w * L) {
                    strip::<$r, $w, FUSED, MASK_M, SET>(
                        ap,
                        lda,
                        col(mp, c, hs),
                        ldm,
                        hs,
                        op.add(c),
                        ldo,
                        lanes - c,
                        j0,
                        j1,
                    );
                }
            };
        }
        match rows - full {
            0 => {}
            1 => rest!(1, 8),
            2 => rest!(2, 4),
            3 => rest!(3, 4),
            4 => rest!(4, 2),
            _ => rest!(5, 2),
        }
    }

    /// The unpacked product ([`super::gemm_acc`]'s contract), per block of terms (the fused order's
    /// [`KC`](super::KC)) and chunk of 64 columns.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm_acc<const FUSED: bool>(
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
        let (ap, mp, op) = (a.as_ptr(), m.as_ptr(), out.as_mut_ptr());
        for js in super::term_blocks::<FUSED>(k) {
            for c in (0..width).step_by(COLS) {
                // SAFETY: the dispatcher checked `a`, `m` and `out` cover `rows` x `k`, `k` x `width` and
                // `rows` x `width` with their strides; `m` is read masked to the columns that exist.
                unsafe {
                    chunk::<FUSED, true, false>(
                        ap,
                        lda,
                        mp.add(c),
                        ldm,
                        HALF,
                        op.add(c),
                        ldo,
                        rows,
                        (width - c).min(COLS),
                        js.start,
                        js.end,
                    )
                };
            }
        }
    }

    /// The product with a [`Packed`](super::Packed) matrix, per block of terms and panel (`rev`: from the last panel).
    /// `SET`: onto zeros, `out` unread (the first block of terms sets, the others add).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm_acc_packed<const FUSED: bool, const SET: bool>(
        a: &[f32],
        lda: usize,
        pk: Panels<'_>,
        out: &mut [f32],
        ldo: usize,
        rows: usize,
        rev: bool,
    ) {
        let k = pk.k;
        let (ap, op, dp) = (a.as_ptr(), out.as_mut_ptr(), pk.data().as_ptr());
        let panels = pk.width.div_ceil(COLS);
        for (b, js) in super::term_blocks::<FUSED>(k).enumerate() {
            for i in 0..panels {
                let p = if rev { panels - 1 - i } else { i };
                // SAFETY: the dispatcher checked `a` and `out` cover `rows` rows; panel p exists and holds
                // two halves of k * HALF floats, zero-padded past the width, so its loads need no mask.
                let (mp, op, lanes) = (
                    dp.add(p * k * COLS),
                    op.add(p * COLS),
                    COLS.min(pk.width - p * COLS),
                );
                // The first block of terms sets (onto zeros), the others add.
                macro_rules! run_chunk {
                    ($set:literal) => {
                        chunk::<FUSED, false, $set>(
                            ap,
                            lda,
                            mp,
                            HALF,
                            k * HALF,
                            op,
                            ldo,
                            rows,
                            lanes,
                            js.start,
                            js.end,
                        )
                    };
                }
                unsafe {
                    if SET && b == 0 {
                        run_chunk!(true)
                    } else {
                        run_chunk!(false)
                    }
                };
            }
        }
    }
}

/// [`gemm_acc`] with a [`Packed`] right-hand side: `out[r, :width] += a[r, :k] @ m`, bit-identical to the unpacked
/// kernel of the same order.
pub(crate) fn gemm_acc_packed<const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: &Packed,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
) {
    gemm_acc_packed_dir::<FUSED>(a, lda, pk, out, ldo, rows, false)
}

/// [`gemm_acc_packed`] visiting the columns from the last panel to the first when `rev` (same bits: each output
/// value's order of rounding does not depend on the order of the columns). A time loop whose weights do not fit
/// in L2 alternates the direction (and the order of its two products) from step to step, so each step starts on
/// the weights the previous one used last, which are still in L2, instead of those evicted longest ago: with two
/// 1 MB kernels (LSTM(256) at batch 1) against a 2 MB L2 a step went from 30 to 20 µs (Intel Xeon).
pub(crate) fn gemm_acc_packed_dir<const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: &Packed,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    rev: bool,
) {
    gemm_panels::<FUSED, false>(a, lda, pk.panels(), out, ldo, rows, rev)
}

/// [`gemm_acc_packed_dir`] on panels `part` of `pk` only: `out` starts at the part's first column (column
/// `part.start * COLS` of the product; rows `ldo` apart) and is written up to the end of the last panel of `part`
/// (or of the matrix). The threads of a product split by columns each take a range of panels; each output value
/// is rounded as in the whole product.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_acc_packed_part<const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: &Packed,
    part: std::ops::Range<usize>,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    rev: bool,
) {
    gemm_panels::<FUSED, false>(a, lda, pk.part(part), out, ldo, rows, rev)
}

/// [`gemm_acc_packed_dir`] onto zeros: `out[r, :width] = 0 + a[r, :k] @ m`, the bits of zeroing those values
/// and then accumulating, without a pass that zeroes them where the kernel can take them as zeros (AVX-512, four
/// rows or more; AVX2 with FMA). What a time step's first product does (a step's sums start at 0).
pub(crate) fn gemm_set_packed_dir<const FUSED: bool>(
    a: &[f32],
    lda: usize,
    pk: &Packed,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    rev: bool,
) {
    gemm_panels::<FUSED, true>(a, lda, pk.panels(), out, ldo, rows, rev)
}

/// Zeroes `width` values of each of `rows` rows `ldo` apart: what a product onto zeros does where its kernel
/// cannot take them as zeros.
pub(crate) fn zero_rows(out: &mut [f32], rows: usize, ldo: usize, width: usize) {
    for r in 0..rows {
        out[r * ldo..r * ldo + width].fill(0.0);
    }
}

/// The dispatcher of the packed products: AVX-512, AVX2+FMA or portable, all giving the same bits. `SET`: onto
/// zeros (see [`gemm_set_packed_dir`]).
fn gemm_panels<const FUSED: bool, const SET: bool>(
    a: &[f32],
    lda: usize,
    pk: Panels<'_>,
    out: &mut [f32],
    ldo: usize,
    rows: usize,
    rev: bool,
) {
    if rows == 0 || pk.width == 0 {
        return;
    }
    assert!(a.len() >= (rows - 1) * lda + pk.k, "a too short");
    assert!(out.len() >= (rows - 1) * ldo + pk.width, "out too short");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe {
                avx512::gemm_acc_packed::<FUSED, SET>(a, lda, pk, out, ldo, rows, rev)
            };
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2::gemm_acc_packed::<FUSED, SET>(a, lda, pk, out, ldo, rows, rev) };
        }
    }
    if SET {
        zero_rows(out, rows, ldo, pk.width);
    }
    gemm_acc_packed_body::<FUSED>(a, lda, pk, out, ldo, rows, rev)
}

/// `out[r, :n] += Σ_j a[j, r] · b[j, :n]`: the product `aᵀ b` of `a: (k, m)` (row stride `lda`) and `b: (k, n)`
/// (row stride `ldb`), in the fused order (so bit-identical to ndarray's GEMM with FMA, as [`gemm_acc`]). Per
/// block of [`KC`] terms, the block of `b` is packed into a buffer made once per call and multiplied by the packed
/// kernel, which with AVX-512 reads `a` as it is (term-major) and otherwise from a transposed copy: the weight
/// gradients of a recurrent layer (`Xᵀ dZ`, `Hᵀ dZ` over all steps), where ndarray's GEMM reached a third of the
/// FMA peak.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tn_acc(
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    out: &mut [f32],
    ldo: usize,
    m: usize,
    k: usize,
    n: usize,
) {
    gemm_tn_acc_shared(
        &mut [TnLhs {
            a,
            lda,
            m,
            out,
            ldo,
        }],
        b,
        ldb,
        k,
        n,
    )
}

/// One left-hand side of [`gemm_tn_acc_shared`]: `a: (k, m)` with row stride `lda`, and its output `out: (m, n)`
/// with row stride `ldo`.
pub(crate) struct TnLhs<'a> {
    pub(crate) a: &'a [f32],
    pub(crate) lda: usize,
    pub(crate) m: usize,
    pub(crate) out: &'a mut [f32],
    pub(crate) ldo: usize,
}

/// [`gemm_tn_acc`] for several left-hand sides with the same `b`, which is packed once per block of terms for all
/// of them: an LSTM's `Xᵀ dZ` and `Hᵀ dZ` share dZ, whose packing was a tenth of a medium LSTM's training step
/// when it was done twice. Each output gets the bits [`gemm_tn_acc`] gives it alone.
pub(crate) fn gemm_tn_acc_shared(lhs: &mut [TnLhs<'_>], b: &[f32], ldb: usize, k: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    let in_place = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let in_place = false;
    tn_shared(lhs, b, ldb, k, n, in_place)
}

/// [`gemm_tn_acc_shared`], reading `a` in place (`in_place`: AVX-512 only) or through a transposed copy (the
/// tests run both on an AVX-512 machine).
fn tn_shared(lhs: &mut [TnLhs<'_>], b: &[f32], ldb: usize, k: usize, n: usize, in_place: bool) {
    lhs.iter().for_each(|l| {
        assert!(
            l.m == 0 || k == 0 || l.a.len() >= (k - 1) * l.lda + l.m,
            "a too short"
        );
        assert!(
            l.m == 0 || n == 0 || l.out.len() >= (l.m - 1) * l.ldo + n,
            "out too short"
        );
    });
    if n == 0 || k == 0 || lhs.iter().all(|l| l.m == 0) {
        return;
    }
    assert!(b.len() >= (k - 1) * ldb + n, "b too short");
    let most = lhs.iter().map(|l| l.m).max().unwrap_or(0);
    // The transposed block of `a`, made on first use (AVX-512 reads most `a` in place).
    let mut at = Vec::new();
    let mut pk = Packed::default();
    for j0 in (0..k).step_by(KC) {
        let kb = KC.min(k - j0);
        pk.repack(&b[j0 * ldb..], ldb, kb, n);
        for TnLhs {
            a,
            lda,
            m,
            out,
            ldo,
        } in lhs.iter_mut()
        {
            let (a, lda, m, ldo) = (*a, *lda, *m, *ldo);
            #[cfg(target_arch = "x86_64")]
            if m >= 4 && in_place {
                // SAFETY: AVX-512F is there (the caller checked); `a` holds the block's kb terms of m values
                // (asserted on entry) and `out` m rows of n values.
                unsafe {
                    avx512::gemm_acc_packed_tn(&a[j0 * lda..], lda, pk.panels(), out, ldo, m)
                };
                continue;
            }
            at.resize(most * KC.min(k), 0.0);
            // Eight rows of `at` at a time, each written in order (column by column the writes were 1 KB apart
            // and ran at a tenth of the speed).
            for r0 in (0..m).step_by(8) {
                let r1 = (r0 + 8).min(m);
                for j in 0..kb {
                    let src = &a[(j0 + j) * lda + r0..(j0 + j) * lda + r1];
                    for (r, &v) in (r0..r1).zip(src) {
                        at[r * kb + j] = v;
                    }
                }
            }
            gemm_acc_packed::<true>(&at, kb, &pk, out, ldo, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive loops the kernels must reproduce bit for bit: axpy order (unfused), or matrixmultiply's order
    /// (fused chains from zero per KC terms, each added to `out`).
    fn naive(a: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize, fused: bool) {
        for r in 0..rows {
            for c in 0..n {
                if fused {
                    for j0 in (0..k).step_by(KC) {
                        let mut s = 0.0f32;
                        for j in j0..(j0 + KC).min(k) {
                            s = a[r * k + j].mul_add(m[j * n + c], s);
                        }
                        out[r * n + c] += s;
                    }
                } else {
                    for j in 0..k {
                        out[r * n + c] += a[r * k + j] * m[j * n + c];
                    }
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
        gemm_acc::<false>(&a, 3, &m[1..], 4, &mut block, 2, 2, 3, 2);
        assert_eq!(block, [8.0, 5.0, 17.0, 14.0]);
    }

    fn check<const FUSED: bool>() {
        // Sizes that exercise full row blocks, row tails, full column chunks, column tails, and (fused) more
        // than one block of KC terms.
        for &(rows, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (4, 8, 64),
            (7, 13, 130),
            (9, 33, 200),
            (1, 17, 300),
            (6, 9, 512),
            (5, 300, 70),
            (2, 600, 129),
            (2, 20, 256),
            (3, 270, 330),
            (3, 8, 64),
            (13, 20, 100),
            (30, 270, 64),
            (64, 40, 96),
            // Long and wide enough for AVX-512's chunked copy of `a`: uneven chunks, two blocks of terms, a
            // column tail.
            (601, 300, 270),
        ] {
            let a: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0)
                .collect();
            let m: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 17.0)
                .collect();
            let init: Vec<f32> = (0..rows * n).map(|i| (i % 11) as f32 * 0.1).collect();
            let mut want = init.clone();
            naive(&a, &m, &mut want, rows, k, n, FUSED);
            let label = |kind: &str| format!("{kind} fused={FUSED} {rows}x{k}x{n}");
            let mut got = init.clone();
            gemm_acc::<FUSED>(&a, k, &m, n, &mut got, n, rows, k, n);
            assert_eq!(got, want, "{}", label("dispatched"));
            let mut got = init.clone();
            gemm_acc_body::<FUSED>(&a, k, &m, n, &mut got, n, rows, k, n);
            assert_eq!(got, want, "{}", label("portable"));
            let pk = Packed::new(&m, n, k, n);
            for rev in [false, true] {
                let label = |kind: &str| label(&format!("{kind} rev={rev}"));
                let mut got = init.clone();
                gemm_acc_packed_dir::<FUSED>(&a, k, &pk, &mut got, n, rows, rev);
                assert_eq!(got, want, "{}", label("packed"));
                let mut got = init.clone();
                gemm_acc_packed_body::<FUSED>(&a, k, pk.panels(), &mut got, n, rows, rev);
                assert_eq!(got, want, "{}", label("packed portable"));
                // Split by columns at every panel boundary (and past the end), as threads split it.
                for cut in 0..=pk.panel_count() + 1 {
                    let mut got = init.clone();
                    gemm_acc_packed_part::<FUSED>(&a, k, &pk, 0..cut, &mut got, n, rows, rev);
                    let c0 = (cut * COLS).min(n);
                    let rest = &mut got[c0..];
                    gemm_acc_packed_part::<FUSED>(&a, k, &pk, cut..usize::MAX, rest, n, rows, rev);
                    assert_eq!(
                        got,
                        want,
                        "{} cut at panel {cut}",
                        label("packed in two parts")
                    );
                }
            }
            // Onto zeros (a time step's first product): `out` is not read, so what it held does not matter (NaN
            // here), the bits are those of zeroing it first, and columns past the width stay as they were.
            let ldo = n + 3;
            let mut want0 = vec![0.0f32; rows * n];
            naive(&a, &m, &mut want0, rows, k, n, FUSED);
            // `got` (rows `ldo` apart, NaN before the product) holds the product's bits, its column tails NaN.
            let assert_set = |got: &[f32], what: &str| {
                for (r, (got, want)) in got.chunks(ldo).zip(want0.chunks(n)).enumerate() {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got[..n]), bits(want), "{} row {r}", label(what));
                    assert!(
                        got[n..].iter().all(|v| v.is_nan()),
                        "{} row {r}",
                        label(what)
                    );
                }
            };
            for rev in [false, true] {
                let mut got = vec![f32::NAN; rows * ldo];
                gemm_set_packed_dir::<FUSED>(&a, k, &pk, &mut got, ldo, rows, rev);
                assert_set(&got, "set");
            }
            // The AVX2 kernels also on a machine whose dispatch picks AVX-512.
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                let mut got = init.clone();
                // SAFETY: the CPU supports AVX2 and FMA (checked just above); the slices hold the shapes.
                unsafe { avx2::gemm_acc::<FUSED>(&a, k, &m, n, &mut got, n, rows, k, n) };
                assert_eq!(got, want, "{}", label("avx2"));
                for rev in [false, true] {
                    let mut got = init.clone();
                    // SAFETY: as above.
                    unsafe {
                        avx2::gemm_acc_packed::<FUSED, false>(
                            &a,
                            k,
                            pk.panels(),
                            &mut got,
                            n,
                            rows,
                            rev,
                        )
                    };
                    assert_eq!(got, want, "{} rev={rev}", label("packed avx2"));
                    // Onto zeros, as the dispatched kernel above: NaN in `out`, column tails untouched.
                    let mut got = vec![f32::NAN; rows * ldo];
                    // SAFETY: as above.
                    unsafe {
                        avx2::gemm_acc_packed::<FUSED, true>(
                            &a,
                            k,
                            pk.panels(),
                            &mut got,
                            ldo,
                            rows,
                            rev,
                        )
                    };
                    assert_set(&got, "set avx2");
                }
            }
        }
    }

    #[test]
    fn packed_panels_start_on_a_cache_line_also_when_cloned() {
        for &(k, n) in &[(1, 1), (256, 1024), (300, 70)] {
            let m: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
            let pk = Packed::new(&m, n, k, n);
            for p in [pk.clone(), pk] {
                assert_eq!(p.data().as_ptr() as usize % 64, 0, "{k}x{n}");
                // Every element where the layout puts it, zero padding past the width.
                let panels = n.div_ceil(COLS);
                assert_eq!(p.data().len(), panels * k * COLS, "{k}x{n}");
                for j in 0..k {
                    for c in 0..panels * COLS {
                        let at = (c / COLS) * k * COLS
                            + (c % COLS / HALF) * k * HALF
                            + j * HALF
                            + c % HALF;
                        let want = if c < n { m[j * n + c] } else { 0.0 };
                        assert_eq!(p.data()[at], want, "{k}x{n} row {j} column {c}");
                    }
                }
            }
        }
    }

    /// `aᵀ b` by [`gemm_tn_acc`] equals ndarray's GEMM of the transposed view, bit for bit (FMA machines; see
    /// `fused_kernels_equal_ndarrays_gemm`), also with more than one block of terms and strided operands.
    #[test]
    fn transposed_product_equals_ndarrays_gemm() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("fma") {
            eprintln!(
                "no FMA on this CPU: matrixmultiply rounds differently here, nothing to compare"
            );
            return;
        }
        for &(k, m, n) in &[(3, 2, 4), (600, 20, 70), (256, 64, 256), (513, 5, 1)] {
            let a = ndarray::Array2::from_shape_fn((k, m + 3), |(i, j)| {
                ((i * 31 + j * 17) % 113) as f32 / 37.0 - 1.5
            });
            let b = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 13 + j * 29) % 101) as f32 / 41.0 - 1.2
            });
            // Columns 1..m+1 of `a`: a strided operand.
            let av = a.slice(ndarray::s![.., 1..m + 1]);
            let mut want = ndarray::Array2::<f32>::zeros((m, n));
            ndarray::linalg::general_mat_mul(1.0, &av.t(), &b, 0.0, &mut want);
            let mut got = vec![0.0f32; m * n];
            gemm_tn_acc(
                &a.as_slice().unwrap()[1..],
                m + 3,
                b.as_slice().unwrap(),
                n,
                &mut got,
                n,
                m,
                k,
                n,
            );
            assert_eq!(got, want.as_slice().unwrap(), "{k}x{m}x{n}");
        }
    }

    #[test]
    fn a_shared_right_hand_side_gives_each_product_its_own_bits() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("fma") {
            eprintln!(
                "no FMA on this CPU: matrixmultiply rounds differently here, nothing to compare"
            );
            return;
        }
        // An LSTM's Xᵀ dZ and Hᵀ dZ: two left-hand sides of different widths over 600 terms (three blocks).
        let (k, n) = (600, 200);
        let b = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
            ((i * 13 + j * 29) % 101) as f32 / 41.0 - 1.2
        });
        let x = ndarray::Array2::from_shape_fn((k, 70), |(i, j)| {
            ((i * 31 + j * 17) % 113) as f32 / 37.0 - 1.5
        });
        let h = ndarray::Array2::from_shape_fn((k, 33), |(i, j)| {
            ((i * 7 + j * 43) % 97) as f32 / 29.0 - 1.7
        });
        // Through the transposed copy, and (AVX-512) in place.
        #[cfg(target_arch = "x86_64")]
        let ways = if std::arch::is_x86_feature_detected!("avx512f") {
            2
        } else {
            1
        };
        #[cfg(not(target_arch = "x86_64"))]
        let ways = 1;
        for in_place in [false, true].into_iter().take(ways) {
            let mut dx = vec![0.0f32; 70 * n];
            let mut dh = vec![0.0f32; 33 * n];
            tn_shared(
                &mut [
                    TnLhs {
                        a: x.as_slice().unwrap(),
                        lda: 70,
                        m: 70,
                        out: &mut dx,
                        ldo: n,
                    },
                    TnLhs {
                        a: h.as_slice().unwrap(),
                        lda: 33,
                        m: 33,
                        out: &mut dh,
                        ldo: n,
                    },
                ],
                b.as_slice().unwrap(),
                n,
                k,
                n,
                in_place,
            );
            for (a, got) in [(&x, &dx), (&h, &dh)] {
                let mut want = ndarray::Array2::<f32>::zeros((a.ncols(), n));
                ndarray::linalg::general_mat_mul(1.0, &a.t(), &b, 0.0, &mut want);
                assert_eq!(
                    got.as_slice(),
                    want.as_slice().unwrap(),
                    "{} columns, in place: {in_place}",
                    a.ncols()
                );
            }
        }
    }

    #[test]
    fn blocked_kernels_are_bit_identical_to_the_naive_loops() {
        check::<false>();
        check::<true>();
    }

    /// The fused order is the one ndarray's GEMM (matrixmultiply) uses on a CPU with FMA, so replacing it changed
    /// no result there. (Without FMA, matrixmultiply rounds twice and differs; rnnlab's kernels do not.)
    #[test]
    fn fused_kernels_equal_ndarrays_gemm() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("fma") {
            eprintln!(
                "no FMA on this CPU: matrixmultiply rounds differently here, nothing to compare"
            );
            return;
        }
        for &(rows, k, n) in &[
            (3, 2, 4),
            (64, 256, 1024),
            (10, 300, 96),
            (1, 513, 64),
            (700, 600, 300),
        ] {
            let a = ndarray::Array2::from_shape_fn((rows, k), |(i, j)| {
                ((i * 31 + j * 17) % 113) as f32 / 37.0 - 1.5
            });
            let m = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 13 + j * 29) % 101) as f32 / 41.0 - 1.2
            });
            let mut want = ndarray::Array2::<f32>::zeros((rows, n));
            ndarray::linalg::general_mat_mul(1.0, &a, &m, 0.0, &mut want);
            let (a, m) = (a.as_slice().unwrap(), m.as_slice().unwrap());
            let mut got = vec![0.0f32; rows * n];
            gemm_acc::<true>(a, k, m, n, &mut got, n, rows, k, n);
            assert_eq!(got, want.as_slice().unwrap(), "{rows}x{k}x{n}");
            let mut got = vec![0.0f32; rows * n];
            gemm_acc_packed::<true>(a, k, &Packed::new(m, n, k, n), &mut got, n, rows);
            assert_eq!(got, want.as_slice().unwrap(), "packed {rows}x{k}x{n}");
        }
    }
}
