//! Wrappers: [`Bidirectional`] (two recurrent copies, merged) and [`TimeDistributed`] (a layer at every step).

use std::any::Any;

use ndarray::{ArrayD, Axis, IxDyn};
use serde_json::{json, Value};

use super::rnn::{RnnModule, RnnTape};
use super::{
    fmt_sym, layer_handle, Backward, CallInputs, Forward, Layer, Module, SymShape, Tape, TrainCtx,
    WeightSpec,
};
use crate::error::{Error, Result};

/// How Bidirectional combines the forward and backward outputs (Keras `merge_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MergeMode {
    /// Concatenate on the last axis (default): `(..., 2U)`.
    #[default]
    Concat,
    /// `fwd + bwd`.
    Sum,
    /// `fwd * bwd`.
    Mul,
    /// `(fwd + bwd) / 2`.
    Ave,
    /// No merge: both outputs are returned (Keras `merge_mode=None`).
    None,
}

impl MergeMode {
    /// Parses Keras' names: `"concat"`, `"sum"`, `"mul"`, `"ave"`, and `"none"`/`"None"`.
    ///
    /// # Errors
    /// An unknown name.
    pub fn from_name(name: &str) -> Result<MergeMode> {
        Ok(match name {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            "none" | "None" | "null" => MergeMode::None,
            _ => {
                return Err(Error::unknown(
                    "merge_mode",
                    name,
                    &["concat", "sum", "mul", "ave", "None"],
                ))
            }
        })
    }
    /// The Keras name (`None` for no merge).
    pub fn name(&self) -> Option<&'static str> {
        match self {
            MergeMode::Concat => Some("concat"),
            MergeMode::Sum => Some("sum"),
            MergeMode::Mul => Some("mul"),
            MergeMode::Ave => Some("ave"),
            MergeMode::None => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct BidirectionalModule {
    pub fwd: RnnModule,
    pub bwd: RnnModule,
    pub merge: MergeMode,
    /// Name of the wrapped layer: the copies are `forward_<name>` and `backward_<name>`.
    pub inner_name: String,
}

impl BidirectionalModule {
    pub(crate) fn new(inner: &RnnModule, inner_name: String, merge: MergeMode) -> Self {
        let mut fwd = inner.fresh_copy();
        let mut bwd = inner.fresh_copy();
        fwd.opts.go_backwards = inner.opts.go_backwards;
        bwd.opts.go_backwards = !inner.opts.go_backwards;
        // Keras: masked steps are 0 in both halves when the sequence is returned (so the halves line up).
        fwd.opts.zero_output_for_mask = inner.opts.return_sequences;
        bwd.opts.zero_output_for_mask = inner.opts.return_sequences;
        BidirectionalModule {
            fwd,
            bwd,
            merge,
            inner_name,
        }
    }

    fn merge_arrays(&self, y: ArrayD<f32>, y_rev: ArrayD<f32>) -> Vec<ArrayD<f32>> {
        match self.merge {
            MergeMode::Concat => {
                let ax = Axis(y.ndim() - 1);
                vec![ndarray::concatenate(ax, &[y.view(), y_rev.view()])
                    .expect("same leading shape")]
            }
            MergeMode::Sum => vec![y + y_rev],
            MergeMode::Mul => vec![y * y_rev],
            MergeMode::Ave => vec![(y + y_rev) * 0.5],
            MergeMode::None => vec![y, y_rev],
        }
    }
}

/// A recorded Bidirectional call: both directions' tapes and (for `mul`) the halves the product used.
struct BidirectionalTape {
    fwd: RnnTape,
    bwd: RnnTape,
    halves: Option<(ArrayD<f32>, ArrayD<f32>)>,
}

impl BidirectionalModule {
    /// Runs both directions and merges them; with a training context both calls are recorded.
    fn call_both(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tc: Option<&mut TrainCtx>,
    ) -> Result<(Forward, Option<BidirectionalTape>)> {
        let n = self.fwd.cell.n_states();
        if !call.initial_state.is_empty() && call.initial_state.len() != 2 * n {
            return Err(Error::invalid(
                ctx,
                "initial_state",
                format!(
                    "{} arrays: the forward layer's {n} state(s), then the backward layer's",
                    2 * n
                ),
                call.initial_state.len(),
            ));
        }
        let (fs, bs) = call.initial_state.split_at(call.initial_state.len() / 2);
        fn half<'a>(
            call: &'a CallInputs<'_>,
            st: &'a [ndarray::ArrayViewD<'_, f32>],
        ) -> CallInputs<'a> {
            CallInputs {
                inputs: call.inputs.iter().map(|v| v.view()).collect(),
                initial_state: st.iter().map(|v| v.view()).collect(),
                mask: call.mask,
            }
        }
        let (f, b, tapes) = match tc {
            Some(tc) => {
                let (f, ft) = self.fwd.forward_train_call(ctx, half(&call, fs), tc)?;
                let (b, bt) = self.bwd.forward_train_call(ctx, half(&call, bs), tc)?;
                (f, b, Some((ft, bt)))
            }
            None => (
                self.fwd.forward_call(ctx, half(&call, fs))?,
                self.bwd.forward_call(ctx, half(&call, bs))?,
                None,
            ),
        };
        let mut fo = f.outputs.into_iter();
        let mut bo = b.outputs.into_iter();
        let y = fo.next().expect("output");
        let mut y_rev = bo.next().expect("output");
        if self.fwd.opts.return_sequences {
            // The backward copy returns its sequence in processing order; flip it so time steps line up.
            y_rev.invert_axis(Axis(1));
            y_rev = y_rev.as_standard_layout().into_owned();
        }
        let halves =
            (tapes.is_some() && self.merge == MergeMode::Mul).then(|| (y.clone(), y_rev.clone()));
        let mut outputs = self.merge_arrays(y, y_rev);
        outputs.extend(fo);
        outputs.extend(bo);
        let mask = if self.fwd.opts.return_sequences {
            call.mask.cloned()
        } else {
            None
        };
        let tape = tapes.map(|(fwd, bwd)| BidirectionalTape { fwd, bwd, halves });
        Ok((Forward { outputs, mask }, tape))
    }
}

