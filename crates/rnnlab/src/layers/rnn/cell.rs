//! The recurrent cells: one time step of LSTM, GRU (both `reset_after` forms) and SimpleRNN, with Keras' gate
//! order and weight layout (keras-spec.md §1). A cell steps; the layer in `mod.rs` loops.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn};
use serde_json::{json, Map, Value};

use super::kernels::{
    gemm_acc, gemm_acc_packed_dir, gemm_acc_packed_part, gemm_set_packed_dir, zero_rows, Packed,
    COLS, KC,
};
use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::helper::Helper;
use crate::initializers::Initializer;
use crate::layers::WeightSpec;

/// Which recurrence a cell computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// Gates i, f, c, o; states [h, c].
    Lstm,
    /// Gates z, r, h; state `[h]`. `reset_after = true` is the Keras 3 / CuDNN form with a (2, 3U) bias.
    Gru { reset_after: bool },
    /// `h = act(x K + b + h R)`.
    Simple,
}

/// The arguments every cell shares, with Keras' defaults.
#[derive(Clone, Debug)]
pub(crate) struct CellConfig {
    pub units: usize,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub recurrent_initializer: Initializer,
    pub bias_initializer: Initializer,
    pub unit_forget_bias: bool,
    pub dropout: f32,
    pub recurrent_dropout: f32,
    pub seed: Option<u64>,
}

impl CellConfig {
    pub(crate) fn new(units: usize) -> Self {
        CellConfig {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            recurrent_initializer: Initializer::orthogonal(),
            bias_initializer: Initializer::zeros(),
            unit_forget_bias: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
        }
    }
}

/// A cell's weights, Keras layout: kernel (D, G), recurrent_kernel (U, G), bias (G,) or (2, G) for GRU reset_after.
#[derive(Clone, Debug)]
pub(crate) struct CellWeights {
    pub kernel: Array2<f32>,
    pub recurrent: Array2<f32>,
    pub bias: Option<ArrayD<f32>>,
    /// The kernels packed for the blocked products, made at the first call and kept with these weights
    /// (weights are only ever replaced whole, which drops it). At batch 1 packing cost more than a step.
    packed: std::sync::OnceLock<PackedWeights>,
}

impl CellWeights {
    fn new(kernel: Array2<f32>, recurrent: Array2<f32>, bias: Option<ArrayD<f32>>) -> Self {
        CellWeights {
            kernel,
            recurrent,
            bias,
            packed: std::sync::OnceLock::new(),
        }
    }
}

/// [`Packed`] copies of the kernels that are large enough to gain from it.
#[derive(Clone, Debug)]
pub(crate) struct PackedWeights {
    /// The input kernel (D, G).
    pub kernel: Option<Packed>,
    /// The recurrent kernel: all G columns (GRU with `reset_after = false`: the z and r columns).
    pub rec: Option<Packed>,
    /// GRU `reset_after = false`: the h columns of the recurrent kernel.
    pub rec_h: Option<Packed>,
    /// Whether every value of the recurrent kernel is finite, so that a zero state's `h R` is zero (`0 · inf` is
    /// NaN, which skipping the product would lose): see [`Scratch::zero_h`].
    pub rec_finite: bool,
    /// Which way the last step ran its products (see [`Cell::step`]); the next call starts the other way and its
    /// steps alternate from there. Kept with the weights, not per call, so that one-step calls (a stateful layer
    /// fed a step at a time) alternate too.
    pub flip: Flip,
}

/// The direction of the last step of the last call; shared by the threads of a split batch (they may race on it:
/// it decides only the order in which the columns are visited, never a result).
#[derive(Debug, Default)]
pub(crate) struct Flip(std::sync::atomic::AtomicBool);

