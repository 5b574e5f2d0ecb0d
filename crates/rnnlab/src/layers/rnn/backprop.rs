//! Backpropagation through time for the recurrent layers.
//!
//! The recording forward pass is the inference loop of `mod.rs` with a [`RnnTape`] attached: it keeps the
//! input rows, the states before and after every step, and every step's pre-activations, activated gates and (GRU)
//! recurrent products. The backward pass walks the steps in reverse, turns the gradients of the states into
//! gradients of the pre-activations, and leaves the weight gradients to three large matrix products at the end
//! (`dK = Xᵀ·dXP`, `dR = Hᵀ·dREC`), which is where nearly all the arithmetic is.
//!
//! Masked steps follow the forward semantics exactly: a masked row carries its states over (the gradient passes
//! through unchanged) and repeats its previous output (the gradient of that output goes to the step that made it).

use ndarray::{linalg::general_mat_mul, Array2, Array3, ArrayD, ArrayView2, ArrayViewMut2, Axis};

use rand::{Rng, SeedableRng};

use super::cell::{Cell, CellKind, Scratch};
use super::kernels::{gemm_acc_packed, gemm_tn_acc, gemm_tn_acc_shared, Packed, TnLhs, KC};
use super::{Mask, RnnModule};
use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::layers::TrainCtx;

/// The dropout masks of one training call, fixed over its time steps (Keras draws them once per call): each
/// value is 0 or 1/(1 − rate). `input`: one `(B, D)` mask, or one per gate block when recurrent dropout is on
/// (Keras' implementation 1); `rec`: one `(B, U)` mask per gate block, applied to h before the recurrent product.
#[derive(Clone, Debug, Default)]
pub(crate) struct DropoutMasks {
    pub input: Vec<Vec<f32>>,
    pub rec: Vec<Vec<f32>>,
}

/// What one recorded call of a recurrent layer keeps for its backward pass.
#[derive(Default)]
pub(crate) struct RnnTape {
    b: usize,
    t: usize,
    d: usize,
    /// Input rows in time-major order, `(T·B, D)`, as the projection used them.
    x2: Array2<f32>,
    /// `[state]` → `(T+1)·B·U`: the states before step `k` at block `k`, the final states at block `T`.
    states: Vec<Vec<f32>>,
    /// `T·B·G` per processing step: pre-activations, activated gates, and (GRU) the recurrent product.
    pre: Vec<f32>,
    gates: Vec<f32>,
    rec: Vec<f32>,
    /// `T·B` keep flags per processing step, when the call had a mask.
    keep: Option<Vec<bool>>,
    /// Number of initial states the call was given (their gradients are returned).
    n_initial: usize,
    /// Original time index of each processing step.
    time_index: Vec<usize>,
    /// Dropout masks of a training call (none at inference or with rates 0).
    pub masks: Option<DropoutMasks>,
}

impl RnnTape {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &mut self,
        cell: &Cell,
        b: usize,
        t: usize,
        d: usize,
        x2: Array2<f32>,
        prev: &[Vec<f32>],
        masked: bool,
        n_initial: usize,
    ) {
        let (u, g) = (cell.cfg.units, cell.gate_width());
        self.b = b;
        self.t = t;
        self.d = d;
        self.x2 = x2;
        self.states = prev
            .iter()
            .map(|p| {
                // Every buffer of the tape is written in full: step 0's states here, the rest by `record`.
                let mut v = crate::pool::overwritten((t + 1) * b * u);
                v[..b * u].copy_from_slice(p);
                v
            })
            .collect();
        self.pre = crate::pool::overwritten(t * b * g);
        self.gates = crate::pool::overwritten(t * b * g);
        self.rec = if matches!(cell.kind, CellKind::Gru { .. }) {
            crate::pool::overwritten(t * b * g)
        } else {
            Vec::new()
        };
        self.keep = masked.then(|| vec![true; t * b]);
        self.n_initial = n_initial;
        self.time_index = vec![0; t];
    }

    /// Records step `k` (original time `ti`): `states` are the states after the step (masked rows carried over).
    pub(super) fn record(
        &mut self,
        k: usize,
        ti: usize,
        s: &Scratch,
        states: &[Vec<f32>],
        mask: Option<&Mask>,
    ) {
        let bg = s.gates.len();
        let bu = states[0].len();
        self.pre[k * bg..(k + 1) * bg].copy_from_slice(s.pre.as_deref().expect("recording"));
        self.gates[k * bg..(k + 1) * bg].copy_from_slice(&s.gates);
        if !self.rec.is_empty() {
            self.rec[k * bg..(k + 1) * bg].copy_from_slice(&s.rec);
        }
        for (dst, src) in self.states.iter_mut().zip(states) {
            dst[(k + 1) * bu..(k + 2) * bu].copy_from_slice(src);
        }
        if let (Some(keep), Some(m)) = (self.keep.as_mut(), mask) {
            for bi in 0..self.b {
                keep[k * self.b + bi] = m[[bi, ti]];
            }
        }
        self.time_index[k] = ti;
    }
}

