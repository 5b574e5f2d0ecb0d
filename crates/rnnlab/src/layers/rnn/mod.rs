//! Recurrent layers: [`LSTM`], [`GRU`] and [`SimpleRNN`]. A cell (`cell.rs`) computes one step; the layer here owns
//! the time loop and the sequence options (return_sequences, return_state, go_backwards, stateful, masking,
//! initial_state), exactly as Keras' `RNN` base class does (keras-spec.md §2).

mod backprop;
mod cell;
mod kernels;

pub(crate) use backprop::RnnTape;

pub(crate) use cell::{Cell, CellConfig, CellKind, StepInput};

use std::any::Any;

use ndarray::{Array2, Array3, ArrayD, ArrayViewD, Axis, Ix3};
use serde_json::{json, Map, Value};

use super::{
    fmt_sym, layer_handle, Backward, CallInputs, Forward, Layer, Mask, Module, SymShape, Tape,
    TrainCtx, WeightSpec,
};
use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::tensor::Shape;

/// The sequence options of Keras' `RNN` base layer.
#[derive(Clone, Debug, Default)]
pub(crate) struct RnnOptions {
    pub return_sequences: bool,
    pub return_state: bool,
    pub go_backwards: bool,
    pub stateful: bool,
    pub unroll: bool,
    pub zero_output_for_mask: bool,
}

/// Per-step values recorded by a trace: the states after each step and the activated gates.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawTrace {
    /// `[state][step]` -> (B, U), in processing order.
    pub states: Vec<Vec<Array2<f32>>>,
    /// `[step]` -> (B, G) activated gates.
    pub gates: Vec<Array2<f32>>,
}

/// A recurrent layer: options + cell + (for stateful layers) the kept states.
#[derive(Clone, Debug)]
pub(crate) struct RnnModule {
    pub opts: RnnOptions,
    pub cell: Cell,
    pub states: Option<Vec<Array2<f32>>>,
    /// Training calls that drew dropout masks so far: with a `seed`, call k's masks come from (seed, k).
    pub dropout_calls: u64,
}

impl RnnModule {
    pub(crate) fn new(kind: CellKind, units: usize) -> Self {
        RnnModule {
            opts: RnnOptions::default(),
            cell: Cell {
                kind,
                cfg: CellConfig::new(units),
                w: None,
            },
            states: None,
            dropout_calls: 0,
        }
    }

    /// The same configuration with no weights and no kept state (Bidirectional's fresh copies).
    pub(crate) fn fresh_copy(&self) -> Self {
        let mut c = self.clone();
        c.cell.w = None;
        c.states = None;
        c
    }