impl Flip {
    /// The direction a call's first step takes: the other one than the last step's.
    pub(crate) fn start(&self) -> bool {
        !self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records the direction of a call's last step.
    pub(crate) fn finish(&self, last: bool) {
        self.0.store(last, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Clone for Flip {
    fn clone(&self) -> Self {
        Flip::default()
    }
}

/// The input of one [`Cell::step`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum StepInput<'a> {
    /// The projection `x_t K (+ b)`: `(B, G)`, rows this many values apart.
    Projected(&'a [f32], usize),
    /// The step's input rows, row `i` at `x[i * lda..]`, projected by the step straight into the gates
    /// ([`Cell::projects_into_gates`]).
    Rows(&'a [f32], usize),
}

/// Per-call scratch buffers, allocated once per call and reused at every step.
pub(crate) struct Scratch {
    /// (B, G): pre-activations, then the activated gates (what a trace records).
    pub gates: Vec<f32>,
    /// (B, G): the recurrent product `h @ R` (plus GRU's recurrent bias).
    pub rec: Vec<f32>,
    /// (B, U): GRU's `r * (h R_h + b_h)` or `r * h`.
    pub aux: Vec<f32>,
    /// (B, G): the pre-activations, kept only when training records them for the backward pass.
    pub pre: Option<Vec<f32>>,
    /// (B, U): `h ⊙ mask` for one gate block, used only with recurrent dropout.
    pub hm: Vec<f32>,
    /// The helper thread that takes half of the columns of each packed product, held for the whole call (batch 1
    /// with two threads or more: see `RnnModule::run`).
    pub helper: Option<std::sync::MutexGuard<'static, Helper>>,
    /// The step's state `h` is all zeros (a call's first step from Keras' default zero state) and the recurrent
    /// kernel is finite ([`PackedWeights::rec_finite`]): every product with `h` is then a sum of zeros and is
    /// skipped. Same bits: the products add their chains to sums that are never -0 (they start at +0 and add a
    /// chain, or a chain then the bias), and `v + ±0` is `v` for any `v` but -0. A one-step call at batch 1 then
    /// reads half the weights (LSTM(256): 1 MB instead of 2, which does not fit beside them in a 1 MB L2).
    pub zero_h: bool,
}

/// Multiply-adds per step of `h R` from which batch 1 splits its products with the helper thread.
const SPLIT_MIN: usize = 64 * 1024;

/// `f(panels, out)` for the panels `0..panels` of a product at batch 1 whose output row is `out`: on this thread,
/// or split in two by columns between this thread and the helper (`f` then gets each half of the panels with the
/// matching part of `out`, which starts at the half's first column). The bits do not depend on the split.
fn by_columns(
    helper: Option<&mut Helper>,
    panels: usize,
    out: &mut [f32],
    f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) {
    match helper {
        None => f(0..panels, out),
        Some(h) => {
            let mid = panels.div_ceil(2);
            h.split(out, mid * COLS, |i, out| {
                f(if i == 0 { 0..mid } else { mid..panels }, out)
            });
        }
    }
}

/// `out (B, width) += a (B, U) @ R[:, cols]` (rows `G` apart): the packed kernel when the weights are large enough
/// to be packed ([`Packed::worthwhile`]), else the strided one. `set`: onto zeros, `out`'s values are not read
/// (the bits of zeroing them first; the packed kernel then needs no pass that zeroes them, see
/// [`gemm_set_packed_dir`]).
///
/// Small recurrent products (the tutorials' units) keep the unfused order of the naive loop, in which Keras'
/// printed digits were first reproduced; large ones use the fused order, which is more accurate and a third faster
/// (one instruction per term instead of two: 95% of the FMA peak instead of 70% on an AVX2 Zen 3). Which order a
/// layer gets depends on its shape only, never on the machine.
#[allow(clippy::too_many_arguments)]
fn rec_product(
    a: &[f32],
    packed: Option<&Packed>,
    rk: &[f32],
    out: &mut [f32],
    batch: usize,
    u: usize,
    g: usize,
    width: usize,
    rev: bool,
    helper: Option<&mut Helper>,
    set: bool,
) {
    match packed {
        Some(pk) if helper.is_some() && batch == 1 => {
            if set {
                zero_rows(out, batch, g, width);
            }
            by_columns(helper, pk.panel_count(), &mut out[..width], |part, out| {
                gemm_acc_packed_part::<true>(a, u, pk, part, out, g, 1, rev)
            })
        }
        Some(pk) if set => gemm_set_packed_dir::<true>(a, u, pk, out, g, batch, rev),
        Some(pk) => gemm_acc_packed_dir::<true>(a, u, pk, out, g, batch, rev),
        None => {
            if set {
                zero_rows(out, batch, g, width);
            }
            gemm_acc::<false>(a, u, rk, g, out, g, batch, u, width)
        }
    }
}

/// `rec[:, block j] += (h ⊙ masks[j]) · R[:, block j]` for each block in `blocks` (recurrent dropout: one mask
/// per gate block, as Keras' implementation 1 draws them).
#[allow(clippy::too_many_arguments)]
fn masked_rec(
    h: &[f32],
    masks: &[Vec<f32>],
    rk: &[f32],
    rec: &mut [f32],
    hm: &mut [f32],
    batch: usize,
    u: usize,
    g: usize,
    blocks: std::ops::Range<usize>,
) {
    for j in blocks {
        let m = &masks[j.min(masks.len() - 1)];
        for ((o, &a), &b) in hm.iter_mut().zip(h).zip(m.iter()) {
            *o = a * b;
        }
        gemm_acc::<false>(hm, u, &rk[j * u..], g, &mut rec[j * u..], g, batch, u, u);
    }
}

/// One recurrent cell: kind, configuration and (once built) weights.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub kind: CellKind,
    pub cfg: CellConfig,
    /// Shared, so copying a layer (each thread of a split batch gets a copy) does not copy its weights; weights are
    /// only ever replaced whole.
    pub w: Option<std::sync::Arc<CellWeights>>,
}

impl Cell {
    pub(crate) fn class_name(&self) -> &'static str {
        match self.kind {
            CellKind::Lstm => "LSTM",
            CellKind::Gru { .. } => "GRU",
            CellKind::Simple => "SimpleRNN",
        }
    }

    pub(crate) fn base_name(&self) -> &'static str {
        match self.kind {
            CellKind::Lstm => "lstm",
            CellKind::Gru { .. } => "gru",
            CellKind::Simple => "simple_rnn",
        }
    }

    /// Number of state tensors: 2 for LSTM (h, c), else 1.
    pub(crate) fn n_states(&self) -> usize {
        if self.kind == CellKind::Lstm {
            2
        } else {
            1
        }
    }

    /// Width of the stacked gate blocks.
    pub(crate) fn gate_width(&self) -> usize {
        let u = self.cfg.units;
        match self.kind {
            CellKind::Lstm => 4 * u,
            CellKind::Gru { .. } => 3 * u,
            CellKind::Simple => u,
        }
    }

    pub(crate) fn input_dim(&self) -> Option<usize> {
        self.w.as_ref().map(|w| w.kernel.nrows())
    }

    fn bias_shape(&self) -> Vec<usize> {
        match self.kind {
            CellKind::Gru { reset_after: true } => vec![2, self.gate_width()],
            _ => vec![self.gate_width()],
        }
    }

    /// Checks the configuration (called before building and before every call).
    pub(crate) fn validate(&self, ctx: &str) -> Result<()> {
        if self.cfg.units == 0 {
            return Err(Error::invalid(ctx, "units", "a positive integer", 0));
        }
        for (arg, v) in [
            ("dropout", self.cfg.dropout),
            ("recurrent_dropout", self.cfg.recurrent_dropout),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(ctx, arg, "a float in [0, 1]", v));
            }
        }
        Ok(())
    }