impl Drop for RnnTape {
    /// The tape's buffers go back to the pool for the next training step.
    fn drop(&mut self) {
        let x2 = std::mem::take(&mut self.x2);
        crate::pool::recycle(x2.into_raw_vec_and_offset().0);
        for v in [&mut self.pre, &mut self.gates, &mut self.rec] {
            crate::pool::recycle(std::mem::take(v));
        }
        for v in self.states.drain(..) {
            crate::pool::recycle(v);
        }
    }
}

fn view2(v: &[f32], r: usize, c: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((r, c), v).expect("buffer sized r*c")
}
fn view2_mut(v: &mut [f32], r: usize, c: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((r, c), v).expect("buffer sized r*c")
}

/// Gradients of one recorded call: inputs `(B, T, D)`, initial states (when given), weights in Keras order.
pub(crate) struct RnnGrads {
    pub dx: ArrayD<f32>,
    pub d_initial: Vec<ArrayD<f32>>,
    pub weights: Vec<ArrayD<f32>>,
}

impl RnnModule {
    /// Draws the dropout masks of one training call from the layer's `seed` (and the call count), or from the
    /// training generator when the layer has no seed. `None` when both rates are 0.
    pub(crate) fn draw_dropout_masks(
        &mut self,
        batch: usize,
        features: usize,
        tc: &mut TrainCtx,
    ) -> Option<DropoutMasks> {
        let c = &self.cell.cfg;
        let (rate, rrate) = (c.dropout, c.recurrent_dropout);
        if rate <= 0.0 && rrate <= 0.0 {
            return None;
        }
        let mut own;
        let rng: &mut rand::rngs::StdRng = match c.seed {
            Some(seed) => {
                own = rand::rngs::StdRng::seed_from_u64(
                    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.dropout_calls,
                );
                &mut own
            }
            None => &mut tc.rng,
        };
        self.dropout_calls += 1;
        let mut draw = |n: usize, rate: f32| -> Vec<f32> {
            let (keep, scale) = (1.0 - rate, 1.0 / (1.0 - rate));
            (0..n)
                .map(|_| {
                    if rng.random::<f32>() < keep {
                        scale
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let blocks = self.cell.n_blocks();
        let u = self.cell.cfg.units;
        let n_in = if rrate > 0.0 { blocks } else { 1 };
        let input = if rate > 0.0 {
            (0..n_in).map(|_| draw(batch * features, rate)).collect()
        } else {
            Vec::new()
        };
        let rec = if rrate > 0.0 {
            (0..blocks).map(|_| draw(batch * u, rrate)).collect()
        } else {
            Vec::new()
        };
        Some(DropoutMasks { input, rec })
    }

    /// Refuses configurations whose training is not implemented, before any work is done.
    pub(crate) fn check_trainable(&self, ctx: &str, training: bool) -> Result<()> {
        let c = &self.cell.cfg;
        let _ = training;
        if c.dropout >= 1.0 || c.recurrent_dropout >= 1.0 {
            return Err(Error::invalid(
                ctx,
                "dropout / recurrent_dropout",
                "rates below 1 for training (1 drops everything)",
                format!("{} / {}", c.dropout, c.recurrent_dropout),
            ));
        }
        for (arg, a) in [
            ("activation", c.activation),
            ("recurrent_activation", c.recurrent_activation),
        ] {
            if a == Activation::Softmax {
                return Err(Error::Unsupported(format!(
                    "{ctx}: training a recurrent cell with {arg}=\"softmax\" is not supported"
                )));
            }
        }
        Ok(())
    }

    /// Backpropagation through time over a recorded call. `g_out` is the gradient of the output (sequence or last
    /// step), `g_states` those of the returned final states.
    pub(crate) fn backward_tape(
        &self,
        tape: &RnnTape,
        g_out: Option<&ArrayD<f32>>,
        g_states: &[Option<ArrayD<f32>>],
    ) -> RnnGrads {
        let cell = &self.cell;
        let w = cell.w.as_ref().expect("built before backward");
        let (b, t, d) = (tape.b, tape.t, tape.d);
        let u = cell.cfg.units;
        let g = cell.gate_width();
        let n = cell.n_states();
        let (bu, bg) = (b * u, b * g);
        let rk = w.recurrent.view();
        let (act, ract) = (cell.cfg.activation, cell.cfg.recurrent_activation);

        // Gradients flowing into the states after the current step.
        let mut dstate: Vec<Vec<f32>> = (0..n)
            .map(|s| match g_states.get(s).and_then(|o| o.as_ref()) {
                Some(a) => a.iter().copied().collect(),
                None => vec![0.0; bu],
            })
            .collect();
        // Gradient of the "last output" carried by masked steps (and the non-sequence output).
        let mut dlast = vec![0.0f32; bu];
        let gseq: Option<Vec<f32>> = if self.opts.return_sequences {
            g_out.map(|a| a.iter().copied().collect())
        } else {
            if let Some(a) = g_out {
                dlast.iter_mut().zip(a.iter()).for_each(|(d, v)| *d = *v);
            }
            None
        };
        // Written in full below (every step, every row, all G columns; masked rows as zeros).
        // By original time index, like the projection.
        let mut dxp = crate::pool::overwritten(t * bg);
        // The gradient of the recurrent product, by processing step like the recorded states. For an LSTM or a
        // SimpleRNN it equals dxp's (the pre-activation gradient) and, unless the steps ran backwards, in the same
        // order: then dxp serves as both, with no copy (it was a twentieth of a medium LSTM's training step).
        let shared = matches!(cell.kind, CellKind::Lstm | CellKind::Simple)
            && tape.time_index.iter().enumerate().all(|(k, &ti)| k == ti);
        let mut drec_all = if shared {
            Vec::new()
        } else {
            crate::pool::overwritten(t * bg)
        };
        // tanh(c) of one row (LSTM), computed vectorised before the row's scalar loop.
        let mut tc_row = vec![0.0f32; u];
        let mut dprev: Vec<Vec<f32>> = vec![vec![0.0; bu]; n];
        let mut drh = vec![0.0f32; bu]; // GRU reset_after=false: gradient of (r * h_prev)
        let rec_masks: Option<&Vec<Vec<f32>>> = tape
            .masks
            .as_ref()
            .map(|m| &m.rec)
            .filter(|r| !r.is_empty());
        let in_masks: Option<&Vec<Vec<f32>>> = tape
            .masks
            .as_ref()
            .map(|m| &m.input)
            .filter(|r| !r.is_empty());
        // The h block's recurrent dropout mask (GRU without reset_after multiplies it into r * h).
        let m_h = |i: usize| rec_masks.map_or(1.0, |ms| ms[2.min(ms.len() - 1)][i]);
        let mut tmp = vec![0.0f32; if rec_masks.is_some() { bu } else { 0 }];
        // `dREC_k · Rᵀ` at every step with Rᵀ packed once (a GEMM call packed all of R at every step). The
        // fused kernel rounds as that GEMM did. Columns `..cols` of R (GRU v1: the z and r blocks), and GRU v1's
        // h block for d(r*h).
        let cols = match cell.kind {
            CellKind::Gru { reset_after: false } => 2 * u,
            _ => g,
        };
        let pack_t = |c: std::ops::Range<usize>| {
            let rt = rk
                .slice(ndarray::s![.., c.clone()])
                .t()
                .as_standard_layout()
                .into_owned();
            Packed::new(rt.as_slice().expect("standard layout"), u, c.len(), u)
        };
        let rt_packed =
            (rec_masks.is_none() && Packed::worthwhile(cols, u)).then(|| pack_t(0..cols));
        let rht_packed = (matches!(cell.kind, CellKind::Gru { reset_after: false })
            && Packed::worthwhile(u, u))
        .then(|| pack_t(2 * u..g));

        for k in (0..t).rev() {
            let ti = tape.time_index[k];
            let keep_row = |bi: usize| tape.keep.as_ref().is_none_or(|kv| kv[k * b + bi]);
            // 1. The output of step k.
            for bi in 0..b {
                let row = bi * u..(bi + 1) * u;
                let go = gseq
                    .as_ref()
                    .map(|gs| &gs[(bi * t + k) * u..(bi * t + k + 1) * u]);
                if keep_row(bi) {
                    for j in row.clone() {
                        dstate[0][j] += dlast[j] + go.map_or(0.0, |g| g[j - bi * u]);
                        dlast[j] = 0.0;
                    }
                } else if !self.opts.zero_output_for_mask {
                    if let Some(go) = go {
                        for j in row.clone() {
                            dlast[j] += go[j - bi * u];
                        }
                    }
                }
            }
            // 2. Through the cell: pre-activation gradients of step k.
            let pre = &tape.pre[k * bg..(k + 1) * bg];
            let gates = &tape.gates[k * bg..(k + 1) * bg];
            let h_prev = &tape.states[0][k * bu..(k + 1) * bu];
            let dx_t = &mut dxp[ti * bg..(ti + 1) * bg];
            let dr_t: &mut [f32] = if shared {
                &mut []
            } else {
                &mut drec_all[k * bg..(k + 1) * bg]
            };
            for bi in 0..b {
                let (gr, ur) = (bi * g..(bi + 1) * g, bi * u..(bi + 1) * u);
                if !keep_row(bi) {
                    dx_t[gr.clone()].fill(0.0);
                    if !shared {
                        dr_t[gr].fill(0.0);
                    }
                    for s in 0..n {
                        let (src, dst) = (&dstate[s], &mut dprev[s]);
                        dst[ur.clone()].copy_from_slice(&src[ur.clone()]);
                    }
                    continue;
                }
                let (p, a) = (&pre[gr.clone()], &gates[gr.clone()]);
                let dh = &dstate[0][ur.clone()];
                let hp = &h_prev[ur.clone()];
                match cell.kind {
                    CellKind::Lstm => {
                        let c_prev = &tape.states[1][k * bu..(k + 1) * bu][ur.clone()];
                        let c = &tape.states[1][(k + 1) * bu..(k + 2) * bu][ur.clone()];
                        let dc_in = &dstate[1][ur.clone()];
                        let dz = &mut dx_t[gr.clone()];
                        tc_row.copy_from_slice(c);
                        act.apply_row(&mut tc_row);
                        let row = LstmRow {
                            pre: p,
                            gates: a,
                            c_prev,
                            c,
                            tc: &tc_row,
                            dh,
                            dc_in,
                        };
                        let dc_prev = &mut dprev[1][ur.clone()];
                        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
                            // Keras' default: the derivatives from the outputs, in a loop that vectorises.
                            row.backward(TANH_GRAD, SIGMOID_GRAD, dz, dc_prev);
                        } else {
                            row.backward(
                                |x, y| act.grad_scalar(x, y),
                                |x, y| ract.grad_scalar(x, y),
                                dz,
                                dc_prev,
                            );
                        }
                        if !shared {
                            dr_t[gr.clone()].copy_from_slice(dz);
                        }
                        dprev[0][ur.clone()].fill(0.0);
                    }
                    CellKind::Gru { reset_after } => {
                        let rec = &tape.rec[k * bg..(k + 1) * bg][gr.clone()];
                        let (dz, dr) = (&mut dx_t[gr.clone()], &mut dr_t[gr.clone()]);
                        let row = GruRow {
                            pre: p,
                            gates: a,
                            rec,
                            h_prev: hp,
                            dh,
                        };
                        let dh_prev = &mut dprev[0][ur.clone()];
                        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
                            row.backward(TANH_GRAD, SIGMOID_GRAD, reset_after, dz, dr, dh_prev);
                        } else {
                            row.backward(
                                |x, y| act.grad_scalar(x, y),
                                |x, y| ract.grad_scalar(x, y),
                                reset_after,
                                dz,
                                dr,
                                dh_prev,
                            );
                        }
                    }
                    CellKind::Simple => {
                        let dz = &mut dx_t[gr.clone()];
                        act.backprop_row(p, a, dh, dz);
                        if !shared {
                            dr_t[gr.clone()].copy_from_slice(dz);
                        }
                        dprev[0][ur.clone()].fill(0.0);
                    }
                }
            }
            // GRU without reset_after: the reset gate multiplies h before the product, so its gradient needs
            // d(r*h) = dpre_h @ R_hᵀ for the whole batch first.
            if let CellKind::Gru { reset_after: false } = cell.kind {
                drh.fill(0.0);
                match &rht_packed {
                    Some(pk) => gemm_acc_packed::<true>(&dr_t[2 * u..], g, pk, &mut drh, u, b),
                    None => general_mat_mul(
                        1.0,
                        &view2(dr_t, b, g).slice(ndarray::s![.., 2 * u..]),
                        &rk.slice(ndarray::s![.., 2 * u..]).t(),
                        0.0,
                        &mut view2_mut(&mut drh, b, u),
                    ),
                }
                for bi in 0..b {
                    if !keep_row(bi) {
                        continue;
                    }
                    let (gr, ur) = (bi * g..(bi + 1) * g, bi * u..(bi + 1) * u);
                    let a = &gates[gr.clone()];
                    let p = &pre[gr.clone()];
                    for j in 0..u {
                        let r = a[u + j];
                        let mh = m_h(bi * u + j);
                        let d_r = drh[bi * u + j] * (h_prev[bi * u + j] * mh);
                        let dzr = d_r * ract.grad_scalar(p[u + j], r);
                        dx_t[bi * g + u + j] = dzr;
                        dr_t[bi * g + u + j] = dzr;
                        dprev[0][bi * u + j] += drh[bi * u + j] * r * mh;
                    }
                    let _ = ur;
                }
            }
            let dr_t: &[f32] = if shared {
                &dxp[ti * bg..(ti + 1) * bg]
            } else {
                dr_t
            };
            // 3. Through the recurrent product: dh_prev += dREC_k · Rᵀ (z and r blocks only for GRU v1).
            match rec_masks {
                None if rt_packed.is_some() => {
                    let pk = rt_packed.as_ref().expect("checked");
                    gemm_acc_packed::<true>(dr_t, g, pk, &mut dprev[0], u, b);
                }
                None => {
                    let mut dp0 = view2_mut(&mut dprev[0], b, u);
                    general_mat_mul(
                        1.0,
                        &view2(dr_t, b, g).slice(ndarray::s![.., ..cols]),
                        &rk.slice(ndarray::s![.., ..cols]).t(),
                        1.0,
                        &mut dp0,
                    );
                }
                Some(ms) => {
                    // Recurrent dropout: block j saw h ⊙ m_j.
                    for j in 0..cols / u {
                        general_mat_mul(
                            1.0,
                            &view2(dr_t, b, g).slice(ndarray::s![.., j * u..(j + 1) * u]),
                            &rk.slice(ndarray::s![.., j * u..(j + 1) * u]).t(),
                            0.0,
                            &mut view2_mut(&mut tmp, b, u),
                        );
                        let m = &ms[j.min(ms.len() - 1)];
                        for ((d, &t), &mv) in dprev[0].iter_mut().zip(&tmp).zip(m.iter()) {
                            *d += t * mv;
                        }
                    }
                }
            }
            // Masked rows carried their state: their gradient was copied above and the product added 0.
            std::mem::swap(&mut dstate, &mut dprev);
        }

        // Weight gradients: three large products over all steps.
        let x2 = &tape.x2;
        let dxp_m = view2(&dxp, t * b, g);
        let drec: &[f32] = if shared { &dxp } else { &drec_all };
        let hprev_all = view2(&tape.states[0][..t * bu], t * b, u);
        let mut dk = Array2::<f32>::zeros((d, g));
        let mut dr = Array2::<f32>::zeros((u, g));
        // Xᵀ dZ and Hᵀ dZ with the same dZ (LSTM, SimpleRNN, no dropout): dZ packed once for both.
        let both = shared
            && in_masks.is_none()
            && rec_masks.is_none()
            && Packed::worthwhile(KC.min(t * b), g);
        if both {
            gemm_tn_acc_shared(
                &mut [
                    TnLhs {
                        a: x2.as_slice().expect("standard layout"),
                        lda: d,
                        m: d,
                        out: dk.as_slice_mut().expect("standard layout"),
                        ldo: g,
                    },
                    TnLhs {
                        a: &tape.states[0][..t * bu],
                        lda: u,
                        m: u,
                        out: dr.as_slice_mut().expect("standard layout"),
                        ldo: g,
                    },
                ],
                &dxp,
                g,
                t * b,
                g,
            );
        }
        // Rows are time-major: row r is sample r % B, whose dropout mask row is r % B.
        let masked_rows = |a: ArrayView2<'_, f32>, m: &[f32]| -> Array2<f32> {
            let w = a.ncols();
            Array2::from_shape_fn(a.raw_dim(), |(r, c)| a[[r, c]] * m[(r % b) * w + c])
        };
        // `aᵀ b` over all steps (`a: (T·B, m)`, `b`: columns `cols` of a `(T·B, ldb)` matrix) into `out`: rnnlab's
        // packed kernel where it pays, ndarray's GEMM for small layers (the same bits on CPUs with FMA).
        let tn = |a: ArrayView2<'_, f32>,
                  b: &[f32],
                  ldb: usize,
                  cols: std::ops::Range<usize>,
                  out: &mut ArrayViewMut2<'_, f32>| {
            let (rows, m, n) = (a.nrows(), a.ncols(), cols.len());
            match (a.as_slice(), out.as_slice_mut()) {
                (Some(av), Some(o)) if Packed::worthwhile(KC.min(rows), n) => {
                    gemm_tn_acc(av, m, &b[cols.start..], ldb, o, n, m, rows, n)
                }
                _ => general_mat_mul(
                    1.0,
                    &a.t(),
                    &view2(b, rows, ldb).slice(ndarray::s![.., cols]),
                    0.0,
                    out,
                ),
            }
        };
        match in_masks {
            None if both => {}
            None => tn(x2.view(), &dxp, g, 0..g, &mut dk.view_mut()),
            Some(ms) => {
                for (mi, m) in ms.iter().enumerate() {
                    let cols = if ms.len() == 1 {
                        0..g
                    } else {
                        mi * u..(mi + 1) * u
                    };
                    let xm = masked_rows(x2.view(), m);
                    general_mat_mul(
                        1.0,
                        &xm.t(),
                        &dxp_m.slice(ndarray::s![.., cols.clone()]),
                        0.0,
                        &mut dk.slice_mut(ndarray::s![.., cols]),
                    );
                }
            }
        }
        let drec_m = view2(drec, t * b, g);
        if let Some(ms) = rec_masks {
            // Recurrent dropout: block j's product used h ⊙ m_j (GRU v1's h block: r ⊙ h ⊙ m_h, below).
            let blocks = match cell.kind {
                CellKind::Gru { reset_after: false } => 2,
                _ => g / u,
            };
            for j in 0..blocks {
                let hm = masked_rows(hprev_all, &ms[j.min(ms.len() - 1)]);
                general_mat_mul(
                    1.0,
                    &hm.t(),
                    &drec_m.slice(ndarray::s![.., j * u..(j + 1) * u]),
                    0.0,
                    &mut dr.slice_mut(ndarray::s![.., j * u..(j + 1) * u]),
                );
            }
        }
        match cell.kind {
            CellKind::Gru { reset_after: false } => {
                if rec_masks.is_none() {
                    let mut dr_zr = dr.slice_mut(ndarray::s![.., ..2 * u]);
                    tn(hprev_all, drec, g, 0..2 * u, &mut dr_zr);
                }
                // R_h multiplied r * h_prev.
                let mut rh = crate::pool::zeroed(t * bu);
                for k in 0..t {
                    for bi in 0..b {
                        for j in 0..u {
                            rh[k * bu + bi * u + j] = tape.gates[k * bg + bi * g + u + j]
                                * (tape.states[0][k * bu + bi * u + j] * m_h(bi * u + j));
                        }
                    }
                }
                let mut dr_h = dr.slice_mut(ndarray::s![.., 2 * u..]);
                tn(view2(&rh, t * b, u), drec, g, 2 * u..g, &mut dr_h);
                crate::pool::recycle(rh);
            }
            _ => {
                if rec_masks.is_none() && !both {
                    tn(hprev_all, drec, g, 0..g, &mut dr.view_mut())
                }
            }
        }
        let mut weights = vec![dk.into_dyn(), dr.into_dyn()];
        if w.bias.is_some() {
            let db_in = dxp_m.sum_axis(Axis(0));
            let db = match cell.kind {
                CellKind::Gru { reset_after: true } => {
                    let db_rec = drec_m.sum_axis(Axis(0));
                    ndarray::stack(Axis(0), &[db_in.view(), db_rec.view()])
                        .expect("same length")
                        .into_dyn()
                }
                _ => db_in.into_dyn(),
            };
            weights.push(db);
        }
        // Input gradient: dX = dXP · Kᵀ, back from time-major (T, B, D) to (B, T, D).
        let mut dx2 = Array2::from_shape_vec((t * b, d), crate::pool::zeroed(t * b * d))
            .expect("T*B*D values");
        match in_masks {
            // The transposed kernel packed once (the fused order, as ndarray's GEMM).
            None if Packed::worthwhile(g, d) => {
                let kt = w.kernel.t().as_standard_layout().into_owned();
                let pk = Packed::new(kt.as_slice().expect("standard layout"), d, g, d);
                let out = dx2.as_slice_mut().expect("standard layout");
                gemm_acc_packed::<true>(&dxp, g, &pk, out, d, t * b);
            }
            None => general_mat_mul(1.0, &dxp_m, &w.kernel.t(), 0.0, &mut dx2),
            Some(ms) => {
                for (mi, m) in ms.iter().enumerate() {
                    let cols = if ms.len() == 1 {
                        0..g
                    } else {
                        mi * u..(mi + 1) * u
                    };
                    let mut part = Array2::<f32>::zeros((t * b, d));
                    general_mat_mul(
                        1.0,
                        &dxp_m.slice(ndarray::s![.., cols.clone()]),
                        &w.kernel.slice(ndarray::s![.., cols]).t(),
                        0.0,
                        &mut part,
                    );
                    dx2 += &masked_rows(part.view(), m);
                }
            }
        }
        let dx_tm = dx2.into_shape_with_order((t, b, d)).expect("T*B*D values");
        let dx: Array3<f32> = dx_tm
            .view()
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned();
        crate::pool::recycle(dx_tm.into_raw_vec_and_offset().0);
        crate::pool::recycle(dxp);
        crate::pool::recycle(drec_all);
        let d_initial = if tape.n_initial > 0 {
            dstate
                .into_iter()
                .map(|s| {
                    Array2::from_shape_vec((b, u), s)
                        .expect("B*U values")
                        .into_dyn()
                })
                .collect()
        } else {
            Vec::new()
        };
        RnnGrads {
            dx: dx.into_dyn(),
            d_initial,
            weights,
        }
    }
}

