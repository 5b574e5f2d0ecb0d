//! Layers: the shared [`Layer`] handle, the internal `Module` trait every layer kind implements, and the
//! Keras-named builders ([`LSTM`], [`GRU`], [`SimpleRNN`], [`Dense`], ...).
//!
//! A layer object is a handle (`Arc`) to one set of weights: cloning it or calling it twice shares the weights,
//! as calling a Keras layer object twice does (the encoder-decoder inference models rely on this).

mod core;
pub(crate) mod rnn;
mod wrappers;

pub use self::core::{Dense, Dropout, Flatten, Masking, RepeatVector};
pub use rnn::{SimpleRNN, GRU, LSTM};
pub use wrappers::{Bidirectional, MergeMode, TimeDistributed};

pub(crate) use self::core::{DenseModule, DenseTape, InputLayer};
pub(crate) use wrappers::{BidirectionalModule, TimeDistributedModule};

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ndarray::{Array2, ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::model::graph::{Node, SymbolicTensor};
use crate::tensor::{Shape, Tensor};

/// A symbolic shape: `None` is an unknown dimension (the batch, or a variable number of time steps).
pub type SymShape = Vec<Option<usize>>;

/// Formats a symbolic shape as Python does: `(None, 3, 1)`.
pub fn fmt_sym(shape: &[Option<usize>]) -> String {
    struct S<'a>(&'a [Option<usize>]);
    impl fmt::Display for S<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            crate::tensor::fmt_tuple(f, self.0, |f, d| match d {
                Some(d) => write!(f, "{d}"),
                None => f.write_str("None"),
            })
        }
    }
    S(shape).to_string()
}

/// A time-step mask, `(batch, timesteps)`, `true` = use this step (Keras' `_keras_mask`).
pub(crate) type Mask = Array2<bool>;

/// What a module returns from a forward pass: its output arrays and the mask carried by its first output.
pub(crate) struct Forward {
    pub outputs: Vec<ArrayD<f32>>,
    pub mask: Option<Mask>,
}

/// What the executor hands a module for one call.
pub(crate) struct CallInputs<'a> {
    pub inputs: Vec<ArrayViewD<'a, f32>>,
    pub initial_state: Vec<ArrayViewD<'a, f32>>,
    pub mask: Option<&'a Mask>,
}

/// One weight of a layer with its Keras name (`kernel`, `recurrent_kernel`, `bias`).
#[derive(Clone, Debug)]
pub(crate) struct WeightSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// What a module's recording forward pass keeps for its backward pass (each module downcasts its own type).
pub(crate) type Tape = Box<dyn Any + Send>;

/// Gradients a module's backward pass returns, in the order of the call's inputs, initial states and weights
/// (`get_weights()` order). `None` for an input or state means "no gradient flows there".
pub(crate) struct Backward {
    pub inputs: Vec<Option<ArrayD<f32>>>,
    pub initial_state: Vec<Option<ArrayD<f32>>>,
    pub weights: Vec<ArrayD<f32>>,
}

impl Backward {
    /// The backward pass of a weightless one-input layer: just the input's gradient.
    pub(crate) fn input_only(dx: Option<ArrayD<f32>>) -> Backward {
        Backward {
            inputs: vec![dx],
            initial_state: vec![],
            weights: vec![],
        }
    }
}

/// The context of a recording forward pass: whether it is training (dropout active) and the generator that
/// layers without their own seed draw dropout masks from.
pub(crate) struct TrainCtx {
    pub training: bool,
    pub rng: rand::rngs::StdRng,
}

/// The error for a layer kind without gradients.
pub(crate) fn no_training(ctx: &str, class: &str) -> Error {
    Error::Unsupported(format!(
        "{ctx}: training is not available for {class} layers (no gradient is defined for them)"
    ))
}