    /// Creates the weights for input dimension `d`, or checks `d` against the built ones.
    pub(crate) fn build(&mut self, ctx: &str, d: usize) -> Result<()> {
        self.validate(ctx)?;
        if let Some(k) = self.input_dim() {
            if k != d {
                return Err(Error::shape(
                    ctx,
                    "sequences",
                    format!("(batch, timesteps, {k})"),
                    format!("(batch, timesteps, {d})"),
                ));
            }
            return Ok(());
        }
        let (u, g) = (self.cfg.units, self.gate_width());
        let to2 = |a: ArrayD<f32>| {
            a.into_dimensionality::<ndarray::Ix2>()
                .expect("initializer returns the requested rank")
        };
        let kernel = to2(self.cfg.kernel_initializer.sample(&[d, g])?);
        let recurrent = to2(self.cfg.recurrent_initializer.sample(&[u, g])?);
        let bias = if !self.cfg.use_bias {
            None
        } else if self.kind == CellKind::Lstm && self.cfg.unit_forget_bias {
            // Keras: concat([bias_init((U,)), ones((U,)), bias_init((2U,))]) - the forget block starts at 1.
            let mut b = Vec::with_capacity(g);
            b.extend(self.cfg.bias_initializer.sample(&[u])?.iter().copied());
            b.extend(std::iter::repeat_n(1.0, u));
            b.extend(self.cfg.bias_initializer.sample(&[2 * u])?.iter().copied());
            Some(ArrayD::from_shape_vec(IxDyn(&[g]), b).expect("4U values"))
        } else {
            Some(self.cfg.bias_initializer.sample(&self.bias_shape())?)
        };
        self.w = Some(std::sync::Arc::new(CellWeights::new(
            kernel, recurrent, bias,
        )));
        Ok(())
    }

    pub(crate) fn weight_specs(&self, prefix: &str) -> Vec<WeightSpec> {
        let Some(w) = &self.w else { return Vec::new() };
        let mut s = vec![
            WeightSpec {
                name: format!("{prefix}kernel"),
                shape: w.kernel.shape().to_vec(),
            },
            WeightSpec {
                name: format!("{prefix}recurrent_kernel"),
                shape: w.recurrent.shape().to_vec(),
            },
        ];
        if self.cfg.use_bias {
            s.push(WeightSpec {
                name: format!("{prefix}bias"),
                shape: self.bias_shape(),
            });
        }
        s
    }

    pub(crate) fn weights(&self) -> Vec<ArrayD<f32>> {
        let Some(w) = &self.w else { return Vec::new() };
        let mut v = vec![w.kernel.clone().into_dyn(), w.recurrent.clone().into_dyn()];
        if let Some(b) = &w.bias {
            v.push(b.clone());
        }
        v
    }

    /// Takes `[kernel, recurrent_kernel, (bias)]`, already checked against `weight_specs`.
    pub(crate) fn assign(&mut self, weights: &mut impl Iterator<Item = ArrayD<f32>>) {
        let to2 = |a: ArrayD<f32>| {
            a.into_dimensionality::<ndarray::Ix2>()
                .expect("shape checked")
        };
        let kernel = to2(weights.next().expect("count checked"));
        let recurrent = to2(weights.next().expect("count checked"));
        let bias = if self.cfg.use_bias {
            weights.next()
        } else {
            None
        };
        self.w = Some(std::sync::Arc::new(CellWeights::new(
            kernel, recurrent, bias,
        )));
    }