/// `tanh'` from the output, as [`Activation::grad_scalar`] computes it.
const TANH_GRAD: fn(f32, f32) -> f32 = |_, y| 1.0 - y * y;
/// `sigmoid'` from the output, as [`Activation::grad_scalar`] computes it.
const SIGMOID_GRAD: fn(f32, f32) -> f32 = |_, y| y * (1.0 - y);

/// One batch row of an LSTM step on the tape (slices of U values; `pre` and `gates` hold the four blocks
/// i, f, c, o of the pre-activations and activations).
struct LstmRow<'a> {
    pre: &'a [f32],
    gates: &'a [f32],
    c_prev: &'a [f32],
    c: &'a [f32],
    /// `act(c)`.
    tc: &'a [f32],
    dh: &'a [f32],
    dc_in: &'a [f32],
}

impl LstmRow<'_> {
    /// Pre-activation gradients `dz` (4U) and the gradient into `c_prev`, given the derivatives of the
    /// activation and the recurrent activation as functions of (input, output). Generic so the common pair gets
    /// its own loop without a `match` per value: the same operations, so the same bits.
    #[inline(always)]
    fn backward(
        &self,
        ga: impl Fn(f32, f32) -> f32,
        gr: impl Fn(f32, f32) -> f32,
        dz: &mut [f32],
        dc_prev: &mut [f32],
    ) {
        let u = self.c.len();
        let (pi, rest) = self.pre.split_at(u);
        let (pf, rest) = rest.split_at(u);
        let (pc, po) = rest.split_at(u);
        let (ai, rest) = self.gates.split_at(u);
        let (af, rest) = rest.split_at(u);
        let (ac, ao) = rest.split_at(u);
        let (dzi, rest) = dz.split_at_mut(u);
        let (dzf, rest) = rest.split_at_mut(u);
        let (dzc, dzo) = rest.split_at_mut(u);
        for j in 0..u {
            let (i, f, cc, o) = (ai[j], af[j], ac[j], ao[j]);
            let tc = self.tc[j];
            let dc = self.dc_in[j] + self.dh[j] * o * ga(self.c[j], tc);
            dzi[j] = dc * cc * gr(pi[j], i);
            dzf[j] = dc * self.c_prev[j] * gr(pf[j], f);
            dzc[j] = dc * i * ga(pc[j], cc);
            dzo[j] = self.dh[j] * tc * gr(po[j], o);
            dc_prev[j] = dc * f;
        }
    }
}

