//! Training: `compile`, `fit`, `evaluate` and the gradients behind them (backpropagation through the graph and
//! through time), with Keras 3's losses, optimizers and bookkeeping.
//!
//! ```
//! use rnnlab::prelude::*;
//! let inputs = Input::new((4, 2));
//! let h = LSTM::new(3).call(&inputs).unwrap();
//! let y = Dense::new(1).call(&h).unwrap();
//! let model = Model::new(&inputs, &y).unwrap();
//! model.compile(Optimizer::adam(0.01), Loss::mse()).unwrap();
//! let x = Tensor::full((8, 4, 2), 0.5);
//! let t = Tensor::full((8, 1), 0.25);
//! let history = model.fit(&x, &t, FitOptions::new().epochs(3).batch_size(4).verbose(0)).unwrap();
//! assert_eq!(history.loss().len(), 3);
//! assert!(history.loss()[2] < history.loss()[0]);
//! ```

mod losses;
mod optimizers;

pub use losses::{Loss, LOSS_NAMES};
pub use optimizers::{Optimizer, OPTIMIZER_NAMES};

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use ndarray::{ArrayD, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::layers::{CallInputs, DenseModule, DenseTape, Tape, TrainCtx};
use crate::model::functional::{node_args, store_outputs, Values};
use crate::model::graph::Node;
use crate::model::{Model, ModelInputs};
use crate::tensor::Tensor;

/// What `compile` sets: the optimizer, one loss per output and optional loss weights.
///
/// ```
/// use rnnlab::{Compile, Loss, Optimizer};
/// let c = Compile::new(Optimizer::sgd(0.1), Loss::mse());
/// let multi = Compile::multi(Optimizer::adam(0.01), [Loss::mse(), Loss::binary_crossentropy().from_logits(true)])
///     .loss_weights([1.0, 0.5]);
/// assert_eq!(multi.losses().len(), 2);
/// # let _ = c;
/// ```
#[derive(Clone, Debug)]
pub struct Compile {
    pub(crate) optimizer: Optimizer,
    pub(crate) losses: Vec<Loss>,
    pub(crate) loss_weights: Option<Vec<f32>>,
    /// Keras `metrics` from a loaded compile_config: kept so saving writes them back; rnnlab reports losses only.
    pub(crate) metrics: serde_json::Value,
}

impl Compile {
    /// One loss (used for every output, as Keras does with a single loss).
    pub fn new(optimizer: Optimizer, loss: Loss) -> Compile {
        Compile {
            optimizer,
            losses: vec![loss],
            loss_weights: None,
            metrics: serde_json::Value::Null,
        }
    }
    /// One loss per output, in the model's output order.
    pub fn multi(optimizer: Optimizer, losses: impl IntoIterator<Item = Loss>) -> Compile {
        Compile {
            optimizer,
            losses: losses.into_iter().collect(),
            loss_weights: None,
            metrics: serde_json::Value::Null,
        }
    }
    /// Weights of the outputs' losses in the total (Keras `loss_weights`, default all 1).
    pub fn loss_weights(mut self, w: impl IntoIterator<Item = f32>) -> Compile {
        self.loss_weights = Some(w.into_iter().collect());
        self
    }
    /// The losses.
    pub fn losses(&self) -> &[Loss] {
        &self.losses
    }
    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }
    /// The loss weights, if set.
    pub fn get_loss_weights(&self) -> Option<&[f32]> {
        self.loss_weights.as_deref()
    }
    /// Metric names from a loaded Keras compile_config (`null` when none). rnnlab logs losses only.
    pub fn metrics(&self) -> &serde_json::Value {
        &self.metrics
    }

    /// Keras' `compile_config` dict (as `config.json` of a `.keras` file carries it).
    pub fn to_keras_config(&self) -> serde_json::Value {
        let loss = if self.losses.len() == 1 {
            self.losses[0].to_config()
        } else {
            serde_json::Value::Array(self.losses.iter().map(Loss::to_config).collect())
        };
        serde_json::json!({
            "optimizer": self.optimizer.to_config(),
            "loss": loss,
            "loss_weights": self.loss_weights,
            "metrics": self.metrics,
            "weighted_metrics": null,
            "run_eagerly": false,
            "steps_per_execution": 1,
            "jit_compile": false,
        })
    }

    /// Reads Keras' `compile_config` for a model with these output names. `Ok(None)` for an empty config
    /// (an uncompiled model).
    ///
    /// # Errors
    /// An optimizer or loss rnnlab does not implement, or a malformed entry; the message names it.
    pub fn from_keras_config(
        config: &serde_json::Value,
        output_names: &[String],
    ) -> Result<Option<Compile>> {
        use serde_json::Value;
        let Some(obj) = config.as_object() else {
            return Ok(None);
        };
        if obj.is_empty() {
            return Ok(None);
        }
        let optimizer = match obj.get("optimizer") {
            None | Some(Value::Null) => Optimizer::from_name("rmsprop")?, // Keras' compile() default
            Some(v) => Optimizer::from_config(v)?,
        };
        let n = output_names.len();
        let by_output = |v: &Value, what: &str| -> Result<Vec<Value>> {
            match v {
                Value::Array(a) => Ok(a.clone()),
                Value::Object(o) if !o.contains_key("class_name") => output_names
                    .iter()
                    .map(|name| {
                        o.get(name).cloned().ok_or_else(|| {
                            Error::format(
                                "compile_config",
                                format!(
                                    "{what} has no entry for output \"{name}\" (keys: {:?})",
                                    o.keys().collect::<Vec<_>>()
                                ),
                            )
                        })
                    })
                    .collect(),
                other => Ok(vec![other.clone()]),
            }
        };
        let losses = match obj.get("loss") {
            None | Some(Value::Null) => {
                return Err(Error::format(
                    "compile_config",
                    "the model was compiled without a loss, so it cannot be trained",
                ))
            }
            Some(v) => by_output(v, "loss")?
                .iter()
                .map(Loss::from_config)
                .collect::<Result<Vec<_>>>()?,
        };
        let losses = if losses.len() == 1 && n > 1 {
            vec![losses[0]; n]
        } else {
            losses
        };
        let loss_weights = match obj.get("loss_weights") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                by_output(v, "loss_weights")?
                    .iter()
                    .map(|w| {
                        w.as_f64().map(|f| f as f32).ok_or_else(|| {
                            Error::format(
                                "compile_config",
                                format!("loss weight {w} is not a number"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Some(Compile {
            optimizer,
            losses,
            loss_weights,
            metrics: obj.get("metrics").cloned().unwrap_or(Value::Null),
        }))
    }
}

/// The training state of a compiled model.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub compile: Compile,
}

/// Options of [`Model::fit`], with Keras' defaults (batch 32, shuffle on, verbose 1).
///
/// ```
/// use rnnlab::FitOptions;
/// let o = FitOptions::new().epochs(10).batch_size(16).shuffle(false).validation_split(0.2);
/// # let _ = o;
/// ```
#[derive(Clone, Debug)]
pub struct FitOptions {
    epochs: usize,
    batch_size: usize,
    shuffle: bool,
    seed: Option<u64>,
    validation_split: f64,
    validation_data: Option<(Vec<Tensor>, Vec<Tensor>)>,
    verbose: u8,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions::new()
    }
}

impl FitOptions {
    /// One epoch, batches of 32, shuffled, progress shown.
    pub fn new() -> FitOptions {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: None,
            validation_split: 0.0,
            validation_data: None,
            verbose: 1,
        }
    }
    /// Number of passes over the data.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// Samples per gradient step (the last batch may be smaller).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Shuffle the training samples before every epoch (default true).
    pub fn shuffle(mut self, v: bool) -> Self {
        self.shuffle = v;
        self
    }
    /// Seed of the shuffling and of dropout masks in layers without their own seed (default: the global
    /// generator of [`crate::set_random_seed`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Hold out this fraction of the samples (the last ones, before shuffling, as Keras does) for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }
    /// Validation inputs and targets, evaluated after every epoch (`val_loss`).
    pub fn validation_data(mut self, x: impl ModelInputs, y: impl ModelInputs) -> Self {
        self.validation_data = Some((
            x.arrays().into_iter().cloned().collect(),
            y.arrays().into_iter().cloned().collect(),
        ));
        self
    }
    /// 0: silent; 1: a progress bar on a terminal, one line per epoch elsewhere (notebooks); 2: one line per epoch.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
}

/// What `fit` returns: the per-epoch values (Keras `History.history`), in the order Keras logs them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct History {
    keys: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl History {
    fn push(&mut self, key: &str, v: f64) {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => self.values[i].push(v),
            None => {
                self.keys.push(key.to_string());
                self.values.push(vec![v]);
            }
        }
    }
    /// The training loss of every epoch.
    pub fn loss(&self) -> &[f64] {
        self.get("loss").unwrap_or(&[])
    }
    /// The values logged under `key` (`"loss"`, `"val_loss"`, `"<output>_loss"`).
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.keys
            .iter()
            .position(|k| k == key)
            .map(|i| self.values[i].as_slice())
    }
    /// The logged keys, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }
    /// The loss curves (training solid, validation dashed) as a figure.
    ///
    /// # Errors
    /// An empty history.
    pub fn plot(&self) -> Result<crate::Figure> {
        let curves: Vec<(String, Vec<f64>)> = self
            .keys
            .iter()
            .cloned()
            .zip(self.values.iter().cloned())
            .collect();
        crate::plot::plot_curves(&curves, "Training history")
    }

    /// Renders inline in Jupyter (evcxr) as a table of the per-epoch values (HTML, and text for other front ends).
    pub fn evcxr_display(&self) {
        let mut html = String::from("<table><tr><th>epoch</th>");
        for k in &self.keys {
            html.push_str(&format!("<th>{k}</th>"));
        }
        html.push_str("</tr>");
        for e in 0..self.epochs() {
            html.push_str(&format!("<tr><td>{}</td>", e + 1));
            for v in &self.values {
                html.push_str(&format!("<td>{:.6}</td>", v[e]));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        println!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT");
        // The text table too, for front ends without HTML (the REPL, nbconvert to text).
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self}\nEVCXR_END_CONTENT");
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>5}", "epoch")?;
        for k in &self.keys {
            write!(f, "  {k:>12}")?;
        }
        for e in 0..self.epochs() {
            write!(f, "\n{:>5}", e + 1)?;
            for v in &self.values {
                write!(f, "  {:>12.6}", v[e])?;
            }
        }
        Ok(())
    }
}