    /// Keras config entries of the cell part of a recurrent layer's config.
    pub(crate) fn config_entries(&self, m: &mut Map<String, Value>) {
        let c = &self.cfg;
        m.insert("units".into(), json!(c.units));
        m.insert("activation".into(), json!(c.activation.name()));
        if self.kind != CellKind::Simple {
            m.insert(
                "recurrent_activation".into(),
                json!(c.recurrent_activation.name()),
            );
        }
        m.insert("use_bias".into(), json!(c.use_bias));
        m.insert(
            "kernel_initializer".into(),
            c.kernel_initializer.to_config(),
        );
        m.insert(
            "recurrent_initializer".into(),
            c.recurrent_initializer.to_config(),
        );
        m.insert("bias_initializer".into(), c.bias_initializer.to_config());
        if self.kind == CellKind::Lstm {
            m.insert("unit_forget_bias".into(), json!(c.unit_forget_bias));
        }
        for k in [
            "kernel_regularizer",
            "recurrent_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "recurrent_constraint",
            "bias_constraint",
        ] {
            m.insert(k.into(), Value::Null);
        }
        m.insert("dropout".into(), json!(c.dropout));
        m.insert("recurrent_dropout".into(), json!(c.recurrent_dropout));
        if let CellKind::Gru { reset_after } = self.kind {
            m.insert("reset_after".into(), json!(reset_after));
        }
        m.insert("seed".into(), json!(c.seed));
    }

    /// The packed kernels of the current weights (made at the first call).
    pub(crate) fn packed(&self) -> &PackedWeights {
        let w = self.w.as_ref().expect("built before forward");
        w.packed.get_or_init(|| {
            let (d, u, g) = (w.kernel.nrows(), self.cfg.units, self.gate_width());
            let k = w.kernel.as_slice().expect("weights are standard layout");
            let rk = w.recurrent.as_slice().expect("weights are standard layout");
            let pack = |m: &[f32], k: usize, width: usize| {
                Packed::worthwhile(k, width).then(|| Packed::new(m, g, k, width))
            };
            let v1 = matches!(self.kind, CellKind::Gru { reset_after: false });
            PackedWeights {
                kernel: pack(k, d, g),
                rec: pack(rk, u, if v1 { 2 * u } else { g }),
                rec_h: if v1 { pack(&rk[2 * u..], u, u) } else { None },
                rec_finite: rk.iter().all(|v| v.is_finite()),
                flip: Flip::default(),
            }
        })
    }

    /// The input projection of `rows` rows, `xp (rows, G) = x K (+ b)`, where row `i` starts `lda` values after
    /// row `i - 1` in `x` (the batch-major input read in place). The bias is added where Keras adds it
    /// (SimpleRNN, GRU); LSTM adds its bias after the recurrent term, as Keras does: the order of float32
    /// additions decides the last printed digit.
    pub(crate) fn project_rows(&self, x: &[f32], lda: usize, rows: usize, xp: &mut [f32]) {
        let g = self.gate_width();
        let xp = &mut xp[..rows * g];
        self.project_set(x, lda, rows, xp, false);
        self.add_input_bias(xp);
    }

    /// [`project_rows`](Self::project_rows), the rows split in two between this thread and the helper if given
    /// (each row's values do not depend on the others'), or a single row's columns.
    pub(crate) fn project_rows_split(
        &self,
        helper: Option<&mut Helper>,
        x: &[f32],
        lda: usize,
        rows: usize,
        xp: &mut [f32],
    ) {
        match (helper, &self.packed().kernel) {
            // One row: by columns, each thread its part of `x K` and of the bias.
            (Some(h), Some(pk)) if rows == 1 => {
                let g = self.gate_width();
                by_columns(Some(h), pk.panel_count(), &mut xp[..g], |part, out| {
                    let c0 = part.start * COLS;
                    out.fill(0.0);
                    gemm_acc_packed_part::<true>(x, lda, pk, part, out, g, 1, false);
                    self.add_input_bias_at(out, c0);
                })
            }
            (Some(h), _) if rows >= 2 => {
                let (g, half) = (self.gate_width(), rows / 2);
                h.split(&mut xp[..rows * g], half * g, |i, out| match i {
                    0 => self.project_rows(x, lda, half, out),
                    _ => self.project_rows(&x[half * lda..], lda, rows - half, out),
                });
            }
            _ => self.project_rows(x, lda, rows, xp),
        }
    }

    /// `out (rows, G) = 0 + x K`: [`project_acc`](Self::project_acc) onto zeros, without reading `out` (the bits of
    /// zeroing it first; see [`gemm_set_packed_dir`]).
    fn project_set(&self, x: &[f32], lda: usize, rows: usize, out: &mut [f32], rev: bool) {
        let g = self.gate_width();
        match &self.packed().kernel {
            Some(pk) => gemm_set_packed_dir::<true>(x, lda, pk, out, g, rows, rev),
            None => {
                out[..rows * g].fill(0.0);
                self.project_acc(x, lda, rows, out, rev)
            }
        }
    }