/// The behaviour of one kind of layer. Implemented by every layer type; used through [`Layer`].
pub(crate) trait Module: Send + Sync + fmt::Debug + Any {
    /// Keras class name (`"LSTM"`).
    fn class_name(&self) -> &'static str;
    /// Prefix of automatic names (`"lstm"`, `"simple_rnn"`).
    fn base_name(&self) -> &'static str;
    /// Checks the input shapes of one call, builds the weights on the first call, and returns the output shapes.
    fn call_shapes(
        &mut self,
        ctx: &str,
        inputs: &[SymShape],
        initial_state: &[SymShape],
    ) -> Result<Vec<SymShape>>;
    /// Runs the layer (inference).
    fn forward(&mut self, ctx: &str, call: CallInputs<'_>) -> Result<Forward>;
    /// Runs the layer and records what [`Module::backward`] needs. With `tc.training` dropout is active.
    fn forward_train(
        &mut self,
        ctx: &str,
        call: CallInputs<'_>,
        tc: &mut TrainCtx,
    ) -> Result<(Forward, Tape)> {
        let _ = (call, tc);
        Err(no_training(ctx, self.class_name()))
    }
    /// Back-propagates the gradients of the outputs (one per output, `None` when an output is unused) through the
    /// call recorded in `tape`.
    fn backward(
        &mut self,
        ctx: &str,
        tape: Tape,
        grads: Vec<Option<ArrayD<f32>>>,
    ) -> Result<Backward> {
        let _ = (tape, grads);
        Err(no_training(ctx, self.class_name()))
    }
    /// The weights in Keras' `get_weights()` order (empty before the layer is built).
    fn weights(&self) -> Vec<ArrayD<f32>>;
    /// Names and shapes of the weights (empty before the layer is built).
    fn weight_specs(&self) -> Vec<WeightSpec>;
    /// Replaces the weights; the caller has checked count and shapes against `weight_specs`.
    fn assign_weights(&mut self, weights: Vec<ArrayD<f32>>);
    /// Whether the weights exist.
    fn is_built(&self) -> bool;
    /// Clears recurrent state kept between calls (stateful RNNs). A no-op elsewhere.
    fn reset_state(&mut self) {}
    /// The Keras config dict of this layer (without the `name`, which the handle owns).
    fn config(&self) -> serde_json::Value;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A process-unique id for layers and nodes (unique across notebook cells too: see [`crate::process`]).
pub(crate) fn next_id() -> u64 {
    crate::process::state()
        .next_id
        .fetch_add(1, Ordering::Relaxed)
}

/// Keras' per-prefix global name counters: `lstm`, `lstm_1`, `lstm_2`, ...
pub(crate) fn unique_name(prefix: &str) -> String {
    let mut guard = crate::process::state()
        .names
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let n = map.entry(prefix.to_string()).or_insert(0);
    let name = if *n == 0 {
        prefix.to_string()
    } else {
        format!("{prefix}_{n}")
    };
    *n += 1;
    name
}

/// Gives an automatic name back when it was the last one handed out for its prefix, so that naming a layer right
/// after creating it (`LSTM::new(4).name("enc")`) consumes no counter, as Keras' `name=` argument does not.
pub(crate) fn release_name(prefix: &str, name: &str) {
    let mut guard = crate::process::state()
        .names
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some(map) = guard.as_mut() else { return };
    if let Some(n) = map.get_mut(prefix) {
        let last = match *n {
            0 => return,
            1 => prefix.to_string(),
            k => format!("{prefix}_{}", k - 1),
        };
        if last == name {
            *n -= 1;
        }
    }
}

/// Resets the automatic layer and model names, like `keras.backend.clear_session()`: the next LSTM is `lstm` again.
pub fn clear_session() {
    let mut guard = crate::process::state()
        .names
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *guard = None;
}

/// A layer's name and the context its errors carry (`Layer "lstm" (LSTM)`), made once per name: every call of
/// the layer in a graph passes the context on, and formatting it there took two of the 20 allocations of a
/// batch-1 `predict`.
struct Naming {
    name: String,
    ctx: Arc<str>,
}

impl Naming {
    fn new(name: String, class_name: &str) -> Naming {
        let ctx = format!("Layer \"{name}\" ({class_name})").into();
        Naming { name, ctx }
    }
}

pub(crate) struct LayerShared {
    pub id: u64,
    name: Mutex<Naming>,
    module: Mutex<Box<dyn Module>>,
    /// The layer's calls. Weak: a node owns its layer, so strong links back would make every graph a
    /// reference cycle that is never freed; models and symbolic tensors keep the nodes they use alive.
    pub(crate) nodes: Mutex<Vec<Weak<Node>>>,
    /// Names given to setters that did not resolve (setters never fail; the call reports them).
    pending: Mutex<Vec<(String, String)>>,
}

/// A handle to one layer and its weights. Cheap to clone; clones share the weights.
///
/// Every Keras-named builder ([`LSTM`], [`Dense`], ...) converts into a `Layer` and derefs to one, so the
/// methods here (`call`, `call_n`, `get_weights`, ...) are available on all of them.
#[derive(Clone)]
pub struct Layer {
    pub(crate) shared: Arc<LayerShared>,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.module();
        write!(
            f,
            "<{} name={}, built={}",
            m.class_name(),
            self.name(),
            m.is_built()
        )?;
        let specs = m.weight_specs();
        if !specs.is_empty() {
            let n: usize = specs
                .iter()
                .map(|s| s.shape.iter().product::<usize>())
                .sum();
            write!(f, ", params={n}")?;
        }
        f.write_str(">")
    }
}

impl PartialEq for Layer {
    fn eq(&self, other: &Layer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// What a layer call returns when several tensors come back: checked against `N` at run time.
fn take_n<const N: usize, T: fmt::Debug>(ctx: &str, v: Vec<T>) -> Result<[T; N]> {
    let got = v.len();
    v.try_into().map_err(|_| {
        Error::Graph(format!(
            "{ctx} returns {got} tensor(s), but {N} were expected by the destructuring pattern. \
             (LSTM with return_state=True returns [output, state_h, state_c]; GRU and SimpleRNN [output, state_h].)"
        ))
    })
}

impl Layer {
    pub(crate) fn from_module(module: Box<dyn Module>) -> Layer {
        // Keras names a layer when it is created (per-class counters), so the order of creation decides the names.
        let name = Naming::new(unique_name(module.base_name()), module.class_name());
        Layer {
            shared: Arc::new(LayerShared {
                id: next_id(),
                name: Mutex::new(name),
                module: Mutex::new(module),
                nodes: Mutex::new(Vec::new()),
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn module(&self) -> MutexGuard<'_, Box<dyn Module>> {
        // A panic while the lock was held cannot leave the module half-updated in a way we rely on, so recover.
        self.shared.module.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the concrete module type (used by the typed builders' setters).
    pub(crate) fn with_module<M: Module, R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        let mut guard = self.module();
        let m = guard
            .as_any_mut()
            .downcast_mut::<M>()
            .expect("typed builder always wraps its own module type");
        f(m)
    }

    /// The layer's name: given with `.name(..)`, or the automatic one (`lstm`, `lstm_1`, ...) from its creation.
    pub fn name(&self) -> String {
        self.naming(|n| n.name.clone())
    }

    /// `f` of the layer's [`Naming`].
    fn naming<R>(&self, f: impl FnOnce(&Naming) -> R) -> R {
        f(&self.shared.name.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The nodes (calls) of this layer that still exist (held by a model or a symbolic tensor), in call order.
    pub(crate) fn nodes(&self) -> Vec<Arc<Node>> {
        self.shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Records an unknown name given to a setter, reported by the next call.
    pub(crate) fn defer_unknown(&self, kind: &str, name: &str) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((kind.to_string(), name.to_string()));
    }

    /// Fails with the first unknown name a setter received.
    pub(crate) fn check_pending(&self) -> Result<()> {
        let p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((kind, name)) = p.first() {
            let known: &[&str] = match kind.as_str() {
                "activation" | "recurrent_activation" => crate::activations::ACTIVATION_NAMES,
                "recurrent layer for Bidirectional" => &["LSTM", "GRU", "SimpleRNN"],
                _ => &[],
            };
            let e = Error::unknown(kind.clone(), name.clone(), known);
            return Err(Error::Graph(format!("{}: {e}", self.ctx())));
        }
        Ok(())
    }

    pub(crate) fn set_name(&self, name: &str) {
        let (base, class_name) = {
            let m = self.module();
            (m.base_name(), m.class_name())
        };
        let mut n = self.shared.name.lock().unwrap_or_else(|e| e.into_inner());
        if n.name != name {
            release_name(base, &n.name);
        }
        *n = Naming::new(name.to_string(), class_name);
    }

    /// The Keras class name (`"LSTM"`, `"Dense"`, ...).
    pub fn class_name(&self) -> &'static str {
        self.module().class_name()
    }

    /// `Layer "lstm" (LSTM)`: how errors name this layer.
    pub(crate) fn ctx(&self) -> Arc<str> {
        self.naming(|n| n.ctx.clone())
    }

    /// Whether the weights exist (a layer is built by its first call, on the input's last dimension).
    pub fn built(&self) -> bool {
        self.module().is_built()
    }

    /// The weights in Keras' `get_weights()` order: `[kernel, recurrent_kernel, bias]` for recurrent layers,
    /// forward then backward for Bidirectional, `[kernel, bias]` for Dense.
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.module().weights().into_iter().map(Tensor).collect()
    }

    /// The Keras names of the weights (`kernel`, `recurrent_kernel`, `bias`, prefixed for wrappers).
    pub fn weight_names(&self) -> Vec<String> {
        self.module()
            .weight_specs()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    /// The shapes of the weights, in `get_weights()` order.
    pub fn weight_shapes(&self) -> Vec<Shape> {
        self.module()
            .weight_specs()
            .into_iter()
            .map(|s| Shape(s.shape))
            .collect()
    }

    /// Replaces the weights (Keras `set_weights`), checking their number and shapes.
    ///
    /// # Errors
    /// The layer is not built yet, or a count or shape differs.
    pub fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let ctx = self.ctx();
        let mut m = self.module();
        let specs = m.weight_specs();
        if !m.is_built() {
            return Err(Error::Graph(format!(
                "{ctx}: set_weights() needs a built layer; call the layer on an input first so the weight shapes are known"
            )));
        }
        check_weights(&ctx, &specs, weights)?;
        // Standard (C) layout: the kernels read weights as contiguous row-major slices, and a transposed or
        // Fortran-ordered array from the caller must not change that.
        m.assign_weights(
            weights
                .iter()
                .map(|t| t.0.as_standard_layout().into_owned())
                .collect(),
        );
        Ok(())
    }

    /// Number of scalar weights (0 before the layer is built).
    pub fn count_params(&self) -> usize {
        self.module()
            .weight_specs()
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum()
    }

    /// Resets the recurrent state of a stateful layer to zeros (Keras `layer.reset_state()`).
    pub fn reset_state(&self) {
        self.module().reset_state()
    }

    /// The layer's Keras config (`get_config()`), as JSON.
    pub fn get_config(&self) -> serde_json::Value {
        let mut c = self.module().config();
        if let Some(obj) = c.as_object_mut() {
            let mut with_name = serde_json::Map::new();
            with_name.insert("name".into(), self.name().into());
            with_name.extend(std::mem::take(obj));
            *obj = with_name;
        }
        c
    }

    pub(crate) fn call_impl(
        &self,
        inputs: &[&SymbolicTensor],
        initial_state: &[&SymbolicTensor],
    ) -> Result<Vec<SymbolicTensor>> {
        self.check_pending()?;
        let ctx = self.ctx();
        let in_shapes: Vec<SymShape> = inputs.iter().map(|t| t.sym_shape().to_vec()).collect();
        let st_shapes: Vec<SymShape> = initial_state
            .iter()
            .map(|t| t.sym_shape().to_vec())
            .collect();
        let out_shapes = self.module().call_shapes(&ctx, &in_shapes, &st_shapes)?;
        Ok(crate::model::graph::add_node(
            self,
            inputs.iter().map(|t| (*t).clone()).collect(),
            initial_state.iter().map(|t| (*t).clone()).collect(),
            out_shapes,
        ))
    }

    /// Calls the layer on a symbolic tensor and returns its single output.
    ///
    /// # Errors
    /// A shape the layer cannot take, or a layer that returns several tensors (use [`Layer::call_n`]).
    pub fn call(&self, input: &SymbolicTensor) -> Result<SymbolicTensor> {
        let [y] = self.call_n::<1>(input)?;
        Ok(y)
    }

    /// Calls the layer and destructures its outputs: `let [seq, h, c] = lstm.call_n(&x)?;`.
    ///
    /// # Errors
    /// Shape errors, or `N` differs from the number of tensors the layer returns.
    pub fn call_n<const N: usize>(&self, input: &SymbolicTensor) -> Result<[SymbolicTensor; N]> {
        let v = self.call_impl(&[input], &[])?;
        take_n(&self.ctx(), v)
    }

    /// Calls the layer and returns all its outputs (output first, then states).
    pub fn call_all(&self, input: &SymbolicTensor) -> Result<Vec<SymbolicTensor>> {
        self.call_impl(&[input], &[])
    }

    /// Calls a recurrent layer with an `initial_state` (`[h, c]` for LSTM, `[h]` for GRU and SimpleRNN, halves for
    /// Bidirectional) and returns its single output.
    pub fn call_with_state(
        &self,
        input: &SymbolicTensor,
        initial_state: &[&SymbolicTensor],
    ) -> Result<SymbolicTensor> {
        let [y] = self.call_n_with_state::<1>(input, initial_state)?;
        Ok(y)
    }

    /// [`Layer::call_with_state`], destructuring `N` outputs: `let [seq, h, c] = dec.call_n_with_state(&x, &[&h0, &c0])?;`.
    pub fn call_n_with_state<const N: usize>(
        &self,
        input: &SymbolicTensor,
        initial_state: &[&SymbolicTensor],
    ) -> Result<[SymbolicTensor; N]> {
        let v = self.call_impl(&[input], initial_state)?;
        take_n(&self.ctx(), v)
    }

    /// [`Layer::call_with_state`] returning all outputs.
    pub fn call_all_with_state(
        &self,
        input: &SymbolicTensor,
        initial_state: &[&SymbolicTensor],
    ) -> Result<Vec<SymbolicTensor>> {
        self.call_impl(&[input], initial_state)
    }

    /// Calls a layer that takes several inputs (e.g. `Concatenate`).
    pub fn call_multi(&self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let v = self.call_impl(inputs, &[])?;
        let [y] = take_n::<1, _>(&self.ctx(), v)?;
        Ok(y)
    }

    /// Runs the layer eagerly on an array (Keras `layer(x)` on concrete data) and returns all outputs.
    /// Builds the weights from the input's shape on first use.
    ///
    /// ```
    /// use rnnlab::{LSTM, Tensor};
    /// let x = Tensor::zeros((2, 5, 3));
    /// let out = LSTM::new(4).return_sequences(true).return_state(true).apply_all(&x).unwrap();
    /// let shapes: Vec<String> = out.iter().map(|t| t.shape().to_string()).collect();
    /// assert_eq!(shapes, ["(2, 5, 4)", "(2, 4)", "(2, 4)"]);
    /// ```
    pub fn apply_all(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.apply_all_with_state(input, &[])
    }

    /// Eager call returning the single output.
    pub fn apply(&self, input: &Tensor) -> Result<Tensor> {
        let v = self.apply_all(input)?;
        let [y] = take_n::<1, _>(&self.ctx(), v)?;
        Ok(y)
    }

    /// Eager call destructuring `N` outputs: `let [seq, h, c] = lstm.apply_n(&x)?;`.
    ///
    /// # Errors
    /// Shape errors, or `N` differs from the number of tensors the layer returns.
    pub fn apply_n<const N: usize>(&self, input: &Tensor) -> Result<[Tensor; N]> {
        self.apply_n_with_state(input, &[])
    }

    /// Eager call with an initial state, destructuring `N` outputs — one step of a decoder loop:
    ///
    /// ```
    /// use rnnlab::{LSTM, Tensor};
    /// let decoder = LSTM::new(4).return_sequences(true).return_state(true);
    /// let (mut h, mut c) = (Tensor::zeros((1, 4)), Tensor::zeros((1, 4)));
    /// let x = Tensor::full((1, 1, 2), 0.5);
    /// for _ in 0..3 {
    ///     let [y, h_next, c_next] = decoder.apply_n_with_state(&x, &[&h, &c]).unwrap();
    ///     assert_eq!(y.shape(), [1, 1, 4]);
    ///     (h, c) = (h_next, c_next);
    /// }
    /// ```
    ///
    /// # Errors
    /// Shape errors (input or states), or `N` differs from the number of tensors the layer returns.
    pub fn apply_n_with_state<const N: usize>(
        &self,
        input: &Tensor,
        initial_state: &[&Tensor],
    ) -> Result<[Tensor; N]> {
        let v = self.apply_all_with_state(input, initial_state)?;
        take_n(&self.ctx(), v)
    }

    /// Eager call with an initial state, returning all outputs.
    pub fn apply_all_with_state(
        &self,
        input: &Tensor,
        initial_state: &[&Tensor],
    ) -> Result<Vec<Tensor>> {
        self.check_pending()?;
        let ctx = self.ctx();
        let mut m = self.module();
        let sym = |t: &Tensor| t.shape().0.iter().map(|&d| Some(d)).collect::<SymShape>();
        let st: Vec<SymShape> = initial_state.iter().map(|t| sym(t)).collect();
        m.call_shapes(&ctx, &[sym(input)], &st)?;
        let f = m.forward(
            &ctx,
            CallInputs {
                inputs: vec![input.0.view()],
                initial_state: initial_state.iter().map(|t| t.0.view()).collect(),
                mask: None,
            },
        )?;
        Ok(f.outputs.into_iter().map(Tensor).collect())
    }

    /// The output tensors of this layer's first call (Keras `layer.output`), e.g. to build an encoder model
    /// from a loaded training model.
    ///
    /// # Errors
    /// The layer has never been called.
    pub fn output(&self) -> Result<Vec<SymbolicTensor>> {
        self.output_at(0)
    }

    /// The output tensors of the layer's `node_index`-th call.
    pub fn output_at(&self, node_index: usize) -> Result<Vec<SymbolicTensor>> {
        let nodes = self
            .shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let node = nodes.get(node_index).and_then(Weak::upgrade).ok_or_else(|| {
            Error::Graph(format!(
                "{}: has {} inbound node(s); node {} does not exist (call the layer first) or no model or \
                 tensor uses it any more",
                self.ctx(),
                nodes.len(),
                node_index
            ))
        })?;
        Ok(crate::model::graph::node_outputs(&node))
    }

    /// The input tensors of the layer's first call (Keras `layer.input`).
    pub fn input(&self) -> Result<Vec<SymbolicTensor>> {
        let nodes = self.nodes();
        let node = nodes.first().ok_or_else(|| {
            Error::Graph(format!(
                "{}: has never been called, so it has no input",
                self.ctx()
            ))
        })?;
        Ok(node.inputs.clone())
    }
}

/// Checks a weight list against the expected specs, naming the first mismatch.
pub(crate) fn check_weights(ctx: &str, specs: &[WeightSpec], weights: &[Tensor]) -> Result<()> {
    if specs.len() != weights.len() {
        return Err(Error::invalid(
            ctx,
            "weights",
            format!(
                "a list of {} arrays ({})",
                specs.len(),
                specs
                    .iter()
                    .map(|s| format!("{} {}", s.name, Shape(s.shape.clone())))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("{} arrays", weights.len()),
        ));
    }
    for (i, (s, w)) in specs.iter().zip(weights).enumerate() {
        if w.shape().0 != s.shape {
            return Err(Error::shape(
                ctx,
                format!("weights[{i}] ({})", s.name),
                Shape(s.shape.clone()),
                w.shape(),
            ));
        }
    }
    Ok(())
}

/// Defines the typed builder struct around a [`Layer`] with the shared conversions.
macro_rules! layer_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(pub(crate) $crate::layers::Layer);
        impl std::ops::Deref for $name {
            type Target = $crate::layers::Layer;
            fn deref(&self) -> &$crate::layers::Layer { &self.0 }
        }
        impl From<$name> for $crate::layers::Layer {
            fn from(l: $name) -> $crate::layers::Layer { l.0 }
        }
        impl From<&$name> for $crate::layers::Layer {
            fn from(l: &$name) -> $crate::layers::Layer { l.0.clone() }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { std::fmt::Debug::fmt(&self.0, f) }
        }
        impl $name {
            /// Sets the layer's name (Keras `name=`). Without it a unique automatic name is used.
            pub fn name(self, name: &str) -> Self {
                self.0.set_name(name);
                self
            }
            /// The shared [`Layer`] handle.
            pub fn layer(&self) -> $crate::layers::Layer { self.0.clone() }
        }
    };
}
pub(crate) use layer_handle;

impl From<&Layer> for Layer {
    fn from(l: &Layer) -> Layer {
        l.clone()
    }
}

/// Checks that a symbolic input has the expected rank, returning a Keras-style error otherwise.
pub(crate) fn expect_rank(
    ctx: &str,
    arg: &str,
    shape: &[Option<usize>],
    rank: usize,
    expected: &str,
) -> Result<()> {
    if shape.len() != rank {
        return Err(Error::shape(
            ctx,
            arg,
            format!("{expected} (rank {rank})"),
            format!("{} (rank {})", fmt_sym(shape), shape.len()),
        ));
    }
    Ok(())
}

/// Keras 3's serialized float32 `DTypePolicy`, as layer configs carry it.
pub(crate) fn dtype_policy() -> serde_json::Value {
    serde_json::json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})
}
