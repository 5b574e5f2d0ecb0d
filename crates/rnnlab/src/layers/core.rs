//! Non-recurrent layers: Dense, Dropout, Flatten, RepeatVector, Masking, and the InputLayer behind `Input`.

use std::any::Any;

use ndarray::{linalg::general_mat_mul, Array2, ArrayD, ArrayView2, Axis, IxDyn};
use serde_json::json;

use super::{
    fmt_sym, layer_handle, Backward, CallInputs, Forward, Layer, Mask, Module, SymShape, Tape,
    TrainCtx, WeightSpec,
};
use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::initializers::Initializer;

fn one_input<'a>(
    ctx: &str,
    inputs: &'a [SymShape],
    initial_state: &[SymShape],
) -> Result<&'a SymShape> {
    if !initial_state.is_empty() {
        return Err(Error::invalid(
            ctx,
            "initial_state",
            "no initial_state (only recurrent layers take one)",
            format!("{} tensor(s)", initial_state.len()),
        ));
    }
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::invalid(
            ctx,
            "inputs",
            "exactly 1 input tensor",
            format!("{} tensors", inputs.len()),
        )),
    }
}

/// Views an array of any rank as a matrix `(prod(shape[..-1]), shape[-1])`, copying only if it is not contiguous.
pub(crate) fn as_matrix(x: &ndarray::ArrayViewD<'_, f32>) -> Array2<f32> {
    let d = x.shape().last().copied().unwrap_or(1);
    let n = if d == 0 { 0 } else { x.len() / d };
    let v: Vec<f32> = x.iter().copied().collect();
    Array2::from_shape_vec((n, d), v).expect("size computed from the array itself")
}

// ---------------------------------------------------------------------------------------------------------------
// Dense

#[derive(Debug, Clone)]
pub(crate) struct DenseModule {
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub bias_initializer: Initializer,
    pub kernel: Option<Array2<f32>>,
    pub bias: Option<ndarray::Array1<f32>>,
}

impl DenseModule {
    pub(crate) fn new(units: usize) -> Self {
        DenseModule {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::zeros(),
            kernel: None,
            bias: None,
        }
    }

    /// Builds the weights for an input whose last dimension is `d` (no-op when already built for `d`).
    pub(crate) fn build(&mut self, ctx: &str, d: usize) -> Result<()> {
        if self.units == 0 {
            return Err(Error::invalid(ctx, "units", "a positive integer", 0));
        }
        if let Some(k) = &self.kernel {
            if k.nrows() != d {
                return Err(Error::shape(
                    ctx,
                    "inputs",
                    format!("(..., {})", k.nrows()),
                    format!("(..., {d})"),
                ));
            }
            return Ok(());
        }
        let k = self.kernel_initializer.sample(&[d, self.units])?;
        self.kernel = Some(
            k.into_dimensionality()
                .expect("initializer returns the requested rank"),
        );
        if self.use_bias {
            let b = self.bias_initializer.sample(&[self.units])?;
            self.bias = Some(
                b.into_dimensionality()
                    .expect("initializer returns the requested rank"),
            );
        }
        Ok(())
    }

    /// `act(x @ K + b)` on a matrix of rows.
    pub(crate) fn forward_matrix(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let k = self.kernel.as_ref().expect("built before forward");
        let mut y = Array2::<f32>::zeros((x.nrows(), self.units));
        if let Some(b) = &self.bias {
            y.rows_mut().into_iter().for_each(|mut r| r.assign(b));
        }
        general_mat_mul(1.0, &x, k, 1.0, &mut y);
        if let Some(s) = y.as_slice_mut() {
            self.activation.apply_rows(s, self.units);
        }
        y
    }
}

/// What Dense's backward pass needs: the input rows, the pre-activations and the outputs.
pub(crate) struct DenseTape {
    x: Array2<f32>,
    pre: Array2<f32>,
    y: Array2<f32>,
    in_shape: Vec<usize>,
    /// Set by the trainer when a loss differentiated the pre-activations directly (Keras' logits path for a
    /// softmax or sigmoid output feeding a crossentropy): added to the pre-activation gradient, skipping the
    /// activation.
    pub logits_grad: Option<Array2<f32>>,
}