    /// `out (rows, G) += x K`, one fused chain per block of [`KC`] terms (`rev`: see [`gemm_acc_packed_dir`]).
    fn project_acc(&self, x: &[f32], lda: usize, rows: usize, out: &mut [f32], rev: bool) {
        let w = self.w.as_ref().expect("built before forward");
        let (d, g) = (w.kernel.nrows(), self.gate_width());
        match &self.packed().kernel {
            Some(pk) => gemm_acc_packed_dir::<true>(x, lda, pk, out, g, rows, rev),
            None => {
                let k = w.kernel.as_slice().expect("weights are standard layout");
                gemm_acc::<true>(x, lda, k, g, out, g, rows, d, g)
            }
        }
    }

    /// `gates = x_t K + h R` for a cell that [`projects_into_gates`](Self::projects_into_gates) (the bias after, in
    /// the step). An LSTM whose products are one fused chain each (D and U at most [`KC`]) alternates from step to
    /// step between `(0 + xK) + hR` with the columns in order and `(0 + hR) + xK` with the columns backwards: the
    /// same bits (`0 + c` is `c` unless `c` is -0, and then both orders give +0 + the other, as IEEE addition is
    /// commutative), but each step starts on the weights the previous step used last. When the two kernels do not
    /// fit in L2 beside each other (LSTM(256) at batch 1: 2 MB), this keeps most of them there: the two products of
    /// a step at batch 1 went from 30 to 20 µs on an Intel Xeon with a 2 MB L2. SimpleRNN adds its bias to `xK`
    /// before `hR`, so it keeps one order (its kernels are a quarter of an LSTM's).
    fn project_and_recur(
        &self,
        x: &[f32],
        lda: usize,
        rev: bool,
        h: &[f32],
        s: &mut Scratch,
        batch: usize,
    ) {
        let (u, g) = (self.cfg.units, self.gate_width());
        let pw = self.packed();
        let pk = pw.rec.as_ref().expect("projects_into_gates checked");
        let gates = &mut s.gates[..batch * g];
        let zig = rev && self.zigzags();
        let with_h = !s.zero_h;
        match (s.helper.as_deref_mut(), &pw.kernel) {
            // Batch 1 with the helper: each thread both products on its half of the columns.
            (Some(helper), Some(pk_x)) if batch == 1 => {
                by_columns(Some(helper), pk.panel_count(), gates, |part, out| {
                    let c0 = part.start * COLS;
                    out.fill(0.0);
                    if zig {
                        if with_h {
                            gemm_acc_packed_part::<true>(h, u, pk, part.clone(), out, g, 1, true);
                        }
                        gemm_acc_packed_part::<true>(x, lda, pk_x, part, out, g, 1, true);
                    } else {
                        gemm_acc_packed_part::<true>(x, lda, pk_x, part.clone(), out, g, 1, false);
                        self.add_input_bias_at(out, c0);
                        if with_h {
                            gemm_acc_packed_part::<true>(h, u, pk, part, out, g, 1, rev);
                        }
                    }
                })
            }
            // (A small unpacked `x K` with the helper: only `h R` is split.)
            (helper, _) if zig => {
                if with_h {
                    rec_product(h, Some(pk), &[], gates, batch, u, g, g, true, helper, true);
                    self.project_acc(x, lda, batch, gates, true);
                } else {
                    self.project_set(x, lda, batch, gates, true);
                }
            }
            (helper, _) => {
                // Any other cell keeps `(xK + b) + hR` (the order of its additions); only `hR`'s columns turn.
                self.project_rows(x, lda, batch, gates);
                if with_h {
                    rec_product(h, Some(pk), &[], gates, batch, u, g, g, rev, helper, false);
                }
            }
        }
    }

    /// Adds the input bias (SimpleRNN, GRU's row 0) to each row of `xp: (rows, G)`, row-major.
    fn add_input_bias(&self, xp: &mut [f32]) {
        self.add_input_bias_at(xp, 0)
    }

    /// [`add_input_bias`](Self::add_input_bias) on columns `c0..` of the projection: `xp` holds rows `G` apart
    /// from column `c0` (at batch 1: one row, the part of it that one thread computes).
    fn add_input_bias_at(&self, xp: &mut [f32], c0: usize) {
        let w = self.w.as_ref().expect("built before forward");
        if let (Some(b), false) = (&w.bias, self.kind == CellKind::Lstm) {
            let g = self.gate_width();
            let row = &b.as_slice().expect("weights are standard layout")[c0..g];
            // Slices, not ndarray's row iterators: those were not vectorised (a tenth of a GRU's time).
            for r in xp.chunks_mut(g) {
                r.iter_mut().zip(row).for_each(|(v, bv)| *v += bv);
            }
        }
    }