/// One batch row of a GRU step on the tape (blocks z, r, h of U values each in `pre`, `gates`, `rec`).
struct GruRow<'a> {
    pre: &'a [f32],
    gates: &'a [f32],
    /// The recurrent term `h R (+ b)` (its h block is used with `reset_after`).
    rec: &'a [f32],
    h_prev: &'a [f32],
    dh: &'a [f32],
}

impl GruRow<'_> {
    /// Pre-activation gradients of the input (`dz`) and recurrent (`dr`) terms and the direct gradient into
    /// `h_prev`, generic over the derivatives as [`LstmRow::backward`].
    #[inline(always)]
    fn backward(
        &self,
        ga: impl Fn(f32, f32) -> f32,
        gr: impl Fn(f32, f32) -> f32,
        reset_after: bool,
        dz: &mut [f32],
        dr: &mut [f32],
        dh_prev: &mut [f32],
    ) {
        let u = self.h_prev.len();
        let (pz, rest) = self.pre.split_at(u);
        let (pr, ph) = rest.split_at(u);
        let (az, rest) = self.gates.split_at(u);
        let (ar, ah) = rest.split_at(u);
        let rec_h = &self.rec[2 * u..3 * u];
        let (dzz, rest) = dz.split_at_mut(u);
        let (dzr, dzh) = rest.split_at_mut(u);
        let (drz, rest) = dr.split_at_mut(u);
        let (drr, drh) = rest.split_at_mut(u);
        for j in 0..u {
            let (z, r, hh) = (az[j], ar[j], ah[j]);
            let dzg = self.dh[j] * (self.h_prev[j] - hh);
            let dph = self.dh[j] * (1.0 - z) * ga(ph[j], hh);
            dzh[j] = dph;
            let d_r = if reset_after {
                drh[j] = dph * r;
                dph * rec_h[j]
            } else {
                // d(r*h_prev) needs dph @ R_hᵀ: computed for the whole batch by the caller.
                drh[j] = dph;
                0.0
            };
            dzz[j] = dzg * gr(pz[j], z);
            dzr[j] = d_r * gr(pr[j], r);
            drz[j] = dzz[j];
            drr[j] = dzr[j];
            dh_prev[j] = self.dh[j] * z;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Finite-difference checks of backpropagation with dropout and recurrent dropout inside the cell. The masks
    //! are random, so they are reproduced for every evaluation: a seeded layer draws call k's masks from
    //! (seed, k), and the test rewinds k. (Models with dropout cannot be checked through `Model::gradients` in
    //! tests/gradients.rs for that reason.)
    use super::*;
    use crate::layers::{CallInputs, TrainCtx};
    use ndarray::{ArrayD, IxDyn};

    use crate::test_values::values;

    /// A training call with the masks of call 0 (the test rewinds the seeded layer's call count).
    fn call0(m: &mut RnnModule, x: &ArrayD<f32>) -> (crate::layers::Forward, RnnTape) {
        m.dropout_calls = 0;
        let mut tc = TrainCtx {
            training: true,
            rng: rand::rngs::StdRng::seed_from_u64(0),
        };
        let call = CallInputs {
            inputs: vec![x.view()],
            initial_state: vec![],
            mask: None,
        };
        m.forward_train_call("t", call, &mut tc).unwrap()
    }

    /// L = Σ seq ⊙ G + Σ states ⊙ G_s.
    fn loss(m: &mut RnnModule, x: &ArrayD<f32>, g: &[ArrayD<f32>]) -> f64 {
        let (f, _) = call0(m, x);
        f.outputs
            .iter()
            .zip(g)
            .map(|(o, g)| {
                o.iter()
                    .zip(g.iter())
                    .map(|(a, b)| f64::from(a * b))
                    .sum::<f64>()
            })
            .sum()
    }

    fn check(kind: CellKind, dropout: f32, recurrent_dropout: f32) {
        let (b, t, d, u) = (3, 4, 3, 3);
        let mut m = RnnModule::new(kind, u);
        m.opts.return_sequences = true;
        m.opts.return_state = true;
        m.cell.cfg.dropout = dropout;
        m.cell.cfg.recurrent_dropout = recurrent_dropout;
        m.cell.cfg.seed = Some(5);
        m.cell.build("t", d).unwrap();
        let specs = m.cell.weight_specs("");
        let ws: Vec<ArrayD<f32>> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.shape.iter().product();
                ArrayD::from_shape_vec(
                    IxDyn(&s.shape),
                    values(n, 10 + i as u64).iter().map(|v| v * 0.6).collect(),
                )
                .unwrap()
            })
            .collect();
        m.cell.assign(&mut ws.clone().into_iter());
        let x = ArrayD::from_shape_vec(IxDyn(&[b, t, d]), values(b * t * d, 1)).unwrap();
        let n_out = 1 + m.cell.n_states();
        let g: Vec<ArrayD<f32>> = (0..n_out)
            .map(|i| {
                let shape: Vec<usize> = if i == 0 { vec![b, t, u] } else { vec![b, u] };
                let n = shape.iter().product();
                ArrayD::from_shape_vec(IxDyn(&shape), values(n, 50 + i as u64)).unwrap()
            })
            .collect();
        // Analytic.
        let (_, tape) = call0(&mut m, &x);
        let masks = tape.masks.clone().unwrap();
        assert!(
            masks
                .input
                .iter()
                .chain(&masks.rec)
                .flatten()
                .any(|v| *v == 0.0),
            "some values dropped"
        );
        let states: Vec<Option<ArrayD<f32>>> = g[1..].iter().cloned().map(Some).collect();
        let r = m.backward_tape(&tape, Some(&g[0]), &states);
        let eps = 1e-2f32;
        let tol = |an: f32| 3e-4 + 3e-3 * an.abs();
        // Weights.
        for (wi, w) in ws.iter().enumerate() {
            for k in 0..w.len() {
                let mut at = |delta: f32| {
                    let mut v = ws.clone();
                    v[wi].as_slice_mut().unwrap()[k] += delta;
                    m.cell.assign(&mut v.into_iter());
                    loss(&mut m, &x, &g)
                };
                let fd = ((at(eps) - at(-eps)) / (2.0 * f64::from(eps))) as f32;
                let an = r.weights[wi].as_slice().unwrap()[k];
                assert!(
                    (fd - an).abs() <= tol(an),
                    "{kind:?} weight {wi}[{k}]: analytic {an}, fd {fd}"
                );
            }
        }
        m.cell.assign(&mut ws.clone().into_iter());
        // Inputs.
        for k in 0..x.len() {
            let mut at = |delta: f32| {
                let mut xv = x.clone();
                xv.as_slice_mut().unwrap()[k] += delta;
                loss(&mut m, &xv, &g)
            };
            let fd = ((at(eps) - at(-eps)) / (2.0 * f64::from(eps))) as f32;
            let an = r.dx.as_slice().unwrap()[k];
            assert!(
                (fd - an).abs() <= tol(an),
                "{kind:?} input [{k}]: analytic {an}, fd {fd}"
            );
        }
    }

    #[test]
    fn gradients_with_dropout_and_recurrent_dropout() {
        for kind in [
            CellKind::Lstm,
            CellKind::Gru { reset_after: true },
            CellKind::Gru { reset_after: false },
            CellKind::Simple,
        ] {
            check(kind, 0.3, 0.0); // one input mask for all gates
            check(kind, 0.0, 0.4); // recurrent masks only
            check(kind, 0.3, 0.4); // a mask per gate block for both
        }
    }

    #[test]
    fn seeded_masks_repeat_per_call_and_inference_ignores_them() {
        let mut m = RnnModule::new(CellKind::Lstm, 2);
        m.cell.cfg.dropout = 0.5;
        m.cell.cfg.seed = Some(3);
        let mut tc = TrainCtx {
            training: true,
            rng: rand::rngs::StdRng::seed_from_u64(0),
        };
        let a = m.draw_dropout_masks(4, 3, &mut tc).unwrap();
        let b = m.draw_dropout_masks(4, 3, &mut tc).unwrap();
        assert_ne!(a.input, b.input, "a new mask for every call");
        m.dropout_calls = 0;
        assert_eq!(
            m.draw_dropout_masks(4, 3, &mut tc).unwrap().input,
            a.input,
            "same seed and call, same mask"
        );
        assert!(
            a.input[0].iter().all(|v| *v == 0.0 || *v == 2.0),
            "kept values scaled by 1/(1-0.5)"
        );
    }
}
