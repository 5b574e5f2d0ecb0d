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

use super::cell::{Cell, CellKind, Scratch};
use super::{Mask, RnnModule};
use crate::activations::Activation;
use crate::error::{Error, Result};

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
                let mut v = vec![0.0; (t + 1) * b * u];
                v[..b * u].copy_from_slice(p);
                v
            })
            .collect();
        self.pre = vec![0.0; t * b * g];
        self.gates = vec![0.0; t * b * g];
        self.rec = if matches!(cell.kind, CellKind::Gru { .. }) {
            vec![0.0; t * b * g]
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
    /// Refuses configurations whose training is not implemented, before any work is done.
    pub(crate) fn check_trainable(&self, ctx: &str, training: bool) -> Result<()> {
        let c = &self.cell.cfg;
        if training && (c.dropout > 0.0 || c.recurrent_dropout > 0.0) {
            return Err(Error::Unsupported(format!(
                "{ctx}: training with dropout={} / recurrent_dropout={} inside the recurrent layer is not \
                 implemented yet; set both to 0 and put a Dropout layer before or after it",
                c.dropout, c.recurrent_dropout
            )));
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
        let mut dxp = vec![0.0f32; t * bg]; // by original time index, like the projection
        let mut drec_all = vec![0.0f32; t * bg]; // by processing step, like the recorded states
        let mut dprev: Vec<Vec<f32>> = vec![vec![0.0; bu]; n];
        let mut drh = vec![0.0f32; bu]; // GRU reset_after=false: gradient of (r * h_prev)

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
            let dr_t = &mut drec_all[k * bg..(k + 1) * bg];
            for bi in 0..b {
                let (gr, ur) = (bi * g..(bi + 1) * g, bi * u..(bi + 1) * u);
                if !keep_row(bi) {
                    dx_t[gr.clone()].fill(0.0);
                    dr_t[gr].fill(0.0);
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
                        for j in 0..u {
                            let (i, f, cc, o) = (a[j], a[u + j], a[2 * u + j], a[3 * u + j]);
                            let tc = act.apply_scalar(c[j]);
                            let dc = dc_in[j] + dh[j] * o * act.grad_scalar(c[j], tc);
                            dz[j] = dc * cc * ract.grad_scalar(p[j], i);
                            dz[u + j] = dc * c_prev[j] * ract.grad_scalar(p[u + j], f);
                            dz[2 * u + j] = dc * i * act.grad_scalar(p[2 * u + j], cc);
                            dz[3 * u + j] = dh[j] * tc * ract.grad_scalar(p[3 * u + j], o);
                            dprev[1][bi * u + j] = dc * f;
                        }
                        dr_t[gr.clone()].copy_from_slice(dz);
                        dprev[0][ur.clone()].fill(0.0);
                    }
                    CellKind::Gru { reset_after } => {
                        let rec = &tape.rec[k * bg..(k + 1) * bg][gr.clone()];
                        let (dz, dr) = (&mut dx_t[gr.clone()], &mut dr_t[gr.clone()]);
                        for j in 0..u {
                            let (z, r, hh) = (a[j], a[u + j], a[2 * u + j]);
                            let dzg = dh[j] * (hp[j] - hh);
                            let dph = dh[j] * (1.0 - z) * act.grad_scalar(p[2 * u + j], hh);
                            dz[2 * u + j] = dph;
                            let d_r = if reset_after {
                                dr[2 * u + j] = dph * r;
                                dph * rec[2 * u + j]
                            } else {
                                // d(r*h_prev) needs dph @ R_hᵀ: computed for the whole batch below.
                                dr[2 * u + j] = dph;
                                0.0
                            };
                            dz[j] = dzg * ract.grad_scalar(p[j], z);
                            dz[u + j] = d_r * ract.grad_scalar(p[u + j], r);
                            dr[j] = dz[j];
                            dr[u + j] = dz[u + j];
                            dprev[0][bi * u + j] = dh[j] * z;
                        }
                    }
                    CellKind::Simple => {
                        let dz = &mut dx_t[gr.clone()];
                        act.backprop_row(p, a, dh, dz);
                        dr_t[gr.clone()].copy_from_slice(dz);
                        dprev[0][ur.clone()].fill(0.0);
                    }
                }
            }
            // GRU without reset_after: the reset gate multiplies h before the product, so its gradient needs
            // d(r*h) = dpre_h @ R_hᵀ for the whole batch first.
            if let CellKind::Gru { reset_after: false } = cell.kind {
                drh.fill(0.0);
                general_mat_mul(
                    1.0,
                    &view2(dr_t, b, g).slice(ndarray::s![.., 2 * u..]),
                    &rk.slice(ndarray::s![.., 2 * u..]).t(),
                    0.0,
                    &mut view2_mut(&mut drh, b, u),
                );
                for bi in 0..b {
                    if !keep_row(bi) {
                        continue;
                    }
                    let (gr, ur) = (bi * g..(bi + 1) * g, bi * u..(bi + 1) * u);
                    let a = &gates[gr.clone()];
                    let p = &pre[gr.clone()];
                    for j in 0..u {
                        let r = a[u + j];
                        let d_r = drh[bi * u + j] * h_prev[bi * u + j];
                        let dzr = d_r * ract.grad_scalar(p[u + j], r);
                        dx_t[bi * g + u + j] = dzr;
                        dr_t[bi * g + u + j] = dzr;
                        dprev[0][bi * u + j] += drh[bi * u + j] * r;
                    }
                    let _ = ur;
                }
            }
            // 3. Through the recurrent product: dh_prev += dREC_k · Rᵀ (z and r blocks only for GRU v1).
            let cols = match cell.kind {
                CellKind::Gru { reset_after: false } => 2 * u,
                _ => g,
            };
            let mut dp0 = view2_mut(&mut dprev[0], b, u);
            general_mat_mul(
                1.0,
                &view2(dr_t, b, g).slice(ndarray::s![.., ..cols]),
                &rk.slice(ndarray::s![.., ..cols]).t(),
                1.0,
                &mut dp0,
            );
            // Masked rows carried their state: their gradient was copied above and the product added 0.
            std::mem::swap(&mut dstate, &mut dprev);
        }

        // Weight gradients: three large products over all steps.
        let x2 = &tape.x2;
        let dxp_m = view2(&dxp, t * b, g);
        let mut dk = Array2::<f32>::zeros((d, g));
        general_mat_mul(1.0, &x2.t(), &dxp_m, 0.0, &mut dk);
        let hprev_all = view2(&tape.states[0][..t * bu], t * b, u);
        let drec_m = view2(&drec_all, t * b, g);
        let mut dr = Array2::<f32>::zeros((u, g));
        match cell.kind {
            CellKind::Gru { reset_after: false } => {
                general_mat_mul(
                    1.0,
                    &hprev_all.t(),
                    &drec_m.slice(ndarray::s![.., ..2 * u]),
                    0.0,
                    &mut dr.slice_mut(ndarray::s![.., ..2 * u]),
                );
                // R_h multiplied r * h_prev.
                let mut rh = vec![0.0f32; t * bu];
                for k in 0..t {
                    for bi in 0..b {
                        for j in 0..u {
                            rh[k * bu + bi * u + j] = tape.gates[k * bg + bi * g + u + j]
                                * tape.states[0][k * bu + bi * u + j];
                        }
                    }
                }
                general_mat_mul(
                    1.0,
                    &view2(&rh, t * b, u).t(),
                    &drec_m.slice(ndarray::s![.., 2 * u..]),
                    0.0,
                    &mut dr.slice_mut(ndarray::s![.., 2 * u..]),
                );
            }
            _ => general_mat_mul(1.0, &hprev_all.t(), &drec_m, 0.0, &mut dr),
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
        let mut dx2 = Array2::<f32>::zeros((t * b, d));
        general_mat_mul(1.0, &dxp_m, &w.kernel.t(), 0.0, &mut dx2);
        let dx = dx2
            .into_shape_with_order((t, b, d))
            .expect("T*B*D values")
            .permuted_axes([1, 0, 2]);
        let dx: Array3<f32> = dx.as_standard_layout().into_owned();
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