    /// The input projection ([`Cell::project_rows`]) with input dropout: rows are time-major (row `r` is sample
    /// `r % batch`); one mask `(B, D)` for all gates, or one per gate block.
    pub(crate) fn project_masked_into(
        &self,
        x: ArrayView2<'_, f32>,
        masks: &[Vec<f32>],
        batch: usize,
        mut xp: ArrayViewMut2<'_, f32>,
    ) {
        let w = self.w.as_ref().expect("built before forward");
        let (g, u, d) = (self.gate_width(), self.cfg.units, x.ncols());
        for (mi, mask) in masks.iter().enumerate() {
            let xm = Array2::from_shape_fn((x.nrows(), d), |(r, c)| {
                x[[r, c]] * mask[(r % batch) * d + c]
            });
            let cols = if masks.len() == 1 {
                0..g
            } else {
                mi * u..(mi + 1) * u
            };
            ndarray::linalg::general_mat_mul(
                1.0,
                &xm,
                &w.kernel.slice(ndarray::s![.., cols.clone()]),
                0.0,
                &mut xp.slice_mut(ndarray::s![.., cols]),
            );
        }
        self.add_input_bias(xp.as_slice_mut().expect("a fresh standard-layout array"));
    }

    /// Number of gate blocks (4 LSTM, 3 GRU, 1 SimpleRNN): how many recurrent dropout masks a step uses.
    pub(crate) fn n_blocks(&self) -> usize {
        self.gate_width() / self.cfg.units.max(1)
    }

    /// Buffers for a call of `batch` rows.
    /// `into_gates`: the steps take their input rows straight into the gates ([`Self::projects_into_gates`]), so
    /// `rec` is never used (and `aux` is GRU's alone): a one-step call at batch 1 then makes two allocations fewer.
    pub(crate) fn scratch(&self, batch: usize, into_gates: bool) -> Scratch {
        let (g, u) = (self.gate_width(), self.cfg.units);
        let gru = matches!(self.kind, CellKind::Gru { .. });
        let sized = |used: bool, len: usize| if used { vec![0.0; len] } else { Vec::new() };
        Scratch {
            gates: vec![0.0; batch * g],
            rec: sized(gru || !into_gates, batch * g),
            aux: sized(gru, batch * u),
            pre: None,
            hm: Vec::new(),
            helper: None,
            zero_h: false,
        }
    }

    /// Whether [`step`](Self::step) can take the input projection already written into `Scratch::gates` (by
    /// [`project_rows`](Self::project_rows)) and add `h R` onto it in place: LSTM and SimpleRNN with a packed
    /// recurrent kernel of at most [`KC`] rows, without recurrent dropout. This saves the separate `h R` and
    /// projection buffers (half a megabyte a step at batch 64 and 256 units, which pushed the weights out of L2)
    /// and a pass over them, with the same bits: the fused product of one block of terms is a chain `c` added
    /// once, so `gates + c` is `xp + (0 + c)` unless `xp` is -0, which `0 + chain (+ b)` never is.
    pub(crate) fn projects_into_gates(&self, rec_dropout: bool) -> bool {
        matches!(self.kind, CellKind::Lstm | CellKind::Simple)
            && !rec_dropout
            && self.cfg.units <= KC
            && self.packed().rec.is_some()
    }

    /// Whether the products of a step at batch 1 are worth splitting by columns with the helper thread: its
    /// packed `h R` has at least [`SPLIT_MIN`] multiply-adds. (LSTM(128), at that size, went from 4.4 to 3.0 µs a
    /// step on a Zen 4, where an even split with no cost would give about 2.4: the handover costs about half a
    /// microsecond; smaller layers were not measured.)
    pub(crate) fn splits_columns(&self) -> bool {
        self.packed()
            .rec
            .as_ref()
            .is_some_and(|pk| self.cfg.units * pk.panel_count() * COLS >= SPLIT_MIN)
    }

    /// Whether a cell that [`projects_into_gates`](Self::projects_into_gates) may run a step's two products in
    /// either order with the same bits (an LSTM whose `x K` is one fused chain: D at most [`KC`]); see
    /// [`project_and_recur`](Self::project_and_recur). Any other cell keeps the order of its products and turns
    /// only the columns of `h R`.
    pub(crate) fn zigzags(&self) -> bool {
        let w = self.w.as_ref().expect("built before forward");
        self.kind == CellKind::Lstm && w.kernel.nrows() <= KC
    }

    /// `gates = xp_t + h R` for every gate block (LSTM, SimpleRNN), `rec` holding `h R`; with recurrent dropout each
    /// block's product uses its own mask. [`StepInput::Rows`]: see [`project_and_recur`](Self::project_and_recur).
    /// `rev`: see [`step`](Self::step).
    fn input_plus_recurrent(
        &self,
        xp: StepInput<'_>,
        rev: bool,
        h: &[f32],
        s: &mut Scratch,
        batch: usize,
        rec_masks: Option<&[Vec<f32>]>,
    ) {
        let w = self.w.as_ref().expect("built before forward");
        let rk = w.recurrent.as_slice().expect("weights are standard layout");
        let (u, g) = (self.cfg.units, self.gate_width());
        let (xp_t, xs) = match xp {
            StepInput::Projected(xp_t, xs) => (xp_t, xs),
            StepInput::Rows(x, lda) => return self.project_and_recur(x, lda, rev, h, s, batch),
        };
        match rec_masks {
            None if !s.zero_h => rec_product(
                h,
                self.packed().rec.as_ref(),
                rk,
                &mut s.rec,
                batch,
                u,
                g,
                g,
                rev,
                s.helper.as_deref_mut(),
                true,
            ),
            ms => {
                s.rec.fill(0.0);
                if let (Some(ms), false) = (ms, s.zero_h) {
                    masked_rec(h, ms, rk, &mut s.rec, &mut s.hm, batch, u, g, 0..g / u)
                }
            }
        }
        for ((z, rec), x) in s
            .gates
            .chunks_mut(g)
            .zip(s.rec.chunks(g))
            .zip(xp_t.chunks(xs))
        {
            z.iter_mut()
                .zip(rec)
                .zip(x)
                .for_each(|((z, r), x)| *z = x + r);
        }
    }