impl DenseTape {
    /// The pre-activations of the call, shaped as the output (for crossentropy losses on logits).
    pub(crate) fn logits(&self, out_shape: &[usize]) -> ArrayD<f32> {
        self.pre
            .clone()
            .into_shape_with_order(IxDyn(out_shape))
            .expect("same number of elements")
    }
}

impl DenseModule {
    /// Forward pass keeping the pre-activations (same float operations as `forward_matrix`).
    pub(crate) fn forward_matrix_train(&self, x: Array2<f32>) -> DenseTape {
        let k = self.kernel.as_ref().expect("built before forward");
        let mut pre = Array2::<f32>::zeros((x.nrows(), self.units));
        if let Some(b) = &self.bias {
            pre.rows_mut().into_iter().for_each(|mut r| r.assign(b));
        }
        general_mat_mul(1.0, &x, k, 1.0, &mut pre);
        let mut y = pre.clone();
        if let Some(s) = y.as_slice_mut() {
            self.activation.apply_rows(s, self.units);
        }
        DenseTape {
            in_shape: vec![x.nrows(), x.ncols()],
            x,
            pre,
            y,
            logits_grad: None,
        }
    }

    /// Backward pass on rows: returns `(dx, [dK, db])`.
    pub(crate) fn backward_matrix(
        &self,
        tape: &DenseTape,
        dy: ArrayView2<'_, f32>,
    ) -> (Array2<f32>, Vec<ArrayD<f32>>) {
        let k = self.kernel.as_ref().expect("built before backward");
        let mut dpre = if self.activation == Activation::Linear {
            dy.to_owned()
        } else {
            let mut d = Array2::<f32>::zeros(dy.raw_dim());
            let dy = dy.as_standard_layout();
            self.activation.backprop_rows(
                tape.pre.as_slice().expect("fresh array"),
                tape.y.as_slice().expect("fresh array"),
                dy.as_slice().expect("standard layout"),
                d.as_slice_mut().expect("fresh array"),
                self.units,
            );
            d
        };
        if let Some(lg) = &tape.logits_grad {
            dpre += lg;
        }
        let mut dk = Array2::<f32>::zeros(k.raw_dim());
        general_mat_mul(1.0, &tape.x.t(), &dpre, 0.0, &mut dk);
        let mut dx = Array2::<f32>::zeros(tape.x.raw_dim());
        general_mat_mul(1.0, &dpre, &k.t(), 0.0, &mut dx);
        let mut w = vec![dk.into_dyn()];
        if self.bias.is_some() {
            w.push(dpre.sum_axis(Axis(0)).into_dyn());
        }
        (dx, w)
    }
}