    /// Checks a call's symbolic shapes, builds the cell, returns `[output, states...]` shapes.
    pub(crate) fn shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        initial_state: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = match inputs {
            [x] => x,
            _ => {
                return Err(Error::invalid(
                    ctx,
                    "sequences",
                    "exactly 1 input tensor",
                    format!("{} tensors", inputs.len()),
                ))
            }
        };
        if x.len() != 3 {
            return Err(Error::shape(
                ctx,
                "sequences",
                "(batch, timesteps, features) (rank 3)",
                format!("{} (rank {})", fmt_sym(x), x.len()),
            ));
        }
        let d = x[2].ok_or_else(|| {
            Error::shape(
                ctx,
                "sequences",
                "a known last dimension (features)",
                fmt_sym(x),
            )
        })?;
        if self.opts.stateful && x[0].is_none() {
            return Err(Error::shape(
                ctx,
                "sequences",
                "a static batch size for a stateful RNN, e.g. Input::with_batch_shape((batch, timesteps, features))",
                fmt_sym(x),
            ));
        }
        self.cell.build(ctx, d)?;
        let u = self.cell.cfg.units;
        let n = self.cell.n_states();
        if !initial_state.is_empty() {
            if initial_state.len() != n {
                return Err(Error::invalid(
                    ctx,
                    "initial_state",
                    format!(
                        "a list of {n} state tensor(s) ({})",
                        if n == 2 { "[h, c]" } else { "[h]" }
                    ),
                    format!("{} tensor(s)", initial_state.len()),
                ));
            }
            for (i, s) in initial_state.iter().enumerate() {
                let ok = s.len() == 2
                    && s[1] == Some(u)
                    && (s[0].is_none() || x[0].is_none() || s[0] == x[0]);
                if !ok {
                    return Err(Error::shape(
                        ctx,
                        format!("initial_state[{i}]"),
                        format!("(batch, {u})"),
                        fmt_sym(s),
                    ));
                }
            }
        }
        let out = if self.opts.return_sequences {
            vec![x[0], x[1], Some(u)]
        } else {
            vec![x[0], Some(u)]
        };
        let mut v = vec![out];
        if self.opts.return_state {
            v.extend(std::iter::repeat_n(vec![x[0], Some(u)], n));
        }
        Ok(v)
    }

    /// Runs the time loop. Returns `[output, final states...]` (all states, whatever return_state says),
    /// and records a trace if asked.
    pub(crate) fn run(
        &mut self,
        ctx: &str,
        x: &ArrayViewD<'_, f32>,
        initial_state: &[ArrayViewD<'_, f32>],
        mask: Option<&Mask>,
        mut trace: Option<&mut RawTrace>,
        mut tape: Option<&mut RnnTape>,
    ) -> Result<(ArrayD<f32>, Vec<Array2<f32>>)> {
        if x.ndim() != 3 {
            return Err(Error::shape(
                ctx,
                "sequences",
                "(batch, timesteps, features) (rank 3)",
                Shape(x.shape().to_vec()),
            ));
        }
        let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        self.cell.build(ctx, d)?;
        let u = self.cell.cfg.units;
        let g = self.cell.gate_width();
        let n = self.cell.n_states();
        if let Some(m) = mask {
            if m.shape() != [b, t] {
                return Err(Error::shape(
                    ctx,
                    "mask",
                    format!("({b}, {t})"),
                    Shape(m.shape().to_vec()),
                ));
            }
        }

        // Initial states: given > kept (stateful) > zeros.
        let mut prev: Vec<Vec<f32>> = if !initial_state.is_empty() {
            if initial_state.len() != n {
                return Err(Error::invalid(
                    ctx,
                    "initial_state",
                    format!("{n} state array(s)"),
                    format!("{} array(s)", initial_state.len()),
                ));
            }
            initial_state
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if s.shape() != [b, u] {
                        return Err(Error::shape(
                            ctx,
                            format!("initial_state[{i}]"),
                            format!("({b}, {u})"),
                            Shape(s.shape().to_vec()),
                        ));
                    }
                    Ok(s.iter().copied().collect())
                })
                .collect::<Result<_>>()?
        } else if let (true, Some(kept)) = (self.opts.stateful, &self.states) {
            if kept[0].nrows() != b {
                return Err(Error::invalid(
                    ctx,
                    "batch size",
                    format!("{} (a stateful layer keeps states for a fixed batch; call reset_state() to change it)", kept[0].nrows()),
                    b,
                ));
            }
            kept.iter().map(|s| s.iter().copied().collect()).collect()
        } else {
            vec![vec![0.0; b * u]; n]
        };
        let mut next: Vec<Vec<f32>> = vec![vec![0.0; b * u]; n];

        // The input projection `x K (+ b)` is computed inside the loop, from the batch-major input as it is, with
        // the kernel packed once: no (T, B, G) buffer (52 MB at batch 64, 200 steps, 256 units, which came fresh
        // from the OS on every call and whose page faults cost a tenth of the call), no transposed copy of the
        // input, no allocation in the loop. A batch of 8 or more is projected one step at a time (B rows T·D
        // apart); a smaller batch `chunk` steps at a time per sample (contiguous rows), so the kernel is not
        // streamed from memory again at every step. The fused kernel rounds exactly as the whole-sequence GEMM
        // (matrixmultiply with FMA) did, so no result changed.
        let x3 = x.view().into_dimensionality::<Ix3>().expect("rank checked");
        let xs = x3.as_standard_layout();
        let xflat = xs.as_slice().expect("standard layout");
        // Dropout masks of a training call (drawn by forward_train_call, kept in the tape for the backward pass).
        let masks = tape.as_deref().and_then(|tp| tp.masks.clone());
        let input_masks = masks.as_ref().filter(|m| !m.input.is_empty());
        // The time-major input (T·B, D): the tape needs it for the kernel's gradient, input dropout for its
        // masked whole-sequence projection.
        let x2 = (tape.is_some() || input_masks.is_some()).then(|| {
            let mut x2 = Array3::from_shape_vec((t, b, d), crate::pool::zeroed(t * b * d))
                .expect("T*B*D values");
            x2.assign(&x3.view().permuted_axes([1, 0, 2]));
            x2.into_shape_with_order((t * b, d))
                .expect("standard layout")
        });
        let xp_masked = input_masks.zip(x2.as_ref()).map(|(m, x2)| {
            let mut xp = Array2::<f32>::zeros((t * b, g));
            self.cell
                .project_masked_into(x2.view(), &m.input, b, xp.view_mut());
            xp
        });
        // Batch 1 with two threads or more: the helper thread takes half of the columns of every packed product
        // of a step, and half of the steps of a projection made several steps at a time (a batch of one cannot be
        // split by samples).
        let helper =
            (b == 1 && tape.is_none() && crate::num_threads() >= 2 && self.cell.splits_columns())
                .then(crate::helper::helper)
                .flatten();
        let chunk = if b >= 8 {
            1
        } else {
            (64 / b.max(1)).clamp(1, t.max(1))
        };
        let rec_masks = masks
            .as_ref()
            .filter(|m| !m.rec.is_empty())
            .map(|m| m.rec.as_slice());
        // One step at a time straight into the gates where the cell can take it so (no projection buffer).
        let into_gates =
            chunk == 1 && xp_masked.is_none() && self.cell.projects_into_gates(rec_masks.is_some());
        // The direction of the first step's products (see Cell::step): the steps alternate from there.
        let flip = &self.cell.packed().flip;
        let first_rev = flip.start();
        let mut xp_buf = if into_gates {
            Vec::new()
        } else {
            vec![0.0f32; b * chunk * g]
        };
        // The first step `xp_buf` holds (it holds steps held..held + chunk).
        let mut held = usize::MAX;

        let mut scratch = self.cell.scratch(b, into_gates);
        scratch.helper = helper;
        if rec_masks.is_some() {
            scratch.hm = vec![0.0; b * u];
        }
        if let Some(tp) = tape.as_deref_mut() {
            tp.start(
                &self.cell,
                b,
                t,
                d,
                x2.expect("made for the tape"),
                &prev,
                mask.is_some(),
                initial_state.len(),
            );
            scratch.pre = Some(vec![0.0; b * g]);
        }
        let mut last_out = vec![0.0f32; b * u];
        let mut seq = if self.opts.return_sequences {
            Some(Array3::<f32>::zeros((b, t, u)))
        } else {
            None
        };
        if let Some(tr) = trace.as_deref_mut() {
            tr.states = vec![Vec::with_capacity(t); n];
            tr.gates = Vec::with_capacity(t);
        }

        // Keras' default zero state (or a given or kept one that is all zeros): the first step skips `h R`.
        let zero_start = self.cell.packed().rec_finite && prev[0].iter().all(|&v| v == 0.0);
        for k in 0..t {
            scratch.zero_h = k == 0 && zero_start;
            #[cfg(test)]
            ZERO_H_STEPS.with(|n| n.set(n.get() + scratch.zero_h as u64));
            let ti = if self.opts.go_backwards { t - 1 - k } else { k };
            let xp = match &xp_masked {
                Some(xp) => {
                    StepInput::Projected(&xp.as_slice().expect("fresh array")[ti * b * g..], g)
                }
                // Row i of step ti is x[i, ti, :], T·D values after row i - 1.
                None if into_gates => StepInput::Rows(xflat.get(ti * d..).unwrap_or(&[]), t * d),
                None if chunk == 1 => {
                    let x_t = xflat.get(ti * d..).unwrap_or(&[]);
                    let helper = scratch.helper.as_deref_mut();
                    self.cell
                        .project_rows_split(helper, x_t, t * d, b, &mut xp_buf);
                    StepInput::Projected(&xp_buf, g)
                }
                None => {
                    let lo = ti - ti % chunk;
                    if held != lo {
                        let steps = chunk.min(t - lo);
                        for (i, out) in xp_buf.chunks_mut(chunk * g).enumerate() {
                            // Steps lo..lo + steps of sample i: contiguous rows of x.
                            let rows = xflat.get((i * t + lo) * d..).unwrap_or(&[]);
                            let helper = scratch.helper.as_deref_mut();
                            self.cell.project_rows_split(helper, rows, d, steps, out);
                        }
                        held = lo;
                    }
                    StepInput::Projected(&xp_buf[(ti - lo) * g..], chunk * g)
                }
            };
            let rev = first_rev ^ (k % 2 == 1);
            self.cell
                .step(xp, rev, &prev, &mut next, &mut scratch, b, rec_masks);
            for bi in 0..b {
                let keep = mask.is_none_or(|m| m[[bi, ti]]);
                let row = bi * u..(bi + 1) * u;
                // Without a mask a step's output is its new h: the output sequence copies it from there and the
                // last output is taken from the final state after the loop (no running copy at every step).
                if mask.is_some() {
                    if keep {
                        last_out[row.clone()].copy_from_slice(&next[0][row.clone()]);
                    } else {
                        // Masked step: states carry over and the output repeats the previous one (or is 0).
                        for s in 0..n {
                            let (p, q) = (&prev[s], &mut next[s]);
                            q[row.clone()].copy_from_slice(&p[row.clone()]);
                        }
                    }
                }
                if let Some(seq) = seq.as_mut() {
                    let mut dst = seq.index_axis_mut(Axis(0), bi);
                    let mut dst = dst.index_axis_mut(Axis(0), k);
                    let dst = dst.as_slice_mut().expect("contiguous row");
                    if !keep && self.opts.zero_output_for_mask {
                        dst.fill(0.0);
                    } else if mask.is_some() {
                        dst.copy_from_slice(&last_out[row]);
                    } else {
                        dst.copy_from_slice(&next[0][row]);
                    }
                }
            }
            std::mem::swap(&mut prev, &mut next);
            if let Some(tp) = tape.as_deref_mut() {
                tp.record(k, ti, &scratch, &prev, mask);
            }
            if let Some(tr) = trace.as_deref_mut() {
                for (s, st) in prev.iter().enumerate() {
                    tr.states[s]
                        .push(Array2::from_shape_vec((b, u), st.clone()).expect("B*U values"));
                }
                tr.gates.push(
                    Array2::from_shape_vec((b, g), scratch.gates.clone()).expect("B*G values"),
                );
            }
        }
        if t > 0 {
            flip.finish(first_rev ^ ((t - 1) % 2 == 1));
            if mask.is_none() {
                last_out.copy_from_slice(&prev[0]);
            }
        }

        let finals: Vec<Array2<f32>> = prev
            .into_iter()
            .map(|s| Array2::from_shape_vec((b, u), s).expect("B*U values"))
            .collect();
        if self.opts.stateful {
            self.states = Some(finals.clone());
        }
        let output = match seq {
            Some(s) => s.into_dyn(),
            None => Array2::from_shape_vec((b, u), last_out)
                .expect("B*U values")
                .into_dyn(),
        };
        Ok((output, finals))
    }

    pub(crate) fn forward_call(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        let threads = crate::num_threads();
        if threads > 1 && !self.opts.stateful && self.worth_splitting(&call, threads) {
            return self.forward_split(ctx, call, threads);
        }
        self.call_with_tape(ctx, call, None)
    }

    /// Whether a call is large enough for threads to pay off: at least two samples per thread and about a
    /// million multiply-adds per thread.
    fn worth_splitting(&self, call: &CallInputs<'_>, threads: usize) -> bool {
        let Some(x) = call.inputs.first().filter(|x| x.ndim() == 3) else {
            return false;
        };
        let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let work = b * t * (d + self.cell.cfg.units) * self.cell.gate_width();
        self.cell.input_dim() == Some(d) && b >= 2 * threads && work >= threads << 20
    }

    /// Runs contiguous slices of the batch on `threads` threads, each on a copy of the layer, and joins the
    /// outputs along the batch. Samples never interact, so the result is bit-identical to one thread.
    fn forward_split(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        threads: usize,
    ) -> Result<Forward> {
        let b = call.inputs[0].shape()[0];
        // Pack the weights once here, so the copies below share the packed kernels instead of each packing its own
        // (worth_splitting checked that the layer is built).
        let _ = self.cell.packed();
        let chunk = b.div_ceil(threads);
        let ranges: Vec<std::ops::Range<usize>> = (0..b)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(b))
            .collect();
        let masks: Vec<Option<Mask>> = ranges
            .iter()
            .map(|r| {
                call.mask
                    .map(|m| m.slice(ndarray::s![r.clone(), ..]).to_owned())
            })
            .collect();
        let results: Vec<Result<Forward>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .zip(&masks)
                .map(|(r, m)| {
                    let mut copy = self.clone();
                    let part = CallInputs {
                        inputs: call
                            .inputs
                            .iter()
                            .map(|v| v.slice_axis(Axis(0), r.clone().into()))
                            .collect(),
                        initial_state: call
                            .initial_state
                            .iter()
                            .map(|v| v.slice_axis(Axis(0), r.clone().into()))
                            .collect(),
                        mask: m.as_ref(),
                    };
                    scope.spawn(move || copy.call_with_tape(ctx, part, None))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Graph(format!("{ctx}: a worker thread panicked")))
                    })
                })
                .collect()
        });
        let parts = results.into_iter().collect::<Result<Vec<Forward>>>()?;
        let n_out = parts[0].outputs.len();
        let outputs = (0..n_out)
            .map(|i| {
                let views: Vec<_> = parts.iter().map(|p| p.outputs[i].view()).collect();
                ndarray::concatenate(Axis(0), &views).expect("same trailing shape")
            })
            .collect();
        let mask = if self.opts.return_sequences {
            call.mask.cloned()
        } else {
            None
        };
        Ok(Forward { outputs, mask })
    }

    /// The recording forward pass: `[output, states...]` as `forward_call` returns them, and the tape.
    pub(crate) fn forward_train_call(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, RnnTape)> {
        self.check_trainable(ctx, tc.training)?;
        let mut tape = RnnTape::default();
        if let Some(x) = call.inputs.first().filter(|x| tc.training && x.ndim() == 3) {
            tape.masks = self.draw_dropout_masks(x.shape()[0], x.shape()[2], tc);
        }
        let f = self.call_with_tape(ctx, call, Some(&mut tape))?;
        Ok((f, tape))
    }

    /// One call: `[output, states...]` (states only with return_state), recording into `tape` if given.
    fn call_with_tape(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tape: Option<&mut RnnTape>,
    ) -> Result<Forward> {
        let x = call
            .inputs
            .first()
            .ok_or_else(|| Error::invalid(ctx, "sequences", "1 input", "none"))?;
        let (out, states) = self.run(ctx, x, &call.initial_state, call.mask, None, tape)?;
        let mask = if self.opts.return_sequences {
            call.mask.cloned()
        } else {
            None
        };
        let mut outputs = vec![out];
        if self.opts.return_state {
            outputs.extend(states.into_iter().map(|s| s.into_dyn()));
        }
        Ok(Forward { outputs, mask })
    }

    /// The full Keras config of the layer (RNN options + cell arguments), without the name.
    pub(crate) fn keras_config(&self) -> Value {
        let mut m = Map::new();
        m.insert("trainable".into(), json!(true));
        m.insert("dtype".into(), crate::layers::dtype_policy());
        m.insert("return_sequences".into(), json!(self.opts.return_sequences));
        m.insert("return_state".into(), json!(self.opts.return_state));
        m.insert("go_backwards".into(), json!(self.opts.go_backwards));
        m.insert("stateful".into(), json!(self.opts.stateful));
        m.insert("unroll".into(), json!(self.opts.unroll));
        m.insert(
            "zero_output_for_mask".into(),
            json!(self.opts.zero_output_for_mask),
        );
        self.cell.config_entries(&mut m);
        Value::Object(m)
    }
}