    /// One time step for the whole batch, in Keras' order of operations. `xp`: the projection, or the input rows
    /// when the cell [`projects_into_gates`](Self::projects_into_gates); `prev`/`next`: the states (B, U) each.
    /// `rev`: the packed products visit their columns from the last to the first (and a cell that
    /// [`zigzags`](Self::zigzags) runs `h R` before `x K`): the same bits either way. A time loop alternates it
    /// from step to step, so that each step starts on the weights the last one used last, which are still in L2.
    /// Leaves the activated gates in `s.gates`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &self,
        xp: StepInput<'_>,
        rev: bool,
        prev: &[Vec<f32>],
        next: &mut [Vec<f32>],
        s: &mut Scratch,
        batch: usize,
        rec_masks: Option<&[Vec<f32>]>,
    ) {
        let w = self.w.as_ref().expect("built before forward");
        let u = self.cfg.units;
        let g = self.gate_width();
        let rk = w.recurrent.as_slice().expect("weights are standard layout");
        let bias = w
            .bias
            .as_ref()
            .map(|b| b.as_slice().expect("weights are standard layout"));
        let (act, ract) = (self.cfg.activation, self.cfg.recurrent_activation);
        let packed = self.packed().rec.as_ref();
        match self.kind {
            CellKind::Lstm => {
                // z = (x K + h R) + b
                self.input_plus_recurrent(xp, rev, &prev[0], s, batch, rec_masks);
                let (h_next, rest) = next.split_at_mut(1);
                let (h_next, c_next) = (&mut h_next[0], &mut rest[0]);
                let c_prev = &prev[1];
                // Keras' default activations without a tape (which keeps the pre-activations): one kernel per row.
                if s.pre.is_none()
                    && act == Activation::Tanh
                    && ract == Activation::Sigmoid
                    && crate::vmath::has_lstm_row()
                {
                    for b in 0..batch {
                        let rows = b * u..(b + 1) * u;
                        crate::vmath::lstm_row(
                            &mut s.gates[b * g..(b + 1) * g],
                            bias,
                            &c_prev[rows.clone()],
                            &mut c_next[rows.clone()],
                            &mut h_next[rows],
                        );
                    }
                    return;
                }
                if let Some(b) = bias {
                    for row in s.gates.chunks_mut(g) {
                        row.iter_mut().zip(b).for_each(|(z, bv)| *z += bv);
                    }
                }
                if let Some(p) = s.pre.as_mut() {
                    p.copy_from_slice(&s.gates);
                }
                // The activations take as long a slice as they can (i and f together, then act(c) for the whole
                // batch at once; `apply_rows` keeps a row-wise one, softmax, to each gate's block): fewer calls
                // of the vector kernels, the same values.
                for b in 0..batch {
                    let z = &mut s.gates[b * g..(b + 1) * g];
                    let (i_f, rest) = z.split_at_mut(2 * u);
                    let (cc, o) = rest.split_at_mut(u);
                    ract.apply_rows(i_f, u);
                    act.apply_row(cc);
                    ract.apply_row(o);
                    let (i, f) = i_f.split_at(u);
                    // Zipped slices (no indexing) so the element-wise loops vectorise.
                    let cn = &mut c_next[b * u..(b + 1) * u];
                    let cp = &c_prev[b * u..(b + 1) * u];
                    for ((((c, &f), &cp), &i), &cc) in cn.iter_mut().zip(f).zip(cp).zip(i).zip(&*cc)
                    {
                        *c = f * cp + i * cc;
                    }
                }
                let hn = &mut h_next[..batch * u];
                hn.copy_from_slice(&c_next[..batch * u]);
                act.apply_rows(hn, u);
                for (hn, z) in hn.chunks_mut(u).zip(s.gates.chunks(g)) {
                    hn.iter_mut().zip(&z[3 * u..]).for_each(|(h, &o)| *h *= o);
                }
            }
            CellKind::Gru { reset_after } => {
                let StepInput::Projected(xp_t, xs) = xp else {
                    unreachable!("a GRU never projects into its gates")
                };
                let h_prev = &prev[0];
                let h_next = &mut next[0];
                // rec = h R (+ b_h with reset_after); only the z and r blocks when reset_after is false (rows of
                // `rec` are G apart; its h block is zeroed below before its own product).
                let (width, blocks) = if reset_after { (g, 3) } else { (2 * u, 2) };
                match rec_masks {
                    None if !s.zero_h => {
                        let hp = s.helper.as_deref_mut();
                        rec_product(
                            h_prev, packed, rk, &mut s.rec, batch, u, g, width, rev, hp, true,
                        )
                    }
                    ms => {
                        s.rec.fill(0.0);
                        if let (Some(ms), false) = (ms, s.zero_h) {
                            masked_rec(
                                h_prev,
                                ms,
                                rk,
                                &mut s.rec,
                                &mut s.hm,
                                batch,
                                u,
                                g,
                                0..blocks,
                            )
                        }
                    }
                }
                if reset_after {
                    if let Some(b) = bias {
                        for row in s.rec.chunks_mut(g) {
                            row.iter_mut()
                                .zip(&b[g..2 * g])
                                .for_each(|(z, bv)| *z += bv);
                        }
                    }
                }
                // Element-wise loops over zipped slices (no indexing), so they vectorise.
                for b in 0..batch {
                    let x = &xp_t[b * xs..b * xs + g];
                    let rec = &s.rec[b * g..(b + 1) * g];
                    let z = &mut s.gates[b * g..(b + 1) * g];
                    z[..2 * u]
                        .iter_mut()
                        .zip(&x[..2 * u])
                        .zip(&rec[..2 * u])
                        .for_each(|((z, &x), &r)| *z = x + r);
                    if let Some(p) = s.pre.as_mut() {
                        p[b * g..b * g + 2 * u].copy_from_slice(&z[..2 * u]);
                    }
                    let (zz, rest) = z.split_at_mut(u);
                    let (rr, _) = rest.split_at_mut(u);
                    ract.apply_row(zz);
                    ract.apply_row(rr);
                    let aux = &mut s.aux[b * u..(b + 1) * u];
                    let rr = &rr[..u];
                    if reset_after {
                        aux.iter_mut()
                            .zip(rr)
                            .zip(&rec[2 * u..3 * u])
                            .for_each(|((a, &r), &rh)| *a = r * rh);
                    } else {
                        let hp = &h_prev[b * u..(b + 1) * u];
                        match rec_masks {
                            Some(ms) => aux
                                .iter_mut()
                                .zip(rr)
                                .zip(hp)
                                .zip(&ms[2][b * u..(b + 1) * u])
                                .for_each(|(((a, &r), &h), &m)| *a = r * (h * m)),
                            None => aux
                                .iter_mut()
                                .zip(rr)
                                .zip(hp)
                                .for_each(|((a, &r), &h)| *a = r * h),
                        }
                    }
                }
                if !reset_after {
                    // recurrent_h = (r * h) @ R[:, 2U:], written over the aux buffer's product slot in rec.
                    for b in 0..batch {
                        s.rec[b * g + 2 * u..(b + 1) * g].fill(0.0);
                    }
                }
                // `r * h` is zero with `h` unless r is NaN (a kernel with an infinity can make x K NaN in the r
                // columns alone), and then Keras' product is NaN: skipped only when every `r * h` is zero.
                let aux_zero = s.zero_h && s.aux[..batch * u].iter().all(|&v| v == 0.0);
                if !reset_after && !aux_zero {
                    let packed_h = self.packed().rec_h.as_ref();
                    rec_product(
                        &s.aux,
                        packed_h,
                        &rk[2 * u..],
                        &mut s.rec[2 * u..],
                        batch,
                        u,
                        g,
                        u,
                        rev,
                        s.helper.as_deref_mut(),
                        false,
                    );
                }
                for b in 0..batch {
                    let x = &xp_t[b * xs + 2 * u..b * xs + g];
                    let z = &mut s.gates[b * g..(b + 1) * g];
                    let rec_h = if reset_after {
                        &s.aux[b * u..(b + 1) * u]
                    } else {
                        &s.rec[b * g + 2 * u..(b + 1) * g]
                    };
                    z[2 * u..]
                        .iter_mut()
                        .zip(x)
                        .zip(rec_h)
                        .for_each(|((z, &x), &r)| *z = x + r);
                    if let Some(p) = s.pre.as_mut() {
                        p[b * g + 2 * u..(b + 1) * g].copy_from_slice(&z[2 * u..]);
                    }
                    act.apply_row(&mut z[2 * u..]);
                    let (zz, hh) = (&z[..u], &z[2 * u..]);
                    h_next[b * u..(b + 1) * u]
                        .iter_mut()
                        .zip(&h_prev[b * u..(b + 1) * u])
                        .zip(zz)
                        .zip(hh)
                        .for_each(|(((h, &hp), &z), &hh)| *h = z * hp + (1.0 - z) * hh);
                }
            }
            CellKind::Simple => {
                // h = act((x K + b) + h R)
                self.input_plus_recurrent(xp, rev, &prev[0], s, batch, rec_masks);
                if let Some(p) = s.pre.as_mut() {
                    p.copy_from_slice(&s.gates);
                }
                for b in 0..batch {
                    act.apply_row(&mut s.gates[b * u..(b + 1) * u]);
                }
                next[0].copy_from_slice(&s.gates);
            }
        }
    }
}