impl Module for DenseModule {
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn base_name(&self) -> &'static str {
        "dense"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = one_input(ctx, inputs, st)?;
        let d = match x.last() {
            Some(Some(d)) if x.len() >= 2 => *d,
            _ => {
                return Err(Error::shape(
                    ctx,
                    "inputs",
                    "(batch, ..., features) with a known last dimension",
                    fmt_sym(x),
                ));
            }
        };
        self.build(ctx, d)?;
        let mut out = x.clone();
        *out.last_mut().expect("rank >= 2") = Some(self.units);
        Ok(vec![out])
    }
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        let x = &call.inputs[0];
        let d = *x.shape().last().unwrap_or(&0);
        self.build(ctx, d)?;
        let y = self.forward_matrix(as_matrix(x).view());
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank checked") = self.units;
        let y = y
            .into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements");
        Ok(Forward {
            outputs: vec![y],
            mask: call.mask.cloned(),
        })
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        _tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let x = &call.inputs[0];
        let d = *x.shape().last().unwrap_or(&0);
        self.build(ctx, d)?;
        let mut tape = self.forward_matrix_train(as_matrix(x));
        tape.in_shape = x.shape().to_vec();
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank checked") = self.units;
        let y = tape
            .y
            .clone()
            .into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements");
        Ok((
            Forward {
                outputs: vec![y],
                mask: call.mask.cloned(),
            },
            Box::new(tape),
        ))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let tape = tape.downcast::<DenseTape>().expect("Dense tape");
        let dy = match grads.into_iter().next().flatten() {
            Some(g) => as_matrix(&g.view()),
            None => Array2::zeros(tape.y.raw_dim()),
        };
        let (dx, w) = self.backward_matrix(&tape, dy.view());
        let dx = dx
            .into_shape_with_order(IxDyn(&tape.in_shape))
            .expect("same number of elements");
        Ok(Backward {
            inputs: vec![Some(dx)],
            initial_state: vec![],
            weights: w,
        })
    }
    fn weights(&self) -> Vec<ArrayD<f32>> {
        let mut w = Vec::new();
        if let Some(k) = &self.kernel {
            w.push(k.clone().into_dyn());
        }
        if let Some(b) = &self.bias {
            w.push(b.clone().into_dyn());
        }
        w
    }
    fn weight_specs(&self) -> Vec<WeightSpec> {
        let mut s = Vec::new();
        if let Some(k) = &self.kernel {
            s.push(WeightSpec {
                name: "kernel".into(),
                shape: k.shape().to_vec(),
            });
            if self.use_bias {
                s.push(WeightSpec {
                    name: "bias".into(),
                    shape: vec![self.units],
                });
            }
        }
        s
    }
    fn assign_weights(&mut self, weights: Vec<ArrayD<f32>>) {
        let mut it = weights.into_iter();
        self.kernel = it
            .next()
            .map(|k| k.into_dimensionality().expect("shape checked"));
        if self.use_bias {
            self.bias = it
                .next()
                .map(|b| b.into_dimensionality().expect("shape checked"));
        }
    }
    fn is_built(&self) -> bool {
        self.kernel.is_some()
    }
    fn config(&self) -> serde_json::Value {
        json!({
            "trainable": true,
            "units": self.units,
            "activation": self.activation.name(),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.to_config(),
            "bias_initializer": self.bias_initializer.to_config(),
            "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null,
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
    /// A densely connected layer, `act(x @ kernel + bias)`, acting on the last axis of an input of any rank
    /// (so on `(batch, time, features)` it is applied at every time step, like `TimeDistributed(Dense)`).
    ///
    /// ```
    /// use rnnlab::{Dense, Tensor};
    /// let y = Dense::new(3).activation("softmax").apply(&Tensor::zeros((2, 5, 4))).unwrap();
    /// assert_eq!(y.shape(), [2, 5, 3]);
    /// ```
    Dense
);

impl Dense {
    /// `Dense(units)` with Keras defaults: linear activation, bias, glorot_uniform kernel, zeros bias.
    pub fn new(units: usize) -> Dense {
        Dense(Layer::from_module(Box::new(DenseModule::new(units))))
    }
    fn set(self, f: impl FnOnce(&mut DenseModule)) -> Self {
        self.0.with_module::<DenseModule, _>(f);
        self
    }
    /// Activation by Keras name (`"softmax"`, `"tanh"`, ...). An unknown name is reported when the layer is called.
    pub fn activation(self, name: &str) -> Self {
        match Activation::from_name(name) {
            Ok(a) => self.set(|m| m.activation = a),
            Err(_) => {
                self.0.defer_unknown("activation", name);
                self
            }
        }
    }
    /// Activation as a value.
    pub fn activation_fn(self, act: Activation) -> Self {
        self.set(|m| m.activation = act)
    }
    /// Whether to add a bias (default true).
    pub fn use_bias(self, v: bool) -> Self {
        self.set(|m| m.use_bias = v)
    }
    /// Kernel initializer (default glorot_uniform).
    pub fn kernel_initializer(self, init: Initializer) -> Self {
        self.set(|m| m.kernel_initializer = init)
    }
    /// Bias initializer (default zeros).
    pub fn bias_initializer(self, init: Initializer) -> Self {
        self.set(|m| m.bias_initializer = init)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dropout, Flatten, RepeatVector, Masking: weightless layers.

macro_rules! weightless {
    () => {
        fn weights(&self) -> Vec<ArrayD<f32>> {
            Vec::new()
        }
        fn weight_specs(&self) -> Vec<WeightSpec> {
            Vec::new()
        }
        fn assign_weights(&mut self, _weights: Vec<ArrayD<f32>>) {}
        fn is_built(&self) -> bool {
            true
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    };
}

#[derive(Debug, Clone)]
pub(crate) struct DropoutModule {
    pub rate: f32,
    pub seed: Option<u64>,
    /// The layer's own generator, started from `seed` at the first training call (Keras' SeedGenerator).
    pub rng: Option<rand::rngs::StdRng>,
}

/// A per-call mask of Dropout: kept values scaled by 1/(1-rate), as Keras' `backend.random.dropout` does.
struct DropoutTape(Option<ArrayD<f32>>);

impl Module for DropoutModule {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn base_name(&self) -> &'static str {
        "dropout"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(ctx, "rate", "a float in [0, 1)", self.rate));
        }
        Ok(vec![one_input(ctx, inputs, st)?.clone()])
    }
    fn forward(&mut self, _ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        // Inference: Dropout is the identity (Keras applies it only with training=True).
        Ok(Forward {
            outputs: vec![call.inputs[0].to_owned()],
            mask: call.mask.cloned(),
        })
    }
    fn forward_train(
        &mut self,
        _ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let x = &call.inputs[0];
        if !tc.training || self.rate == 0.0 {
            return Ok((
                Forward {
                    outputs: vec![x.to_owned()],
                    mask: call.mask.cloned(),
                },
                Box::new(DropoutTape(None)),
            ));
        }
        use rand::{Rng, SeedableRng};
        let keep = 1.0 - self.rate;
        let scale = 1.0 / keep;
        let rng: &mut rand::rngs::StdRng = match self.seed {
            Some(seed) => self
                .rng
                .get_or_insert_with(|| rand::rngs::StdRng::seed_from_u64(seed)),
            None => &mut tc.rng,
        };
        let mask = ArrayD::from_shape_simple_fn(x.raw_dim(), || {
            if rng.random::<f32>() < keep {
                scale
            } else {
                0.0
            }
        });
        let y = x * &mask;
        Ok((
            Forward {
                outputs: vec![y],
                mask: call.mask.cloned(),
            },
            Box::new(DropoutTape(Some(mask))),
        ))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let tape = tape.downcast::<DropoutTape>().expect("Dropout tape");
        let g = grads.into_iter().next().flatten();
        let dx = match (g, tape.0) {
            (Some(g), Some(m)) => Some(g * m),
            (g, _) => g,
        };
        Ok(Backward::input_only(dx))
    }
    fn config(&self) -> serde_json::Value {
        json!({"trainable": true, "rate": self.rate, "seed": self.seed, "noise_shape": null})
    }
    weightless!();
}

layer_handle!(
    /// Dropout: the identity at inference (`predict`), as in Keras.
    Dropout
);
impl Dropout {
    /// `Dropout(rate)`; the rate must be in [0, 1) (checked when called).
    pub fn new(rate: f32) -> Dropout {
        Dropout(Layer::from_module(Box::new(DropoutModule {
            rate,
            seed: None,
            rng: None,
        })))
    }
    /// Seed for the dropout mask (used in training).
    pub fn seed(self, seed: u64) -> Self {
        self.0.with_module::<DropoutModule, _>(|m| {
            m.seed = Some(seed);
            m.rng = None;
        });
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FlattenModule;

impl Module for FlattenModule {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn base_name(&self) -> &'static str {
        "flatten"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = one_input(ctx, inputs, st)?;
        if x.is_empty() {
            return Err(Error::shape(ctx, "inputs", "(batch, ...)", fmt_sym(x)));
        }
        let rest: Option<usize> = x[1..].iter().try_fold(1usize, |a, d| d.map(|d| a * d));
        Ok(vec![vec![x[0], rest]])
    }
    fn forward(&mut self, _ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        let x = &call.inputs[0];
        let b = x.shape().first().copied().unwrap_or(1);
        let rest = if b == 0 {
            x.shape()[1..].iter().product()
        } else {
            x.len() / b
        };
        let v: Vec<f32> = x.iter().copied().collect();
        let y = ArrayD::from_shape_vec(IxDyn(&[b, rest]), v).expect("same number of elements");
        Ok(Forward {
            outputs: vec![y],
            mask: None,
        })
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        _tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let shape = call.inputs[0].shape().to_vec();
        Ok((self.forward(ctx, call)?, Box::new(shape)))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let shape = tape.downcast::<Vec<usize>>().expect("Flatten tape");
        let dx = grads.into_iter().next().flatten().map(|g| {
            let g = g.as_standard_layout().into_owned();
            g.into_shape_with_order(IxDyn(&shape))
                .expect("same number of elements")
        });
        Ok(Backward::input_only(dx))
    }
    fn config(&self) -> serde_json::Value {
        json!({"trainable": true, "data_format": "channels_last"})
    }
    weightless!();
}

layer_handle!(
    /// Flattens every axis after the batch: `(B, a, b) -> (B, a*b)`.
    ///
    /// ```
    /// use rnnlab::{Flatten, Tensor};
    /// assert_eq!(Flatten::new().apply(&Tensor::zeros((2, 5, 3))).unwrap().shape(), [2, 15]);
    /// ```
    Flatten
);
impl Flatten {
    /// `Flatten()`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Flatten {
        Flatten(Layer::from_module(Box::new(FlattenModule)))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RepeatVectorModule {
    pub n: usize,
}

impl Module for RepeatVectorModule {
    fn class_name(&self) -> &'static str {
        "RepeatVector"
    }
    fn base_name(&self) -> &'static str {
        "repeat_vector"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = one_input(ctx, inputs, st)?;
        super::expect_rank(ctx, "inputs", x, 2, "(batch, features)")?;
        Ok(vec![vec![x[0], Some(self.n), x[1]]])
    }
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        let x = &call.inputs[0];
        if x.ndim() != 2 {
            return Err(Error::shape(
                ctx,
                "inputs",
                "(batch, features)",
                crate::tensor::Shape(x.shape().to_vec()),
            ));
        }
        let (b, d) = (x.shape()[0], x.shape()[1]);
        let y = ArrayD::from_shape_fn(IxDyn(&[b, self.n, d]), |i| x[[i[0], i[2]]]);
        Ok(Forward {
            outputs: vec![y],
            mask: None,
        })
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        _tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        Ok((self.forward(ctx, call)?, Box::new(())))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        _tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        // Every copy of the vector receives a gradient: they add up.
        let dx = grads
            .into_iter()
            .next()
            .flatten()
            .map(|g| g.sum_axis(Axis(1)));
        Ok(Backward::input_only(dx))
    }
    fn config(&self) -> serde_json::Value {
        json!({"trainable": true, "n": self.n})
    }
    weightless!();
}

layer_handle!(
    /// Repeats a `(batch, features)` input `n` times: `(batch, n, features)`.
    ///
    /// ```
    /// use rnnlab::{RepeatVector, Tensor};
    /// let y = RepeatVector::new(3).apply(&Tensor::new((1, 2), vec![1.0, 2.0]).unwrap()).unwrap();
    /// assert_eq!(y.shape(), [1, 3, 2]);
    /// ```
    RepeatVector
);
impl RepeatVector {
    /// `RepeatVector(n)`.
    pub fn new(n: usize) -> RepeatVector {
        RepeatVector(Layer::from_module(Box::new(RepeatVectorModule { n })))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct MaskingModule {
    pub mask_value: f32,
}

impl MaskingModule {
    /// Keras: a step is kept when any feature differs from mask_value; kept steps pass, masked steps become 0.
    pub(crate) fn compute(&self, x: &ndarray::ArrayViewD<'_, f32>) -> (ArrayD<f32>, Mask) {
        let shape = x.shape();
        let (b, t) = (shape[0], shape[1]);
        let mut out = x.to_owned();
        let mut mask = Mask::from_elem((b, t), false);
        for bi in 0..b {
            for ti in 0..t {
                let step = x.index_axis(Axis(0), bi);
                let step = step.index_axis(Axis(0), ti);
                let keep = step.iter().any(|v| *v != self.mask_value);
                mask[[bi, ti]] = keep;
                if !keep {
                    let mut o = out.index_axis_mut(Axis(0), bi);
                    o.index_axis_mut(Axis(0), ti).fill(0.0);
                }
            }
        }
        (out, mask)
    }
}

impl Module for MaskingModule {
    fn class_name(&self) -> &'static str {
        "Masking"
    }
    fn base_name(&self) -> &'static str {
        "masking"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        let x = one_input(ctx, inputs, st)?;
        if x.len() < 3 {
            return Err(Error::shape(
                ctx,
                "inputs",
                "(batch, timesteps, features...) (rank >= 3)",
                fmt_sym(x),
            ));
        }
        Ok(vec![x.clone()])
    }
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward> {
        let x = &call.inputs[0];
        if x.ndim() < 3 {
            return Err(Error::shape(
                ctx,
                "inputs",
                "(batch, timesteps, features...)",
                crate::tensor::Shape(x.shape().to_vec()),
            ));
        }
        let (out, mask) = self.compute(x);
        Ok(Forward {
            outputs: vec![out],
            mask: Some(mask),
        })
    }
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        _tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let f = self.forward(ctx, call)?;
        let mask = f.mask.clone().expect("Masking always makes a mask");
        Ok((f, Box::new(mask)))
    }
    fn backward(
        &mut self,
        _ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        // Masked steps were replaced by zeros: no gradient reaches their inputs.
        let mask = tape.downcast::<Mask>().expect("Masking tape");
        let dx = grads.into_iter().next().flatten().map(|mut g| {
            for ((bi, ti), keep) in mask.indexed_iter() {
                if !keep {
                    let mut o = g.index_axis_mut(Axis(0), bi);
                    o.index_axis_mut(Axis(0), ti).fill(0.0);
                }
            }
            g
        });
        Ok(Backward::input_only(dx))
    }
    fn config(&self) -> serde_json::Value {
        json!({"trainable": true, "mask_value": self.mask_value})
    }
    weightless!();
}