impl Module for RnnModule {
    fn class_name(&self) -> &'static str {
        self.cell.class_name()
    }
    fn base_name(&self) -> &'static str {
        self.cell.base_name()
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        initial_state: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        self.shapes(ctx, inputs, initial_state)
    }
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        self.forward_call(ctx, call)
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let (f, tape) = self.forward_train_call(ctx, call, tc)?;
        Ok((f, Box::new(tape)))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let tape = tape.downcast::<RnnTape>().expect("recurrent tape");
        let mut it = grads.into_iter();
        let g_out = it.next().flatten();
        let g_states: Vec<Option<ArrayD<f32>>> = it.collect();
        let r = self.backward_tape(&tape, g_out.as_ref(), &g_states);
        Ok(Backward {
            inputs: vec![Some(r.dx)],
            initial_state: r.d_initial.into_iter().map(Some).collect(),
            weights: r.weights,
        })
    }
    fn weights(&self) -> Vec<ArrayD<f32>> {
        self.cell.weights()
    }
    fn weight_specs(&self) -> Vec<WeightSpec> {
        self.cell.weight_specs("")
    }
    fn assign_weights(&mut self, weights: Vec<ArrayD<f32>>) {
        self.cell.assign(&mut weights.into_iter());
    }
    fn is_built(&self) -> bool {
        self.cell.w.is_some()
    }
    fn reset_state(&mut self) {
        if let Some(s) = self.states.as_mut() {
            s.iter_mut().for_each(|a| a.fill(0.0));
        }
    }
    fn config(&self) -> Value {
        self.keras_config()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Setters shared by the three recurrent builders, named exactly as the Keras keyword arguments.
macro_rules! rnn_setters {
    ($t:ident) => {
        impl $t {
            fn set(self, f: impl FnOnce(&mut RnnModule)) -> Self {
                self.0.with_module::<RnnModule, _>(f);
                self
            }
            fn set_act(
                self,
                arg: &str,
                name: &str,
                f: impl FnOnce(&mut RnnModule, Activation),
            ) -> Self {
                match Activation::from_name(name) {
                    Ok(a) => self.set(|m| f(m, a)),
                    Err(_) => {
                        self.0.defer_unknown(arg, name);
                        self
                    }
                }
            }
            /// Return the whole sequence `(batch, timesteps, units)` instead of the last output (default false).
            pub fn return_sequences(self, v: bool) -> Self {
                self.set(|m| m.opts.return_sequences = v)
            }
            /// Also return the final states: `[output, h, c]` for LSTM, `[output, h]` otherwise (default false).
            pub fn return_state(self, v: bool) -> Self {
                self.set(|m| m.opts.return_state = v)
            }
            /// Process the sequence from the last step to the first; the returned sequence is in processing order
            /// (not re-reversed), as in Keras (default false).
            pub fn go_backwards(self, v: bool) -> Self {
                self.set(|m| m.opts.go_backwards = v)
            }
            /// Keep the final states and start the next call from them (default false). See `reset_state`.
            pub fn stateful(self, v: bool) -> Self {
                self.set(|m| m.opts.stateful = v)
            }
            /// Accepted for Keras compatibility; unrolling gives identical numbers (default false).
            pub fn unroll(self, v: bool) -> Self {
                self.set(|m| m.opts.unroll = v)
            }
            /// Output 0 (instead of the previous output) at masked steps (default false).
            pub fn zero_output_for_mask(self, v: bool) -> Self {
                self.set(|m| m.opts.zero_output_for_mask = v)
            }
            /// Activation by Keras name (default `"tanh"`); an unknown name is reported when the layer is called.
            pub fn activation(self, name: &str) -> Self {
                self.set_act("activation", name, |m, a| m.cell.cfg.activation = a)
            }
            /// Activation as a value, e.g. `Activation::HardSigmoidKeras2`.
            pub fn activation_fn(self, a: Activation) -> Self {
                self.set(|m| m.cell.cfg.activation = a)
            }
            /// Whether the layer uses a bias (default true).
            pub fn use_bias(self, v: bool) -> Self {
                self.set(|m| m.cell.cfg.use_bias = v)
            }
            /// Initializer of the input kernel (default glorot_uniform).
            pub fn kernel_initializer(self, init: Initializer) -> Self {
                self.set(|m| m.cell.cfg.kernel_initializer = init)
            }
            /// Initializer of the recurrent kernel (default orthogonal).
            pub fn recurrent_initializer(self, init: Initializer) -> Self {
                self.set(|m| m.cell.cfg.recurrent_initializer = init)
            }
            /// Initializer of the bias (default zeros).
            pub fn bias_initializer(self, init: Initializer) -> Self {
                self.set(|m| m.cell.cfg.bias_initializer = init)
            }
            /// Input dropout rate, used only in training; `predict` ignores it, as Keras does (default 0).
            pub fn dropout(self, rate: f32) -> Self {
                self.set(|m| m.cell.cfg.dropout = rate)
            }
            /// Recurrent dropout rate, used only in training (default 0).
            pub fn recurrent_dropout(self, rate: f32) -> Self {
                self.set(|m| m.cell.cfg.recurrent_dropout = rate)
            }
            /// Seed for the dropout masks.
            pub fn seed(self, seed: u64) -> Self {
                self.set(|m| m.cell.cfg.seed = Some(seed))
            }
            /// Number of units (normally given to `new`).
            pub fn units(self, units: usize) -> Self {
                self.set(|m| m.cell.cfg.units = units)
            }
        }
    };
}

/// Setters for the layers with gates (LSTM, GRU).
macro_rules! gated_setters {
    ($t:ident) => {
        impl $t {
            /// Activation of the gates by Keras name (default `"sigmoid"`; `"hard_sigmoid"` is Keras 3's
            /// `relu6(x+3)/6`, `"hard_sigmoid_keras2"` the old `clip(0.2x+0.5, 0, 1)`).
            pub fn recurrent_activation(self, name: &str) -> Self {
                self.set_act("recurrent_activation", name, |m, a| {
                    m.cell.cfg.recurrent_activation = a
                })
            }
            /// Gate activation as a value.
            pub fn recurrent_activation_fn(self, a: Activation) -> Self {
                self.set(|m| m.cell.cfg.recurrent_activation = a)
            }
        }
    };
}

layer_handle!(
    /// Long Short-Term Memory layer (Keras `LSTM`): gates i, f, c, o; states `[h, c]`.
    ///
    /// ```
    /// use rnnlab::{Input, LSTM, Model};
    /// let inputs = Input::new((3, 2));
    /// let [seq, h, c] = LSTM::new(1).return_sequences(true).return_state(true).call_n(&inputs).unwrap();
    /// assert_eq!(seq.shape().to_string(), "(None, 3, 1)");
    /// assert_eq!(h.shape().to_string(), "(None, 1)");
    /// let model = Model::new(&[&inputs], &[&seq, &h, &c]).unwrap();
    /// assert_eq!(model.count_params(), 4 * 1 * (2 + 1 + 1)); // 4U(D+U+1) = 16
    /// ```
    LSTM
);
impl LSTM {
    /// `LSTM(units)` with Keras 3 defaults (tanh, sigmoid gates, bias with unit_forget_bias).
    pub fn new(units: usize) -> LSTM {
        LSTM(Layer::from_module(Box::new(RnnModule::new(
            CellKind::Lstm,
            units,
        ))))
    }
    /// Add 1 to the forget-gate bias at initialization (default true; Keras applies it even with a Constant bias
    /// initializer, which is why the classic tutorial's "bias 0" still has a forget bias of 1).
    pub fn unit_forget_bias(self, v: bool) -> Self {
        self.set(|m| m.cell.cfg.unit_forget_bias = v)
    }
}
rnn_setters!(LSTM);
gated_setters!(LSTM);

layer_handle!(
    /// Gated Recurrent Unit layer (Keras `GRU`): gates z, r, h; state `[h]`.
    ///
    /// ```
    /// use rnnlab::{GRU, Tensor};
    /// let gru = GRU::new(3);
    /// gru.apply(&Tensor::zeros((1, 4, 2))).unwrap();
    /// assert_eq!(gru.count_params(), 63); // 3U(D+U+2) with reset_after=true
    /// let v1 = GRU::new(3).reset_after(false);
    /// v1.apply(&Tensor::zeros((1, 4, 2))).unwrap();
    /// assert_eq!(v1.count_params(), 54); // 3U(D+U+1)
    /// ```
    GRU
);
impl GRU {
    /// `GRU(units)` with Keras 3 defaults (reset_after=true, the CuDNN/PyTorch form with a (2, 3U) bias).
    pub fn new(units: usize) -> GRU {
        GRU(Layer::from_module(Box::new(RnnModule::new(
            CellKind::Gru { reset_after: true },
            units,
        ))))
    }
    /// `true` (default): the reset gate multiplies `h @ R_h + b_h`; `false`: the Keras 2 form, `(r * h) @ R_h`.
    pub fn reset_after(self, v: bool) -> Self {
        self.set(|m| m.cell.kind = CellKind::Gru { reset_after: v })
    }
}
rnn_setters!(GRU);
gated_setters!(GRU);

layer_handle!(
    /// Fully connected recurrent layer (Keras `SimpleRNN`): `h = act(x K + b + h R)`.
    ///
    /// ```
    /// use rnnlab::{SimpleRNN, Tensor};
    /// let out = SimpleRNN::new(4).return_state(true).apply_all(&Tensor::zeros((2, 5, 3))).unwrap();
    /// assert_eq!(out.len(), 2);
    /// assert_eq!(out[1].shape(), [2, 4]);
    /// ```
    SimpleRNN
);
impl SimpleRNN {
    /// `SimpleRNN(units)` with Keras defaults (tanh).
    pub fn new(units: usize) -> SimpleRNN {
        SimpleRNN(Layer::from_module(Box::new(RnnModule::new(
            CellKind::Simple,
            units,
        ))))
    }
}
rnn_setters!(SimpleRNN);

/// Gives a built layer reproducible weights (`values` from `seed` on, times `scale`; the default biases are 0,
/// these are not), with the recurrent kernel all zeros if asked. Keras order: kernel, recurrent_kernel, bias.
#[cfg(test)]
fn set_test_weights(layer: &crate::layers::Layer, seed: u64, scale: f32, zero_recurrent: bool) {
    let weights: Vec<crate::Tensor> = layer
        .weight_shapes()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.dims().iter().product();
            let v = if i == 1 && zero_recurrent {
                vec![0.0; n]
            } else {
                crate::test_values::values(n, seed + i as u64)
                    .iter()
                    .map(|v| v * scale)
                    .collect()
            };
            crate::Tensor::new(s.dims().to_vec(), v).unwrap()
        })
        .collect();
    layer.set_weights(&weights).unwrap();
}