/// Values and tapes of one recorded forward pass.
struct Recorded {
    values: Values,
    tapes: Vec<(Arc<Node>, Tape)>,
}

/// Losses of one batch: the total, each output's (unweighted) loss, and the weight gradients by layer.
struct BatchResult {
    total: f32,
    per_output: Vec<f32>,
    grads: HashMap<u64, Vec<ArrayD<f32>>>,
}

impl Model {
    /// Configures the model for training with one loss (Keras `model.compile(optimizer, loss)`).
    ///
    /// # Errors
    /// An invalid optimizer setting.
    pub fn compile(&self, optimizer: Optimizer, loss: Loss) -> Result<()> {
        self.compile_with(Compile::new(optimizer, loss))
    }

    /// Configures the model for training with per-output losses and loss weights.
    ///
    /// # Errors
    /// An invalid optimizer setting, or a number of losses or loss weights that is neither 1 nor the number of
    /// outputs.
    pub fn compile_with(&self, compile: Compile) -> Result<()> {
        compile.optimizer.validate()?;
        let n = self.outputs.len();
        let ctx = format!("Model \"{}\"", self.name);
        let mut compile = compile;
        if compile.losses.len() == 1 && n > 1 {
            compile.losses = vec![compile.losses[0]; n];
        }
        if compile.losses.len() != n {
            return Err(Error::invalid(
                &ctx,
                "loss",
                format!("1 loss or one per output ({n})"),
                format!("{} losses", compile.losses.len()),
            ));
        }
        if let Some(w) = &compile.loss_weights {
            if w.len() != n {
                return Err(Error::invalid(
                    &ctx,
                    "loss_weights",
                    format!("one weight per output ({n})"),
                    format!("{} weights", w.len()),
                ));
            }
        }
        let mut c = compile;
        c.optimizer.reset();
        *self.compiled.lock().unwrap_or_else(|e| e.into_inner()) = Some(Compiled { compile: c });
        Ok(())
    }

