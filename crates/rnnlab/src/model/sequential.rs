//! [`Sequential`]: a stack of single-output layers, built when its input shape is known.

use std::fmt;
use std::sync::Mutex;

use super::functional::{Model, ModelInputs, ModelKind, Summary};
use super::graph::{Input, IntoSymShape, SymbolicTensor};
use crate::error::{Error, Result};
use crate::layers::{unique_name, Layer, SymShape};
use crate::summary::{SummaryData, SummaryRow, SummaryStyle};
use crate::tensor::Tensor;

/// A linear stack of layers (Keras `keras.Sequential`).
///
/// Like Keras, the input shape may be given up front (`add_input`) or come from the first `predict`.
///
/// ```
/// use rnnlab::{Dense, Sequential, Tensor, LSTM};
/// let mut model = Sequential::new();
/// model.add_input((3, 1)).unwrap();
/// model.add(LSTM::new(4).return_sequences(true)).unwrap();
/// model.add(LSTM::new(2)).unwrap();
/// model.add(Dense::new(1)).unwrap();
/// assert_eq!(model.count_params(), 155);
/// assert_eq!(model.predict(&Tensor::zeros((2, 3, 1))).unwrap().shape(), [2, 1]);
/// ```
pub struct Sequential {
    name: String,
    input: Option<SymbolicTensor>,
    layers: Vec<Layer>,
    built: Mutex<Option<Model>>,
    /// `compile` settings, kept here so that adding layers (which rebuilds the graph) keeps them.
    compiled: std::sync::Arc<Mutex<Option<crate::train::Compiled>>>,
}

impl Clone for Sequential {
    fn clone(&self) -> Self {
        Sequential {
            name: self.name.clone(),
            input: self.input.clone(),
            layers: self.layers.clone(),
            built: Mutex::new(self.built.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            compiled: self.compiled.clone(),
        }
    }
}

impl fmt::Debug for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.layers.iter().map(|l| l.name()).collect();
        write!(
            f,
            "<Sequential name={}, layers=[{}], built={}>",
            self.name,
            names.join(", "),
            self.model().is_some()
        )
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl Sequential {
    /// An empty model named `sequential` (`sequential_1`, ... for later ones).
    pub fn new() -> Sequential {
        Sequential {
            name: unique_name("sequential"),
            input: None,
            layers: Vec::new(),
            built: Mutex::new(None),
            compiled: Default::default(),
        }
    }

    /// An empty model with a given name.
    pub fn named(name: &str) -> Sequential {
        Sequential {
            name: name.to_string(),
            input: None,
            layers: Vec::new(),
            built: Mutex::new(None),
            compiled: Default::default(),
        }
    }

    /// Declares the input shape (without the batch), like `keras.Input(shape)` as the first element.
    ///
    /// # Errors
    /// Layers already added reject that shape.
    pub fn add_input(&mut self, shape: impl IntoSymShape) -> Result<()> {
        self.input = Some(Input::new(shape));
        self.rebuild()
    }

    /// Appends a layer. When the input shape is known, the model is (re)built now, so shape errors show here.
    ///
    /// # Errors
    /// The layer does not accept the previous layer's output, or it returns several tensors (use the
    /// Functional API for those, as Keras says).
    pub fn add(&mut self, layer: impl Into<Layer>) -> Result<()> {
        let layer = layer.into();
        self.layers.push(layer);
        if let Err(e) = self.rebuild() {
            self.layers.pop();
            // Restore the model as it was before this layer.
            let _ = self.rebuild();
            return Err(e);
        }
        Ok(())
    }

    fn model(&self) -> Option<Model> {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn rebuild(&self) -> Result<()> {
        let Some(input) = &self.input else {
            return Ok(());
        };
        let model = self.build_from(input.clone())?;
        *self.built.lock().unwrap_or_else(|e| e.into_inner()) = Some(model);
        Ok(())
    }

    fn build_from(&self, input: SymbolicTensor) -> Result<Model> {
        let mut x = input.clone();
        for l in &self.layers {
            let outs = l.call_all(&x)?;
            if outs.len() != 1 {
                return Err(Error::Graph(format!(
                    "{}: all layers added to a Sequential model should have a single output tensor, this one returns {} \
                     (return_state=True?). For multi-output layers, use the functional API.",
                    l.ctx(),
                    outs.len()
                )));
            }
            x = outs.into_iter().next().expect("one output");
        }
        let mut m = Model::build(
            self.name.clone(),
            ModelKind::Sequential,
            vec![input],
            vec![x],
        )?;
        m.compiled = self.compiled.clone();
        Ok(m)
    }

    /// The built model, building it now for data of this shape if no input shape was declared.
    fn ensure_built(&self, first: Option<&Tensor>) -> Result<Model> {
        if let Some(m) = self.model() {
            return Ok(m);
        }
        let Some(t) = first else {
            return Err(Error::Graph(format!(
                "Sequential \"{}\" is not built yet: declare the input with add_input(shape) or call predict() first",
                self.name
            )));
        };
        if t.rank() == 0 {
            return Err(Error::shape(
                format!("Sequential \"{}\"", self.name),
                "inputs",
                "(batch, ...)",
                t.shape(),
            ));
        }
        // A stateful layer needs the batch size (Keras builds a Sequential from the first batch's shape).
        let stateful = self
            .layers
            .iter()
            .any(|l| l.get_config().get("stateful").and_then(|v| v.as_bool()) == Some(true));
        let batch = if stateful {
            t.shape().dims().first().copied()
        } else {
            None
        };
        let mut shape: SymShape = vec![batch];
        shape.extend(t.shape().dims()[1..].iter().map(|&d| Some(d)));
        let m = self.build_from(Input::with_batch_shape(shape))?;
        *self.built.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        Ok(m)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers, in order (no input layer, as in Keras).
    pub fn layers(&self) -> Vec<Layer> {
        self.layers.clone()
    }

    /// Looks a layer up by name.
    ///
    /// # Errors
    /// No layer has that name.
    pub fn get_layer(&self, name: &str) -> Result<Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<String> = self.layers.iter().map(|l| l.name()).collect();
                Error::Graph(format!(
                    "No such layer: {name}. Existing layers are: [{}]",
                    names.join(", ")
                ))
            })
    }