#[cfg(test)]
thread_local! {
    /// Steps run on this thread that skipped `h R` for a zero state (tests check that the skip happened).
    static ZERO_H_STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod zero_state_tests {
    //! A call's first step from a zero state skips `h R` (`Scratch::zero_h`). Its oracle: the same layer with the
    //! recurrent kernel set to zeros and a random state `h`, whose step computes `h R` (a sum of zeros) and must
    //! give the same bits: `h` enters an LSTM or SimpleRNN step only through `h R`, and a GRU's gates only
    //! through it too (its new state also through `z h`, so only its gates are compared).
    use super::{set_test_weights, ZERO_H_STEPS};
    use crate::layers::{Layer, SimpleRNN, GRU, LSTM};
    use crate::Tensor;

    use crate::test_values::values;

    /// Makes a fresh layer.
    type MakeLayer = fn() -> Layer;

    fn kinds() -> [(&'static str, MakeLayer); 8] {
        [
            // Packed `h R` added into the gates (the products' two orders alternate from call to call).
            ("LSTM(128)", || LSTM::new(128).into()),
            // Not packed: the strided product and a separate `h R` buffer.
            ("LSTM(5)", || LSTM::new(5).into()),
            // More than one block of terms per product: not projected into the gates.
            ("LSTM(300)", || LSTM::new(300).into()),
            ("GRU(64)", || GRU::new(64).into()),
            ("GRU(64) reset_after=false", || {
                GRU::new(64).reset_after(false).into()
            }),
            ("GRU(3)", || GRU::new(3).into()),
            ("SimpleRNN(128)", || SimpleRNN::new(128).into()),
            ("SimpleRNN(4)", || SimpleRNN::new(4).into()),
        ]
    }

    /// Built on `x`, then given reproducible weights with nonzero biases; the recurrent kernel zeros if asked.
    fn with_weights(make: MakeLayer, x: &Tensor, zero_recurrent: bool) -> Layer {
        let layer = make();
        layer.apply(x).unwrap();
        set_test_weights(&layer, 50, 1.0, zero_recurrent);
        layer
    }

    fn same_bits(a: &Tensor, b: &Tensor) -> bool {
        a.shape() == b.shape()
            && a.0
                .iter()
                .zip(b.0.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits())
    }

    /// Step 0 of a trace: (batch, units).
    fn step0(t: &Tensor) -> Tensor {
        Tensor(t.0.index_axis(ndarray::Axis(1), 0).to_owned().into_dyn())
    }

    #[test]
    fn a_zero_state_skips_h_r_with_the_bits_of_computing_it() {
        crate::set_num_threads(1);
        // Batch 1 and 9 take their input rows straight into the gates one step at a time; batch 3 projects
        // several steps at once into a buffer first.
        for (name, make) in kinds() {
            for b in [1, 3, 9] {
                // Three steps: a call's first step runs its products the other way than the last call's first
                // step (see Cell::step), so the two calls below cover both orders.
                let (t, d) = (3, 7);
                let x = Tensor::new(vec![b, t, d], values(b * t * d, 9)).unwrap();
                let skipping = with_weights(make, &x, false);
                let computing = with_weights(make, &x, true);
                let units = skipping.get_config()["units"].as_u64().unwrap() as usize;
                let lstm = name.starts_with("LSTM");
                let h0 = Tensor::new(vec![b, units], values(b * units, 3)).unwrap();
                let c0 = Tensor::zeros((b, units));
                let states: Vec<&Tensor> = if lstm { vec![&h0, &c0] } else { vec![&h0] };

                for call in 0..2 {
                    let at = format!("{name}, batch {b}, call {call}");
                    let before = ZERO_H_STEPS.with(|n| n.get());
                    let a = &skipping.trace(&x).unwrap()[0];
                    assert_eq!(
                        ZERO_H_STEPS.with(|n| n.get()),
                        before + 1,
                        "{at}: no step skipped"
                    );
                    let c = &computing.trace_with_state(&x, &states).unwrap()[0];
                    assert_eq!(
                        ZERO_H_STEPS.with(|n| n.get()),
                        before + 1,
                        "{at}: a nonzero h skipped"
                    );

                    assert_eq!(a.gates.len(), c.gates.len());
                    for ((gate, p), (_, q)) in a.gates.iter().zip(&c.gates) {
                        assert!(same_bits(&step0(p), &step0(q)), "{at}: gate {gate} differs");
                    }
                    if !name.starts_with("GRU") {
                        assert!(same_bits(&step0(&a.h), &step0(&c.h)), "{at}: h differs");
                    }
                    if lstm {
                        let (p, q) = (a.c.as_ref().unwrap(), c.c.as_ref().unwrap());
                        assert!(same_bits(&step0(p), &step0(q)), "{at}: c differs");
                    }
                }
            }
        }
    }

    #[test]
    fn a_zero_state_and_an_infinite_recurrent_weight_give_nan_as_keras_does() {
        crate::set_num_threads(1);
        // `0 · inf` is NaN: Keras' `h R` with its zero state is NaN in the infinite weight's column, so the skip
        // must not apply (the weights are checked once, when packed).
        for (name, make) in kinds() {
            let x = Tensor::new(vec![2, 3, 7], values(42, 9)).unwrap();
            let layer = with_weights(make, &x, false);
            let mut w = layer.get_weights();
            w[1].0[[0, 0]] = f32::INFINITY;
            layer.set_weights(&w).unwrap();
            let before = ZERO_H_STEPS.with(|n| n.get());
            let y = layer.apply(&x).unwrap();
            assert_eq!(
                ZERO_H_STEPS.with(|n| n.get()),
                before,
                "{name}: skipped despite the infinity"
            );
            assert!(
                y.0.iter().any(|v| v.is_nan()),
                "{name}: no NaN from 0 · inf"
            );
        }
    }

    #[test]
    fn gru_without_reset_after_keeps_a_nan_reset_gate_in_its_candidate() {
        crate::set_num_threads(1);
        // An infinite input weight in an r column and a zero input make `x K` NaN there alone: r is NaN, so
        // Keras' `(r · h) R_h` is NaN although h is zero; the candidate's product runs for it.
        let d = 7;
        let mut xs = values(3 * d, 9);
        xs[0] = 0.0;
        let x = Tensor::new(vec![1, 3, d], xs).unwrap();
        let make: MakeLayer = || GRU::new(64).reset_after(false).into();
        let layer = with_weights(make, &x, false);
        let mut w = layer.get_weights();
        w[0].0[[0, 64]] = f32::INFINITY; // kernel row 0 (x[0] = 0), first r column
        layer.set_weights(&w).unwrap();
        let tr = &layer.trace(&x).unwrap()[0];
        let cand = step0(tr.gate("candidate").unwrap());
        assert!(cand.0.iter().all(|v| v.is_nan()), "candidate {:?}", cand.0);
    }
}

#[cfg(test)]
mod column_split_tests {
    //! Batch 1 with two threads splits every packed product of a step by columns with the helper thread (and a
    //! projection made several steps at a time by steps). Here inside the crate, where a test can see that the
    //! split happened (an integration test could not tell a split from a fallback to one thread).
    use crate::layers::{Layer, SimpleRNN, GRU, LSTM};
    use crate::Tensor;

    use crate::test_values::values;

    /// Makes a fresh layer.
    type MakeLayer = fn() -> Layer;

    #[test]
    fn batch_one_split_by_columns_gives_the_bits_of_one_thread() {
        // Each large enough to split (SPLIT_MIN): GRU(192) without reset_after has two products per step, the
        // second over an odd number of panels.
        let kinds: [(&str, MakeLayer); 5] = [
            ("LSTM(128)", || {
                LSTM::new(128)
                    .return_sequences(true)
                    .return_state(true)
                    .into()
            }),
            ("LSTM(128) go_backwards", || {
                LSTM::new(128).go_backwards(true).return_state(true).into()
            }),
            ("GRU(160)", || {
                GRU::new(160)
                    .return_sequences(true)
                    .return_state(true)
                    .into()
            }),
            ("GRU(192) reset_after=false", || {
                GRU::new(192)
                    .reset_after(false)
                    .return_sequences(true)
                    .into()
            }),
            ("SimpleRNN(256)", || {
                SimpleRNN::new(256).return_sequences(true).into()
            }),
        ];
        // One step (projected straight into the gates; 20 features: `x K` too small to pack, only `h R` split;
        // 300: two fused chains), a few steps and more than one 64-step projection chunk.
        let cases = [(1, 100), (1, 20), (1, 300), (3, 100), (70, 100), (2, 300)];
        for (name, make) in kinds {
            for (t, d) in cases {
                let layer = make();
                let x = Tensor::new(vec![1, t, d], values(t * d, (t * d) as u64)).unwrap();
                // A nonzero initial state, so that `h R` counts from the first step.
                let (units, n) = (
                    layer.get_config()["units"].as_u64().unwrap() as usize,
                    name.starts_with("LSTM") as usize + 1,
                );
                let states: Vec<Tensor> = (0..n)
                    .map(|i| Tensor::new(vec![1, units], values(units, 7 + i as u64)).unwrap())
                    .collect();
                let states: Vec<&Tensor> = states.iter().collect();
                crate::set_num_threads(1);
                // Built by a first call, then given weights with nonzero biases (the default biases are 0).
                layer.apply_all_with_state(&x, &states).unwrap();
                super::set_test_weights(&layer, 100, 0.2, false);
                // With the given state, and from zeros (whose first step skips `h R`).
                for states in [&states[..], &[]] {
                    let from = if states.is_empty() {
                        "zero state"
                    } else {
                        "given state"
                    };
                    // From zeros, one step of 20 features has no packed product left to split: `x K` is too
                    // small to pack and `h R` is skipped.
                    let splits = !(states.is_empty() && t == 1 && d == 20);
                    let one = layer.apply_all_with_state(&x, states).unwrap();
                    crate::set_num_threads(2);
                    // The helper may be busy with another test's call, which then makes this one run on one thread:
                    // call again until a call split its work.
                    let mut tries = 0;
                    let two = loop {
                        let before = crate::helper::joins_on_this_thread();
                        let two = layer.apply_all_with_state(&x, states).unwrap();
                        if crate::helper::joins_on_this_thread() > before || !splits {
                            break two;
                        }
                        tries += 1;
                        assert!(
                            tries < 1000,
                            "{name}, {t} steps, {d} features, {from}: never split"
                        );
                    };
                    crate::set_num_threads(1);
                    assert_eq!(one.len(), two.len());
                    for (k, (p, q)) in one.iter().zip(&two).enumerate() {
                        assert!(
                            p.0.iter()
                                .zip(q.0.iter())
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{name}, {t} steps, {d} features, {from}, output {k}: two threads differ from one"
                        );
                    }
                }
            }
        }
    }
}