    /// The compile settings, if the model was compiled.
    pub fn compile_config(&self) -> Option<Compile> {
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.compile.clone())
    }

    fn compiled_or_err(&self) -> Result<Compile> {
        self.compile_config().ok_or_else(|| {
            let note = self
                .compile_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|e| format!(" (the file's compile_config could not be used: {e})"))
                .unwrap_or_default();
            Error::Graph(format!(
                "Model \"{}\": you must call compile() before training or evaluating (compile(Optimizer::adam(0.001), Loss::mse())){note}",
                self.name
            ))
        })
    }

    /// Why the compile_config of the file this model was loaded from could not be applied (an optimizer or loss
    /// rnnlab does not implement), if that happened.
    pub fn compile_config_error(&self) -> Option<String> {
        self.compile_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The names of the outputs as Keras keys its per-output losses.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.node.layer.name()).collect()
    }

    /// Runs the graph recording tapes (training mode when `tc.training`).
    fn forward_record(&self, arrays: &[&Tensor], tc: &mut TrainCtx) -> Result<Recorded> {
        self.check_inputs(arrays)?;
        let mut values: Values = Values::default();
        for (t, a) in self.inputs.iter().zip(arrays) {
            values.insert(t.key(), (a.0.clone(), None));
        }
        let mut tapes = Vec::new();
        for node in &self.order {
            let fed = (0..node.out_shapes.len()).all(|i| values.contains_key(&(node.id, i)));
            if node.is_input || fed {
                continue;
            }
            let (ins, sts) = node_args(&values, node)?;
            let ctx = node.layer.ctx();
            let (f, tape) = node.layer.module().forward_train(
                &ctx,
                CallInputs {
                    inputs: ins.iter().map(|v| v.0.view()).collect(),
                    initial_state: sts.iter().map(|v| v.0.view()).collect(),
                    mask: ins.first().and_then(|v| v.1.as_ref()),
                },
                tc,
            )?;
            store_outputs(&mut values, node.id, f);
            tapes.push((node.clone(), tape));
        }
        Ok(Recorded { values, tapes })
    }

    /// Checks the targets against the outputs (count, batch, shapes for each loss).
    fn check_targets(
        &self,
        compile: &Compile,
        inputs: &[&Tensor],
        targets: &[&Tensor],
    ) -> Result<()> {
        let ctx = format!("Model \"{}\"", self.name);
        if targets.len() != self.outputs.len() {
            return Err(Error::invalid(
                &ctx,
                "targets",
                format!(
                    "{} target array(s), in the order of model.outputs",
                    self.outputs.len()
                ),
                format!("{} array(s)", targets.len()),
            ));
        }
        let n = inputs
            .first()
            .map(|t| t.shape().dims().first().copied().unwrap_or(0));
        for (i, ((o, t), loss)) in self
            .outputs
            .iter()
            .zip(targets)
            .zip(&compile.losses)
            .enumerate()
        {
            let sym = o.sym_shape();
            let mut pred: Vec<usize> = Vec::with_capacity(sym.len());
            for (k, d) in sym.iter().enumerate() {
                match d {
                    Some(d) if k > 0 => pred.push(*d),
                    _ => pred.push(t.shape().dims().get(k).copied().unwrap_or(0)),
                }
            }
            if let Some(n) = n {
                pred[0] = n;
            }
            let octx = format!("{ctx}, output {i} (\"{}\")", o.node.layer.name());
            loss.check_target(&octx, &pred, t.shape().dims())?;
        }
        Ok(())
    }

    /// Forward, losses and (when `backward`) the weight gradients of one batch.
    fn batch_step(
        &self,
        compile: &Compile,
        x: &[&Tensor],
        y: &[&Tensor],
        tc: &mut TrainCtx,
        backward: bool,
    ) -> Result<BatchResult> {
        let mut rec = self.forward_record(x, tc)?;
        let mut grads: HashMap<(u64, usize), ArrayD<f32>> = HashMap::new();
        let mut logits_nodes: Vec<u64> = Vec::new();
        let mut total = 0.0f32;
        let mut per_output = Vec::with_capacity(self.outputs.len());
        for (i, (o, t)) in self.outputs.iter().zip(y).enumerate() {
            let loss = compile.losses[i];
            let w = compile.loss_weights.as_ref().map_or(1.0, |w| w[i]);
            let (pred, mask) = rec
                .values
                .get(&o.key())
                .ok_or_else(|| Error::Graph(format!("internal: output {o:?} not computed")))?;
            // Keras' TensorFlow backend reads the logits of a softmax/sigmoid prediction (`_keras_logits`).
            let dense_logits = loss.logits_activation().and_then(|act| {
                let m = o.node.layer.module();
                let d = m.as_any().downcast_ref::<DenseModule>()?;
                (d.activation == act).then_some(())
            });
            let tape_idx =
                dense_logits.and_then(|_| rec.tapes.iter().position(|(n, _)| n.id == o.node.id));
            let logits = tape_idx.map(|k| {
                rec.tapes[k]
                    .1
                    .downcast_ref::<DenseTape>()
                    .expect("Dense tape")
                    .logits(pred.shape())
            });
            let (value, mut g) = loss.value_and_grad(
                t.0.view(),
                pred.view(),
                logits.as_ref().map(|l| l.view()),
                mask.as_ref(),
            )?;
            total += w * value;
            per_output.push(value);
            if !backward {
                continue;
            }
            if w != 1.0 {
                g.mapv_inplace(|v| v * w);
            }
            match tape_idx {
                Some(k) => {
                    let tape = rec.tapes[k]
                        .1
                        .downcast_mut::<DenseTape>()
                        .expect("Dense tape");
                    let c = *g.shape().last().unwrap_or(&1);
                    let rows = if c == 0 { 0 } else { g.len() / c };
                    let g2 = g
                        .into_shape_with_order((rows, c))
                        .expect("same number of elements");
                    match tape.logits_grad.as_mut() {
                        Some(acc) => *acc += &g2,
                        None => tape.logits_grad = Some(g2),
                    }
                    logits_nodes.push(o.node.id);
                }
                None => accumulate(&mut grads, o.key(), g),
            }
        }
        let mut wgrads: HashMap<u64, Vec<ArrayD<f32>>> = HashMap::new();
        if backward {
            for (node, tape) in rec.tapes.into_iter().rev() {
                let outs: Vec<Option<ArrayD<f32>>> = (0..node.out_shapes.len())
                    .map(|i| grads.remove(&(node.id, i)))
                    .collect();
                if outs.iter().all(Option::is_none) && !logits_nodes.contains(&node.id) {
                    continue;
                }
                let ctx = node.layer.ctx();
                let b = node.layer.module().backward(&ctx, tape, outs)?;
                if !b.weights.is_empty() {
                    match wgrads.get_mut(&node.layer.shared.id) {
                        Some(acc) => acc.iter_mut().zip(b.weights).for_each(|(a, g)| *a += &g),
                        None => {
                            wgrads.insert(node.layer.shared.id, b.weights);
                        }
                    }
                }
                for (p, g) in node.inputs.iter().zip(b.inputs) {
                    if let Some(g) = g {
                        accumulate(&mut grads, p.key(), g);
                    }
                }
                for (p, g) in node.initial_state.iter().zip(b.initial_state) {
                    if let Some(g) = g {
                        accumulate(&mut grads, p.key(), g);
                    }
                }
            }
        }
        Ok(BatchResult {
            total,
            per_output,
            grads: wgrads,
        })
    }

    /// Weight gradients in `get_weights()` order (`None` for weights the loss does not reach).
    fn ordered_grads(
        &self,
        grads: &mut HashMap<u64, Vec<ArrayD<f32>>>,
    ) -> Vec<Option<ArrayD<f32>>> {
        let mut v = Vec::new();
        for l in &self.layers {
            let n = l.weight_shapes().len();
            match grads.remove(&l.shared.id) {
                Some(g) => v.extend(g.into_iter().map(Some)),
                None => v.extend(std::iter::repeat_n(None, n)),
            }
        }
        v
    }

    fn train_ctx(&self, training: bool, seed: Option<u64>) -> TrainCtx {
        let rng = match seed {
            Some(s) => rand::rngs::StdRng::seed_from_u64(s),
            None => crate::initializers::fork_global_rng(),
        };
        TrainCtx { training, rng }
    }

    /// The compiled loss on `(x, y)` as one batch and its gradient for every weight, in `get_weights()` order
    /// (zeros for weights the loss does not depend on). Dropout is active, as in a training step.
    ///
    /// # Errors
    /// An uncompiled model, inputs or targets of the wrong number or shape, a layer without gradients.
    pub fn gradients(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
    ) -> Result<(f32, Vec<Tensor>)> {
        let compile = self.compiled_or_err()?;
        let (x, y) = (x.arrays(), y.arrays());
        self.check_inputs(&x)?;
        self.check_targets(&compile, &x, &y)?;
        let mut tc = self.train_ctx(true, None);
        let mut r = self.batch_step(&compile, &x, &y, &mut tc, true)?;
        let shapes: Vec<_> = self.layers.iter().flat_map(|l| l.weight_shapes()).collect();
        let g = self
            .ordered_grads(&mut r.grads)
            .into_iter()
            .zip(shapes)
            .map(|(g, s)| Tensor(g.unwrap_or_else(|| ArrayD::zeros(s.0))))
            .collect();
        Ok((r.total, g))
    }

    /// One gradient step on one batch; returns the batch's loss (Keras `train_on_batch`).
    ///
    /// # Errors
    /// As [`Model::gradients`].
    pub fn train_on_batch(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<f32> {
        let compile = self.compiled_or_err()?;
        let (x, y) = (x.arrays(), y.arrays());
        self.check_inputs(&x)?;
        self.check_targets(&compile, &x, &y)?;
        let mut tc = self.train_ctx(true, None);
        Ok(self.step(&compile, &x, &y, &mut tc)?.0)
    }

    /// Forward, backward and one optimizer update; returns the total and per-output losses.
    fn step(
        &self,
        compile: &Compile,
        x: &[&Tensor],
        y: &[&Tensor],
        tc: &mut TrainCtx,
    ) -> Result<(f32, Vec<f32>)> {
        let mut r = self.batch_step(compile, x, y, tc, true)?;
        let grads = self.ordered_grads(&mut r.grads);
        let mut weights: Vec<ArrayD<f32>> = self
            .layers
            .iter()
            .flat_map(|l| l.module().weights())
            .collect();
        {
            let mut guard = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            let c = guard
                .as_mut()
                .ok_or_else(|| Error::Graph("model was un-compiled during training".into()))?;
            c.compile.optimizer.apply(&mut weights, grads);
        }
        let mut it = weights.into_iter();
        for l in &self.layers {
            let n = l.weight_shapes().len();
            if n > 0 {
                let w: Vec<ArrayD<f32>> = it.by_ref().take(n).collect();
                l.module().assign_weights(w);
            }
        }
        Ok((r.total, r.per_output))
    }

    /// Trains the model (Keras `model.fit`): `x` in the model's input order, `y` one target per output.
    ///
    /// # Errors
    /// An uncompiled model, inputs or targets of the wrong number or shape, a layer without gradients.
    pub fn fit(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        options: FitOptions,
    ) -> Result<History> {
        let compile = self.compiled_or_err()?;
        let ctx = format!("Model \"{}\"", self.name);
        let (x, y) = (x.arrays(), y.arrays());
        self.check_inputs(&x)?;
        self.check_targets(&compile, &x, &y)?;
        let n = x[0].shape().dims()[0];
        for (i, t) in y.iter().enumerate() {
            let b = t.shape().dims().first().copied().unwrap_or(0);
            if b != n {
                return Err(Error::invalid(
                    &ctx,
                    format!("targets[{i}]"),
                    format!("{n} samples (as the inputs)"),
                    format!("{b} samples"),
                ));
            }
        }
        if options.batch_size == 0 {
            return Err(Error::invalid(&ctx, "batch_size", "a positive integer", 0));
        }
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::invalid(
                &ctx,
                "validation_split",
                "a float in [0, 1)",
                options.validation_split,
            ));
        }
        // Keras: the validation samples are the last ones, taken before any shuffling.
        let split = if options.validation_split > 0.0 {
            // In double, as Keras computes `int(n * (1 - split))` (0.3 as f32 would give 6 of 10, not 7).
            ((n as f64) * (1.0 - options.validation_split)).floor() as usize
        } else {
            n
        };
        let take = |ts: &[&Tensor], r: std::ops::Range<usize>| -> Vec<Tensor> {
            ts.iter()
                .map(|t| Tensor(t.0.slice_axis(Axis(0), r.clone().into()).to_owned()))
                .collect()
        };
        let (xt, yt) = if split < n {
            (take(&x, 0..split), take(&y, 0..split))
        } else {
            (
                x.iter().map(|t| (*t).clone()).collect(),
                y.iter().map(|t| (*t).clone()).collect(),
            )
        };
        let val: Option<(Vec<Tensor>, Vec<Tensor>)> = match (&options.validation_data, split < n) {
            (Some(v), _) => Some(v.clone()),
            (None, true) => Some((take(&x, split..n), take(&y, split..n))),
            (None, false) => None,
        };
        if let Some((vx, vy)) = &val {
            let vx: Vec<&Tensor> = vx.iter().collect();
            let vy: Vec<&Tensor> = vy.iter().collect();
            self.check_inputs(&vx)?;
            self.check_targets(&compile, &vx, &vy)?;
        }
        let n_train = split;
        if n_train == 0 {
            return Err(Error::invalid(
                &ctx,
                "x",
                "at least one training sample",
                "0 after the validation split",
            ));
        }
        let mut tc = self.train_ctx(true, options.seed);
        let mut shuffle_rng = match options.seed {
            Some(s) => rand::rngs::StdRng::seed_from_u64(s ^ 0x5eed),
            None => crate::initializers::fork_global_rng(),
        };
        let steps = n_train.div_ceil(options.batch_size);
        let names = self.output_names();
        let multi = self.outputs.len() > 1;
        let mut history = History::default();
        let progress = Progress::new(options.verbose);
        for epoch in 0..options.epochs {
            let mut order: Vec<usize> = (0..n_train).collect();
            if options.shuffle {
                order.shuffle(&mut shuffle_rng);
            }
            progress.epoch_start(epoch, options.epochs);
            let t0 = Instant::now();
            let (mut sum, mut count) = (0.0f64, 0usize);
            let mut out_sums = vec![0.0f64; self.outputs.len()];
            for s in 0..steps {
                let idx =
                    &order[s * options.batch_size..((s + 1) * options.batch_size).min(n_train)];
                let sel = |ts: &[Tensor]| -> Vec<Tensor> {
                    ts.iter()
                        .map(|t| Tensor(t.0.select(Axis(0), idx)))
                        .collect()
                };
                let (bx, by) = (sel(&xt), sel(&yt));
                let bx: Vec<&Tensor> = bx.iter().collect();
                let by: Vec<&Tensor> = by.iter().collect();
                let (loss, per) = self.step(&compile, &bx, &by, &mut tc)?;
                if !loss.is_finite() {
                    progress.warn(&format!(
                        "Model \"{}\": the loss became {loss} at epoch {}, step {}",
                        self.name,
                        epoch + 1,
                        s + 1
                    ));
                }
                sum += f64::from(loss) * idx.len() as f64;
                count += idx.len();
                // Keras' per-output trackers get `sample_weight=y_pred.shape[0]`, which is unknown (None) inside
                // its compiled train step, so each batch counts once there, while the total loss is weighted by
                // the batch size. Reproduced for identical logs with a partial last batch.
                for (a, p) in out_sums.iter_mut().zip(&per) {
                    *a += f64::from(*p);
                }
                progress.step(s + 1, steps, t0, sum / count as f64);
            }
            let mut logs: Vec<(String, f64)> = vec![("loss".into(), mean_f32(sum, count))];
            if multi {
                for (name, s) in names.iter().zip(&out_sums) {
                    logs.push((format!("{name}_loss"), mean_f32(*s, steps)));
                }
            }
            if let Some((vx, vy)) = &val {
                let (vl, vper) = self.evaluate_all(vx, vy, options.batch_size)?;
                logs.push(("val_loss".into(), vl));
                if multi {
                    for (name, v) in names.iter().zip(vper) {
                        logs.push((format!("val_{name}_loss"), v));
                    }
                }
            }
            for (k, v) in &logs {
                history.push(k, *v);
            }
            progress.epoch_end(steps, t0, &logs);
        }
        Ok(history)
    }

    fn evaluate_all(
        &self,
        x: &[Tensor],
        y: &[Tensor],
        batch_size: usize,
    ) -> Result<(f64, Vec<f64>)> {
        let compile = self.compiled_or_err()?;
        let xr: Vec<&Tensor> = x.iter().collect();
        let yr: Vec<&Tensor> = y.iter().collect();
        self.check_inputs(&xr)?;
        self.check_targets(&compile, &xr, &yr)?;
        let n = x[0].shape().dims()[0];
        let bs = batch_size.max(1);
        let mut tc = self.train_ctx(false, Some(0));
        let (mut sum, mut count) = (0.0f64, 0usize);
        let mut per = vec![0.0f64; self.outputs.len()];
        for s in 0..n.div_ceil(bs) {
            let r = s * bs..((s + 1) * bs).min(n);
            let sl = |ts: &[Tensor]| -> Vec<Tensor> {
                ts.iter()
                    .map(|t| Tensor(t.0.slice_axis(Axis(0), r.clone().into()).to_owned()))
                    .collect()
            };
            let (bx, by) = (sl(x), sl(y));
            let bx: Vec<&Tensor> = bx.iter().collect();
            let by: Vec<&Tensor> = by.iter().collect();
            let res = self.batch_step(&compile, &bx, &by, &mut tc, false)?;
            let k = r.len() as f64;
            sum += f64::from(res.total) * k;
            count += r.len();
            // Per-output losses: each batch counts once, as in Keras (see `fit`).
            for (a, p) in per.iter_mut().zip(res.per_output) {
                *a += f64::from(p);
            }
        }
        let batches = n.div_ceil(bs);
        Ok((
            mean_f32(sum, count),
            per.into_iter().map(|p| mean_f32(p, batches)).collect(),
        ))
    }

    /// Keras' `evaluate(..., return_dict=True)`: `loss`, then `<output>_loss` per output of a multi-output model.
    ///
    /// # Errors
    /// As [`Model::evaluate`].
    pub fn evaluate_dict(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        batch_size: usize,
    ) -> Result<Vec<(String, f64)>> {
        let x: Vec<Tensor> = x.arrays().into_iter().cloned().collect();
        let y: Vec<Tensor> = y.arrays().into_iter().cloned().collect();
        let (total, per) = self.evaluate_all(&x, &y, batch_size)?;
        let mut v = vec![("loss".to_string(), total)];
        if self.outputs.len() > 1 {
            for (name, p) in self.output_names().into_iter().zip(per) {
                v.push((format!("{name}_loss"), p));
            }
        }
        Ok(v)
    }

    /// The compiled loss over `(x, y)` in batches, without dropout (Keras `model.evaluate`).
    ///
    /// # Errors
    /// An uncompiled model, inputs or targets of the wrong number or shape.
    pub fn evaluate(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        batch_size: usize,
    ) -> Result<f64> {
        let x: Vec<Tensor> = x.arrays().into_iter().cloned().collect();
        let y: Vec<Tensor> = y.arrays().into_iter().cloned().collect();
        Ok(self.evaluate_all(&x, &y, batch_size)?.0)
    }
}