    /// Runs a single-output model (builds it from the data's shape on first use, as Keras does).
    ///
    /// # Errors
    /// As [`Model::predict`].
    pub fn predict(&self, inputs: impl ModelInputs) -> Result<Tensor> {
        let arrays = inputs.arrays();
        self.ensure_built(arrays.first().copied())?.predict(arrays)
    }

    /// All outputs as a list (a Sequential model has one).
    pub fn predict_all(&self, inputs: impl ModelInputs) -> Result<Vec<Tensor>> {
        let arrays = inputs.arrays();
        self.ensure_built(arrays.first().copied())?
            .predict_all(arrays)
    }

    /// The underlying graph model (built).
    ///
    /// # Errors
    /// The input shape is not known yet.
    pub fn to_model(&self) -> Result<Model> {
        self.ensure_built(None)
    }

    /// Total weights of the built layers.
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| l.count_params()).sum()
    }

    /// All weights in Keras' order.
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.layers.iter().flat_map(|l| l.get_weights()).collect()
    }

    /// Sets all weights (Keras order), checking count and shapes.
    ///
    /// # Errors
    /// Not built yet, or a count or shape differs.
    pub fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        self.ensure_built(None)?.set_weights(weights)
    }

    /// Configures training (Keras `model.compile`); see [`Model::compile`]. Works before the model is built.
    ///
    /// ```
    /// use rnnlab::{Dense, FitOptions, Loss, Optimizer, Sequential, Tensor, GRU};
    /// let mut model = Sequential::new();
    /// model.add(GRU::new(4)).unwrap();
    /// model.add(Dense::new(1)).unwrap();
    /// model.compile(Optimizer::rmsprop(0.01), Loss::mse()).unwrap(); // before the input shape is known
    /// let x = Tensor::full((6, 3, 2), 0.3);
    /// let y = Tensor::full((6, 1), 0.5);
    /// let h = model.fit(&x, &y, FitOptions::new().epochs(5).batch_size(3).verbose(0)).unwrap();
    /// assert!(h.loss()[4] < h.loss()[0]);
    /// assert!(model.evaluate(&x, &y, 6).unwrap() < h.loss()[0]);
    /// ```
    ///
    /// # Errors
    /// An invalid optimizer setting.
    pub fn compile(&self, optimizer: crate::Optimizer, loss: crate::Loss) -> Result<()> {
        self.compile_with(crate::Compile::new(optimizer, loss))
    }

    /// [`Model::compile_with`] for a Sequential model.
    ///
    /// # Errors
    /// An invalid optimizer setting, or more than one loss.
    pub fn compile_with(&self, compile: crate::Compile) -> Result<()> {
        if let Some(m) = self.model() {
            return m.compile_with(compile);
        }
        if compile.losses().len() != 1 {
            return Err(Error::invalid(
                format!("Sequential \"{}\"", self.name),
                "loss",
                "1 loss (a Sequential model has one output)",
                format!("{} losses", compile.losses().len()),
            ));
        }
        compile.optimizer().validate()?;
        let mut c = compile;
        c.optimizer.reset();
        *self.compiled.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::train::Compiled { compile: c });
        Ok(())
    }

    /// The compile settings, if compiled.
    pub fn compile_config(&self) -> Option<crate::Compile> {
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.compile.clone())
    }

    /// Trains the model (builds it from the data's shape first if needed); see [`Model::fit`].
    ///
    /// # Errors
    /// As [`Model::fit`].
    pub fn fit(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        options: crate::FitOptions,
    ) -> Result<crate::History> {
        let arrays = x.arrays();
        self.ensure_built(arrays.first().copied())?
            .fit(arrays, y, options)
    }

    /// The compiled loss over the data; see [`Model::evaluate`].
    ///
    /// # Errors
    /// As [`Model::evaluate`].
    pub fn evaluate(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        batch_size: usize,
    ) -> Result<f64> {
        let arrays = x.arrays();
        self.ensure_built(arrays.first().copied())?
            .evaluate(arrays, y, batch_size)
    }

    /// The loss and the gradient of every weight on one batch; see [`Model::gradients`].
    ///
    /// # Errors
    /// As [`Model::gradients`].
    pub fn gradients(
        &self,
        x: impl ModelInputs,
        y: impl ModelInputs,
    ) -> Result<(f32, Vec<Tensor>)> {
        let arrays = x.arrays();
        self.ensure_built(arrays.first().copied())?
            .gradients(arrays, y)
    }

    /// One optimizer step on one batch; see [`Model::train_on_batch`].
    ///
    /// # Errors
    /// As [`Model::train_on_batch`].
    pub fn train_on_batch(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<f32> {
        let arrays = x.arrays();
        self.ensure_built(arrays.first().copied())?
            .train_on_batch(arrays, y)
    }

    /// Resets every stateful layer.
    pub fn reset_states(&self) {
        self.layers.iter().for_each(|l| l.reset_state());
    }

    fn summary_data(&self) -> SummaryData {
        if let Some(m) = self.model() {
            return m.summary_data();
        }
        // Not built: Keras shows "?" shapes and "0 (unbuilt)".
        SummaryData {
            model_name: self.name.clone(),
            rows: self
                .layers
                .iter()
                .map(|l| SummaryRow {
                    name: l.name(),
                    class_name: l.class_name().to_string(),
                    output_shapes: vec![],
                    is_input: false,
                    params: if l.built() {
                        Some(l.count_params())
                    } else {
                        None
                    },
                    connected_to: vec![],
                })
                .collect(),
            sequential_like: true,
            trainable_params: self.count_params(),
            non_trainable_params: 0,
            bytes_per_param: 4,
        }
    }

    /// The Keras 3 summary table.
    pub fn summary(&self) -> Summary {
        Summary::from_parts(self.summary_data(), SummaryStyle::Keras3)
    }

    /// The summary in a chosen style.
    pub fn summary_with(&self, style: SummaryStyle) -> Summary {
        Summary::from_parts(self.summary_data(), style)
    }
}