impl Module for BidirectionalModule {
    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }
    fn base_name(&self) -> &'static str {
        "bidirectional"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        initial_state: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let n = self.fwd.cell.n_states();
        if !initial_state.is_empty() && initial_state.len() != 2 * n {
            return Err(Error::invalid(
                ctx,
                "initial_state",
                format!(
                    "{} tensors: the forward layer's {n} state(s), then the backward layer's",
                    2 * n
                ),
                format!("{} tensor(s)", initial_state.len()),
            ));
        }
        let (fs, bs) = initial_state.split_at(initial_state.len() / 2);
        let f = self.fwd.shapes(ctx, inputs, fs)?;
        let b = self.bwd.shapes(ctx, inputs, bs)?;
        let mut out = f[0].clone();
        match self.merge {
            MergeMode::Concat => {
                let last = out.last_mut().expect("rank >= 2");
                *last = last.map(|u| 2 * u);
                out = out.clone();
            }
            MergeMode::None => {}
            _ => {}
        }
        let mut v = if self.merge == MergeMode::None {
            vec![f[0].clone(), b[0].clone()]
        } else {
            vec![out]
        };
        v.extend(f.into_iter().skip(1));
        v.extend(b.into_iter().skip(1));
        Ok(v)
    }
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        Ok(self.call_both(ctx, call, None)?.0)
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let (f, tape) = self.call_both(ctx, call, Some(tc))?;
        Ok((f, Box::new(tape.expect("recorded when training"))))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let tape = tape
            .downcast::<BidirectionalTape>()
            .expect("Bidirectional tape");
        let n = self.fwd.cell.n_states();
        let n_merged = if self.merge == MergeMode::None { 2 } else { 1 };
        let mut it = grads.into_iter();
        let merged: Vec<Option<ArrayD<f32>>> = it.by_ref().take(n_merged).collect();
        let f_states: Vec<Option<ArrayD<f32>>> = it.by_ref().take(n).collect();
        let b_states: Vec<Option<ArrayD<f32>>> = it.take(n).collect();
        // Split the merged gradient into the two directions' output gradients (in output time order).
        let (gf, gb) = match (self.merge, merged.as_slice()) {
            (MergeMode::None, [a, b]) => (a.clone(), b.clone()),
            (_, [None]) => (None, None),
            (MergeMode::Concat, [Some(g)]) => {
                let last = g.ndim() - 1;
                let u = g.shape()[last] / 2;
                (
                    Some(g.slice_axis(Axis(last), (..u).into()).to_owned()),
                    Some(g.slice_axis(Axis(last), (u..).into()).to_owned()),
                )
            }
            (MergeMode::Sum, [Some(g)]) => (Some(g.clone()), Some(g.clone())),
            (MergeMode::Ave, [Some(g)]) => (Some(g * 0.5), Some(g * 0.5)),
            (MergeMode::Mul, [Some(g)]) => {
                let (y, y_rev) = tape.halves.as_ref().expect("kept for mul");
                (Some(g * y_rev), Some(g * y))
            }
            _ => (None, None),
        };
        // The backward copy's sequence was flipped to line up in time: flip its gradient back.
        let gb = gb.map(|mut g| {
            if self.fwd.opts.return_sequences {
                g.invert_axis(Axis(1));
                g.as_standard_layout().into_owned()
            } else {
                g
            }
        });
        let rf = self.fwd.backward_tape(&tape.fwd, gf.as_ref(), &f_states);
        let rb = self.bwd.backward_tape(&tape.bwd, gb.as_ref(), &b_states);
        let mut weights = rf.weights;
        weights.extend(rb.weights);
        let mut initial_state: Vec<Option<ArrayD<f32>>> =
            rf.d_initial.into_iter().map(Some).collect();
        initial_state.extend(rb.d_initial.into_iter().map(Some));
        Ok(Backward {
            inputs: vec![Some(rf.dx + rb.dx)],
            initial_state,
            weights,
        })
    }
    fn weights(&self) -> Vec<ArrayD<f32>> {
        let mut w = self.fwd.cell.weights();
        w.extend(self.bwd.cell.weights());
        w
    }
    fn weight_specs(&self) -> Vec<WeightSpec> {
        let mut s = self
            .fwd
            .cell
            .weight_specs(&format!("forward_{}/", self.inner_name));
        s.extend(
            self.bwd
                .cell
                .weight_specs(&format!("backward_{}/", self.inner_name)),
        );
        s
    }
    fn assign_weights(&mut self, weights: Vec<ArrayD<f32>>) {
        let mut it = weights.into_iter();
        self.fwd.cell.assign(&mut it);
        self.bwd.cell.assign(&mut it);
    }
    fn is_built(&self) -> bool {
        self.fwd.cell.w.is_some() && self.bwd.cell.w.is_some()
    }
    fn reset_state(&mut self) {
        self.fwd.reset_state();
        self.bwd.reset_state();
    }
    fn config(&self) -> Value {
        let sub = |m: &RnnModule, prefix: &str| {
            let mut c = m.keras_config();
            if let Some(o) = c.as_object_mut() {
                o.insert(
                    "name".into(),
                    json!(format!("{prefix}_{}", self.inner_name)),
                );
            }
            json!({"module": "keras.layers", "class_name": m.cell.class_name(), "config": c, "registered_name": null})
        };
        json!({
            "trainable": true,
            "dtype": crate::layers::dtype_policy(),
            "merge_mode": self.merge.name(),
            "layer": sub(&self.fwd, "forward"),
            "backward_layer": sub(&self.bwd, "backward"),
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

layer_handle!(
    /// Runs a recurrent layer forwards and a copy backwards and merges them (Keras `Bidirectional`).
    /// Both copies get fresh weights; `get_weights()` lists forward `[K, R, b]` then backward.
    /// With `return_state`, the outputs are `[merged, fwd states..., bwd states...]`
    /// (`[y, y_rev, fwd states..., bwd states...]` with `MergeMode::None`).
    ///
    /// ```
    /// use rnnlab::{Bidirectional, LSTM, Tensor};
    /// let bi = Bidirectional::new(LSTM::new(4).return_state(true));
    /// let out = bi.apply_all(&Tensor::zeros((2, 5, 3))).unwrap();
    /// assert_eq!(out.len(), 5);
    /// assert_eq!(out[0].shape(), [2, 8]);
    /// assert_eq!(bi.count_params(), 256);
    /// ```
    Bidirectional
);

impl Bidirectional {
    /// Wraps an LSTM, GRU or SimpleRNN (merge_mode concat). A layer of any other kind is reported when called.
    pub fn new(layer: impl Into<Layer>) -> Bidirectional {
        let layer: Layer = layer.into();
        let inner_name = layer.name();
        let module = {
            let guard = layer.module();
            guard
                .as_any()
                .downcast_ref::<RnnModule>()
                .map(|rnn| BidirectionalModule::new(rnn, inner_name.clone(), MergeMode::Concat))
        };
        match module {
            Some(m) => Bidirectional(Layer::from_module(Box::new(m))),
            None => {
                // Setters never fail: keep a placeholder that reports the problem at the first call.
                let cls = layer.class_name();
                let l = Layer::from_module(Box::new(BidirectionalModule::new(
                    &RnnModule::new(super::rnn::CellKind::Simple, 1),
                    inner_name,
                    MergeMode::Concat,
                )));
                l.defer_unknown("recurrent layer for Bidirectional", cls);
                Bidirectional(l)
            }
        }
    }
    /// How to merge the two directions (default concat).
    pub fn merge_mode(self, mode: MergeMode) -> Self {
        self.0
            .with_module::<BidirectionalModule, _>(|m| m.merge = mode);
        self
    }
}

#[derive(Debug)]
pub(crate) struct TimeDistributedModule {
    pub inner: Layer,
}

impl TimeDistributedModule {
    /// Runs the wrapped layer on `(B·T, ...)` and reshapes its output back to `(B, T, ...)`; with a training
    /// context the call is recorded and the inner tape returned.
    fn call_inner(
        &mut self,
        call: CallInputs<'_>,
        tc: Option<&mut TrainCtx>,
    ) -> Result<(Forward, Option<Tape>)> {
        let x = &call.inputs[0];
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let mut flat_shape = vec![b * t];
        flat_shape.extend_from_slice(&x.shape()[2..]);
        let flat = x
            .to_shape(IxDyn(&flat_shape))
            .expect("same number of elements")
            .into_owned();
        let ictx = self.inner.ctx();
        let inner_call = CallInputs {
            inputs: vec![flat.view()],
            initial_state: vec![],
            mask: None,
        };
        let (f, tape) = match tc {
            Some(tc) => {
                let (f, tape) = self.inner.module().forward_train(&ictx, inner_call, tc)?;
                (f, Some(tape))
            }
            None => (self.inner.module().forward(&ictx, inner_call)?, None),
        };
        let y = f
            .outputs
            .into_iter()
            .next()
            .expect("one output, checked at call");
        let mut shape = vec![b, t];
        shape.extend_from_slice(&y.shape()[1..]);
        let y = y
            .into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements");
        Ok((
            Forward {
                outputs: vec![y],
                mask: call.mask.cloned(),
            },
            tape,
        ))
    }
}

impl Module for TimeDistributedModule {
    fn class_name(&self) -> &'static str {
        "TimeDistributed"
    }
    fn base_name(&self) -> &'static str {
        "time_distributed"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = match (inputs, st) {
            ([x], []) => x,
            _ => {
                return Err(Error::invalid(
                    ctx,
                    "inputs",
                    "exactly 1 input tensor and no initial_state",
                    format!("{} tensors", inputs.len() + st.len()),
                ))
            }
        };
        if x.len() < 3 {
            return Err(Error::shape(
                ctx,
                "inputs",
                "(batch, timesteps, ...) (rank >= 3)",
                fmt_sym(x),
            ));
        }
        let mut inner_in = vec![None];
        inner_in.extend_from_slice(&x[2..]);
        let ictx = self.inner.ctx();
        let outs = self.inner.module().call_shapes(&ictx, &[inner_in], &[])?;
        if outs.len() != 1 {
            return Err(Error::Unsupported(format!(
                "{ctx}: the wrapped layer must return exactly one tensor, it returns {}",
                outs.len()
            )));
        }
        let mut out = vec![x[0], x[1]];
        out.extend_from_slice(&outs[0][1..]);
        Ok(vec![out])
    }
    fn forward(&mut self, _ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        Ok(self.call_inner(call, None)?.0)
    }
    fn forward_train(
        &mut self,
        _ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let in_shape = call.inputs[0].shape().to_vec();
        let (f, inner_tape) = self.call_inner(call, Some(tc))?;
        let inner_tape = inner_tape.expect("recorded when training");
        Ok((f, Box::new((inner_tape, in_shape))))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let (inner_tape, in_shape) = *tape
            .downcast::<(Tape, Vec<usize>)>()
            .expect("TimeDistributed tape");
        let g = grads.into_iter().next().flatten().map(|g| {
            let mut s = vec![g.shape()[0] * g.shape()[1]];
            s.extend_from_slice(&g.shape()[2..]);
            g.as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&s))
                .expect("same number of elements")
        });
        let ictx = self.inner.ctx();
        let r = self.inner.module().backward(&ictx, inner_tape, vec![g])?;
        let dx = r.inputs.into_iter().next().flatten().map(|d| {
            d.into_shape_with_order(IxDyn(&in_shape))
                .expect("same number of elements")
        });
        Ok(Backward {
            inputs: vec![dx],
            initial_state: vec![],
            weights: r.weights,
        })
    }
    fn weights(&self) -> Vec<ArrayD<f32>> {
        self.inner.module().weights()
    }
    fn weight_specs(&self) -> Vec<WeightSpec> {
        self.inner.module().weight_specs()
    }
    fn assign_weights(&mut self, weights: Vec<ArrayD<f32>>) {
        self.inner.module().assign_weights(weights)
    }
    fn is_built(&self) -> bool {
        self.inner.module().is_built()
    }
    fn config(&self) -> Value {
        let inner_cfg = self.inner.get_config();
        json!({
            "trainable": true,
            "dtype": crate::layers::dtype_policy(),
            "layer": {"module": "keras.layers", "class_name": self.inner.class_name(), "config": inner_cfg, "registered_name": null},
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

layer_handle!(
    /// Applies a layer to every time step: `(B, T, ...) -> (B, T, ...)` (Keras `TimeDistributed`).
    ///
    /// ```
    /// use rnnlab::{Dense, TimeDistributed, Tensor};
    /// let td = TimeDistributed::new(Dense::new(2).activation("softmax"));
    /// assert_eq!(td.apply(&Tensor::zeros((3, 5, 4))).unwrap().shape(), [3, 5, 2]);
    /// ```
    TimeDistributed
);

impl TimeDistributed {
    /// Wraps a layer (shares its weights with the wrapped handle).
    pub fn new(layer: impl Into<Layer>) -> TimeDistributed {
        TimeDistributed(Layer::from_module(Box::new(TimeDistributedModule {
            inner: layer.into(),
        })))
    }
}