/// Keras' `Mean` metric keeps float32 totals; the reported value is the float32 quotient.
fn mean_f32(sum: f64, count: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    f64::from((sum / count as f64) as f32)
}

fn accumulate(grads: &mut HashMap<(u64, usize), ArrayD<f32>>, key: (u64, usize), g: ArrayD<f32>) {
    match grads.get_mut(&key) {
        Some(acc) => *acc += &g,
        None => {
            grads.insert(key, g);
        }
    }
}

/// Keras-style progress: a bar redrawn in place on a terminal, one line per epoch elsewhere.
struct Progress {
    verbose: u8,
    tty: bool,
}

impl Progress {
    fn new(verbose: u8) -> Progress {
        Progress {
            verbose,
            tty: verbose == 1 && std::io::stderr().is_terminal(),
        }
    }
    fn epoch_start(&self, epoch: usize, epochs: usize) {
        if self.verbose == 1 {
            println!("Epoch {}/{}", epoch + 1, epochs);
        }
    }
    fn step(&self, s: usize, steps: usize, t0: Instant, loss: f64) {
        if !self.tty {
            return;
        }
        let width = 20;
        let done = s * width / steps.max(1);
        let bar: String = "━".repeat(done) + &" ".repeat(width - done);
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r{s}/{steps} {bar} {:.1}s - loss: {loss:.4}",
            t0.elapsed().as_secs_f64()
        );
        let _ = e.flush();
    }
    fn epoch_end(&self, steps: usize, t0: Instant, logs: &[(String, f64)]) {
        if self.verbose == 0 {
            return;
        }
        if self.tty {
            // Clear the bar: the epoch's summary line below takes its place, as Keras' final bar does.
            eprint!("\r\x1b[K");
        }
        let el = t0.elapsed();
        let per_step = el.as_secs_f64() * 1000.0 / steps.max(1) as f64;
        let vals: Vec<String> = logs.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
        println!(
            "{steps}/{steps} - {:.0}ms - {per_step:.1}ms/step - {}",
            el.as_secs_f64() * 1000.0,
            vals.join(" - ")
        );
    }
    fn warn(&self, msg: &str) {
        if self.verbose > 0 {
            eprintln!("warning: {msg}");
        }
    }
}