layer_handle!(
    /// Masks time steps whose features all equal `mask_value`; the recurrent layers downstream skip them
    /// (states carried over, previous output repeated), as in Keras.
    Masking
);
impl Masking {
    /// `Masking(mask_value)` (Keras' default is 0.0).
    pub fn new(mask_value: f32) -> Masking {
        Masking(Layer::from_module(Box::new(MaskingModule { mask_value })))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// InputLayer: the layer behind `Input(...)`; it never runs, the executor feeds its tensor.

#[derive(Debug, Clone)]
pub(crate) struct InputLayer {
    pub batch_shape: SymShape,
}

impl Module for InputLayer {
    fn class_name(&self) -> &'static str {
        "InputLayer"
    }
    fn base_name(&self) -> &'static str {
        "input_layer"
    }
    fn call_shapes(
        &mut self,
        ctx: &str,
        _inputs: &[SymShape],
        _st: &[SymShape],
    ) -> Result<Vec<SymShape>> {
        Err(Error::Graph(format!(
            "{ctx}: an InputLayer cannot be called on a tensor"
        )))
    }
    fn forward(&mut self, ctx: &str, _call: CallInputs<'_>) -> Result<Forward> {
        Err(Error::Graph(format!(
            "{ctx}: an InputLayer is fed, not run"
        )))
    }
    fn config(&self) -> serde_json::Value {
        json!({"batch_shape": self.batch_shape, "dtype": "float32", "sparse": false, "ragged": false, "optional": false})
    }
    weightless!();
}
