//! The Functional [`Model`]: a graph from symbolic inputs to outputs, run by `predict`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use ndarray::{ArrayD, CowArray, IxDyn};
use rustc_hash::FxHashMap;

use super::graph::{Node, SymbolicTensor, TensorList};
use crate::error::{Error, Result};
use crate::layers::{check_weights, fmt_sym, unique_name, CallInputs, Layer, Mask};
use crate::summary::{SummaryData, SummaryRow, SummaryStyle};
use crate::tensor::Tensor;

/// Input arrays for `predict`: one tensor, or several in the model's input order.
pub trait ModelInputs {
    /// The arrays, in order.
    fn arrays(&self) -> Vec<&Tensor>;
}
impl ModelInputs for Tensor {
    fn arrays(&self) -> Vec<&Tensor> {
        vec![self]
    }
}
impl ModelInputs for &Tensor {
    fn arrays(&self) -> Vec<&Tensor> {
        vec![*self]
    }
}
impl ModelInputs for [Tensor] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}
impl ModelInputs for &[Tensor] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}
impl ModelInputs for Vec<Tensor> {
    fn arrays(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}
impl ModelInputs for &Vec<Tensor> {
    fn arrays(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}
impl ModelInputs for Vec<&Tensor> {
    fn arrays(&self) -> Vec<&Tensor> {
        self.clone()
    }
}
impl ModelInputs for &[&Tensor] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.to_vec()
    }
}
impl<const N: usize> ModelInputs for [&Tensor; N] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.to_vec()
    }
}
impl<const N: usize> ModelInputs for &[&Tensor; N] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.to_vec()
    }
}
impl<const N: usize> ModelInputs for [Tensor; N] {
    fn arrays(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}

/// The value (and mask) of every symbolic tensor computed so far in one execution: owned arrays (training keeps
/// them for the backward pass) or, in `predict`, [`CowArray`]s that borrow the caller's inputs instead of copying
/// them.
pub(crate) type Values<V = ArrayD<f32>> = FxHashMap<(u64, usize), (V, Option<Mask>)>;

/// The values a node consumes: its inputs, then its initial states.
#[allow(clippy::type_complexity)]
pub(crate) fn node_args<'a, V>(
    values: &'a Values<V>,
    node: &Node,
) -> Result<(Vec<&'a (V, Option<Mask>)>, Vec<&'a (V, Option<Mask>)>)> {
    let get = |t: &SymbolicTensor| {
        values
            .get(&t.key())
            .ok_or_else(|| Error::Graph(format!("internal: value of {t:?} missing")))
    };
    let ins = node.inputs.iter().map(get).collect::<Result<Vec<_>>>()?;
    let sts = node
        .initial_state
        .iter()
        .map(get)
        .collect::<Result<Vec<_>>>()?;
    Ok((ins, sts))
}

/// Stores a node's outputs. The mask follows the sequence outputs (rank >= 3), not the state tensors.
pub(crate) fn store_outputs<V: From<ArrayD<f32>>>(
    values: &mut Values<V>,
    node_id: u64,
    f: crate::layers::Forward,
) {
    for (i, out) in f.outputs.into_iter().enumerate() {
        let m = if out.ndim() >= 3 {
            f.mask.clone()
        } else {
            None
        };
        values.insert((node_id, i), (out.into(), m));
    }
}

/// What a layer call receives, captured during an execution (used by traces).
pub(crate) struct NodeInputs {
    pub inputs: Vec<ArrayD<f32>>,
    pub initial_state: Vec<ArrayD<f32>>,
    pub mask: Option<Mask>,
}

enum Executed {
    Outputs(Vec<Tensor>),
    Captured(NodeInputs),
}

/// Whether the model was made by `Model::new` or by a `Sequential` (it changes names and the summary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelKind {
    Functional,
    Sequential,
}

/// A model from symbolic inputs to outputs (Keras `keras.Model(inputs, outputs)`).
///
/// Layers called more than once share their weights; models built from the same layers share them too (the
/// encoder-decoder inference models of the tutorials are built this way).
#[derive(Clone)]
pub struct Model {
    pub(crate) name: String,
    pub(crate) kind: ModelKind,
    pub(crate) inputs: Vec<SymbolicTensor>,
    pub(crate) outputs: Vec<SymbolicTensor>,
    /// Nodes in execution order (decreasing depth).
    pub(crate) order: Vec<Arc<Node>>,
    /// Layers in Keras' `model.layers` order.
    pub(crate) layers: Vec<Layer>,
    /// Node ids by depth (for the summary's sequential-like test and "Connected to").
    pub(crate) nodes_by_depth: Vec<Vec<u64>>,
    /// The training configuration set by `compile` (shared by clones, like the weights).
    pub(crate) compiled: Arc<std::sync::Mutex<Option<crate::train::Compiled>>>,
    /// Why a loaded file's compile_config could not be applied (reported when training is asked for).
    pub(crate) compile_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.layers.iter().map(|l| l.name()).collect();
        write!(
            f,
            "<{} name={}, layers=[{}], params={}>",
            self.class_name(),
            self.name,
            names.join(", "),
            self.count_params()
        )
    }
}

impl Model {
    /// Builds a model from its inputs and outputs, in the order given.
    ///
    /// # Errors
    /// An output that cannot be computed from the given inputs ("graph disconnected"), or no inputs/outputs.
    pub fn new(inputs: impl TensorList, outputs: impl TensorList) -> Result<Model> {
        Model::build(
            unique_name("functional"),
            ModelKind::Functional,
            inputs.to_list(),
            outputs.to_list(),
        )
    }

    /// [`Model::new`] with a name (Keras `name=`).
    pub fn named(name: &str, inputs: impl TensorList, outputs: impl TensorList) -> Result<Model> {
        Model::build(
            name.to_string(),
            ModelKind::Functional,
            inputs.to_list(),
            outputs.to_list(),
        )
    }

    pub(crate) fn build(
        name: String,
        kind: ModelKind,
        inputs: Vec<SymbolicTensor>,
        outputs: Vec<SymbolicTensor>,
    ) -> Result<Model> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::Graph(format!(
                "Model \"{name}\": needs at least one input and one output, received {} input(s) and {} output(s)",
                inputs.len(),
                outputs.len()
            )));
        }
        // Keras' _build_map: depth-first from the outputs, recording the traversal order of operations.
        let input_keys: HashSet<(u64, usize)> = inputs.iter().map(|t| t.key()).collect();
        let mut finished: HashSet<u64> = HashSet::new();
        let mut decreasing: Vec<Arc<Node>> = Vec::new();
        let mut op_index: HashMap<u64, usize> = HashMap::new();
        let mut accessed: Vec<String> = Vec::new();
        fn visit(
            t: &SymbolicTensor,
            input_keys: &HashSet<(u64, usize)>,
            finished: &mut HashSet<u64>,
            decreasing: &mut Vec<Arc<Node>>,
            op_index: &mut HashMap<u64, usize>,
            accessed: &mut Vec<String>,
            model: &str,
        ) -> Result<()> {
            let node = &t.node;
            if finished.contains(&node.id) {
                return Ok(());
            }
            let n = op_index.len();
            op_index.entry(node.layer.shared.id).or_insert(n);
            let is_model_input = input_keys.contains(&t.key());
            if node.is_input && !is_model_input {
                return Err(Error::Graph(format!(
                    "Model \"{model}\": graph disconnected: cannot obtain a value for tensor {t:?} (input \"{}\"), \
                     which is not among the model's inputs. The following previous layers were accessed without issue: [{}]",
                    node.layer.name(),
                    accessed.join(", ")
                )));
            }
            if !node.is_input && !is_model_input {
                for p in node.parents() {
                    visit(
                        p, input_keys, finished, decreasing, op_index, accessed, model,
                    )?;
                }
            }
            finished.insert(node.id);
            if !node.is_input || is_model_input {
                accessed.push(node.layer.name());
            }
            decreasing.push(node.clone());
            Ok(())
        }
        for o in &outputs {
            visit(
                o,
                &input_keys,
                &mut finished,
                &mut decreasing,
                &mut op_index,
                &mut accessed,
                &name,
            )?;
        }
        // Inputs not connected to any output still belong to the model (Keras keeps them at depth 0).
        for i in &inputs {
            if !finished.contains(&i.node.id) {
                finished.insert(i.node.id);
                op_index.entry(i.node.layer.shared.id).or_insert(usize::MAX);
                decreasing.push(i.node.clone());
            }
        }
        // Keras' map_graph: node depth = max over consumers + 1; a layer's depth is the max of its nodes'.
        let mut node_depth: HashMap<u64, usize> = HashMap::new();
        let mut layer_depth: HashMap<u64, usize> = HashMap::new();
        let by_id: HashMap<u64, Arc<Node>> = decreasing.iter().map(|n| (n.id, n.clone())).collect();
        for node in decreasing.iter().rev() {
            let d0 = *node_depth.entry(node.id).or_insert(0);
            let prev = layer_depth.get(&node.layer.shared.id).copied().unwrap_or(0);
            let d = d0.max(prev);
            layer_depth.insert(node.layer.shared.id, d);
            node_depth.insert(node.id, d);
            if !node.is_input && !input_keys.iter().any(|k| k.0 == node.id) {
                for p in node.parents() {
                    if by_id.contains_key(&p.node.id) {
                        let e = node_depth.entry(p.node.id).or_insert(0);
                        *e = (*e).max(d + 1);
                    }
                }
            }
        }
        let max_depth = node_depth.values().copied().max().unwrap_or(0);
        let mut nodes_by_depth = vec![Vec::new(); max_depth + 1];
        // Execution order: deepest (closest to the inputs) first.
        let mut order: Vec<Arc<Node>> = decreasing.clone();
        order.sort_by_key(|n| std::cmp::Reverse(node_depth[&n.id]));
        for n in &order {
            nodes_by_depth[node_depth[&n.id]].push(n.id);
        }
        // model.layers: by decreasing depth, ties in traversal order.
        let mut seen = HashSet::new();
        let mut layers: Vec<(usize, usize, Layer)> = Vec::new();
        for n in &decreasing {
            if seen.insert(n.layer.shared.id) {
                let lid = n.layer.shared.id;
                layers.push((layer_depth[&lid], op_index[&lid], n.layer.clone()));
            }
        }
        layers.sort_by_key(|(d, i, _)| (std::cmp::Reverse(*d), *i));
        let layers = layers.into_iter().map(|(_, _, l)| l).collect();
        Ok(Model {
            name,
            kind,
            inputs,
            outputs,
            order,
            layers,
            nodes_by_depth,
            compiled: Arc::default(),
            compile_error: Arc::default(),
        })
    }

    fn class_name(&self) -> &'static str {
        match self.kind {
            ModelKind::Functional => "Functional",
            ModelKind::Sequential => "Sequential",
        }
    }

    /// The model's name (`functional`, `functional_1`, ... unless named).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers in Keras' order (`model.layers`): for a Functional model, input layers first, then by depth.
    /// A Sequential model's list leaves out its input layer, as Keras does.
    pub fn layers(&self) -> Vec<Layer> {
        match self.kind {
            ModelKind::Functional => self.layers.clone(),
            ModelKind::Sequential => self
                .layers
                .iter()
                .filter(|l| l.class_name() != "InputLayer")
                .cloned()
                .collect(),
        }
    }

    /// Looks a layer up by name (Keras `model.get_layer(name)`).
    ///
    /// # Errors
    /// No layer has that name; the message lists the names there are.
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

    /// The symbolic inputs, in order (Keras `model.inputs`).
    pub fn inputs(&self) -> Vec<SymbolicTensor> {
        self.inputs.clone()
    }

    /// The symbolic outputs, in order (Keras `model.outputs`).
    pub fn outputs(&self) -> Vec<SymbolicTensor> {
        self.outputs.clone()
    }

    /// Total number of weights (shared layers counted once).
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| l.count_params()).sum()
    }

    /// All weights in Keras' `get_weights()` order (layers in `model.layers` order, each in its own order).
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.layers.iter().flat_map(|l| l.get_weights()).collect()
    }

    /// Sets all weights from a list in `get_weights()` order, checking the count and every shape.
    ///
    /// # Errors
    /// A count or shape that differs, naming the layer and weight.
    pub fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let total: usize = self.layers.iter().map(|l| l.weight_shapes().len()).sum();
        if total != weights.len() {
            return Err(Error::invalid(
                format!("Model \"{}\"", self.name),
                "weights",
                format!("a list of {total} arrays (the model's get_weights() order)"),
                format!("{} arrays", weights.len()),
            ));
        }
        // Check everything first so a bad list changes nothing.
        let mut at = 0;
        let mut plan = Vec::new();
        for l in &self.layers {
            let n = l.weight_shapes().len();
            let specs = l.module().weight_specs();
            check_weights(&l.ctx(), &specs, &weights[at..at + n])?;
            plan.push((l, at, n));
            at += n;
        }
        for (l, at, n) in plan {
            if n > 0 {
                l.set_weights(&weights[at..at + n])?;
            }
        }
        Ok(())
    }

    /// Resets the state of every stateful layer (Keras 3 has no `Model.reset_states()`; this loops over the
    /// layers, which is what Keras users are told to do).
    pub fn reset_states(&self) {
        self.layers.iter().for_each(|l| l.reset_state());
    }

    /// Runs the model on a single-output model and returns that output.
    ///
    /// # Errors
    /// Wrong number or shapes of inputs, or a model with several outputs (use [`Model::predict_all`] or
    /// [`Model::predict_n`]).
    pub fn predict(&self, inputs: impl ModelInputs) -> Result<Tensor> {
        let mut v = self.predict_all(inputs)?;
        if v.len() != 1 {
            return Err(Error::Graph(format!(
                "Model \"{}\" has {} outputs; use predict_all() for the list or predict_n() to destructure it",
                self.name,
                v.len()
            )));
        }
        Ok(v.remove(0))
    }

    /// Runs the model and destructures its outputs: `let [seq, h, c] = model.predict_n(&data)?;`.
    ///
    /// # Errors
    /// As [`Model::predict_all`], or `N` differs from the number of outputs.
    pub fn predict_n<const N: usize>(&self, inputs: impl ModelInputs) -> Result<[Tensor; N]> {
        let v = self.predict_all(inputs)?;
        let got = v.len();
        v.try_into().map_err(|_| {
            Error::Graph(format!("Model \"{}\" returns {got} output(s), but {N} were expected by the destructuring pattern", self.name))
        })
    }

    /// Runs the model and returns every output in order (what Keras' `predict` returns for a list of outputs).
    ///
    /// # Errors
    /// The wrong number of input arrays, or arrays whose rank or fixed dimensions differ from the inputs'.
    pub fn predict_all(&self, inputs: impl ModelInputs) -> Result<Vec<Tensor>> {
        let arrays = inputs.arrays();
        self.run(&arrays)
    }

    pub(crate) fn check_inputs(&self, arrays: &[&Tensor]) -> Result<()> {
        if arrays.len() != self.inputs.len() {
            return Err(Error::invalid(
                format!("Model \"{}\"", self.name),
                "inputs",
                format!(
                    "{} input array(s), in the order of model.inputs",
                    self.inputs.len()
                ),
                format!("{} array(s)", arrays.len()),
            ));
        }
        let mut batch: Option<usize> = None;
        for (t, a) in self.inputs.iter().zip(arrays) {
            let want = t.sym_shape();
            let got = a.0.shape();
            let ok = want.len() == got.len()
                && want.iter().zip(got).all(|(w, g)| w.is_none_or(|w| w == *g));
            if !ok {
                return Err(Error::shape(
                    format!("Model \"{}\"", self.name),
                    format!("input \"{}\"", t.node.layer.name()),
                    fmt_sym(want),
                    a.shape(),
                ));
            }
            let b = got.first().copied();
            if let (Some(prev), Some(b)) = (batch, b) {
                if prev != b {
                    return Err(Error::invalid(
                        format!("Model \"{}\"", self.name),
                        format!("input \"{}\"", t.node.layer.name()),
                        format!("the same batch size as the first input ({prev})"),
                        b,
                    ));
                }
            }
            batch = batch.or(b);
        }
        Ok(())
    }

    /// Executes the graph and returns the model's outputs.
    pub(crate) fn run(&self, arrays: &[&Tensor]) -> Result<Vec<Tensor>> {
        match self.execute(arrays, None)? {
            Executed::Outputs(v) => Ok(v),
            Executed::Captured(_) => Err(Error::Graph("internal: execution stopped early".into())),
        }
    }

    /// Executes the graph up to the node `stop_at` and returns what that node receives (for traces).
    pub(crate) fn capture_inputs(&self, arrays: &[&Tensor], stop_at: u64) -> Result<NodeInputs> {
        match self.execute(arrays, Some(stop_at))? {
            Executed::Captured(c) => Ok(c),
            Executed::Outputs(_) => Err(Error::Graph(
                "internal: the traced node is not part of the model".into(),
            )),
        }
    }

    /// Runs the nodes in order. Values (and masks) are kept per symbolic tensor until the end of the call.
    fn execute(&self, arrays: &[&Tensor], stop_at: Option<u64>) -> Result<Executed> {
        self.check_inputs(arrays)?;
        // Sized for every node's outputs up front: growing it made rehashes at every call.
        let slots = self.order.iter().map(|n| n.out_shapes.len()).sum();
        let mut values: Values<CowArray<'_, f32, IxDyn>> =
            Values::with_capacity_and_hasher(slots, Default::default());
        for (t, a) in self.inputs.iter().zip(arrays) {
            values.insert(t.key(), (a.0.view().into(), None));
        }
        for node in &self.order {
            let fed = (0..node.out_shapes.len()).all(|i| values.contains_key(&(node.id, i)));
            if (node.is_input || fed) && stop_at != Some(node.id) {
                continue;
            }
            let (ins, sts) = node_args(&values, node)?;
            if stop_at == Some(node.id) {
                return Ok(Executed::Captured(NodeInputs {
                    inputs: ins.iter().map(|v| v.0.to_owned()).collect(),
                    initial_state: sts.iter().map(|v| v.0.to_owned()).collect(),
                    mask: ins.first().and_then(|v| v.1.clone()),
                }));
            }
            let ctx = node.layer.ctx();
            let f = node.layer.module().forward(
                &ctx,
                CallInputs {
                    inputs: ins.iter().map(|v| v.0.view()).collect(),
                    initial_state: sts.iter().map(|v| v.0.view()).collect(),
                    mask: ins.first().and_then(|v| v.1.as_ref()),
                },
            )?;
            store_outputs(&mut values, node.id, f);
        }
        // The outputs are moved out of `values` (a copy only for an output listed twice or that is a model input).
        let outs = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = t.key();
                let listed_again = self.outputs[i + 1..].iter().any(|o| o.key() == key);
                let v = if listed_again {
                    values.get(&key).map(|v| v.0.to_owned())
                } else {
                    values.remove(&key).map(|v| v.0.into_owned())
                };
                v.map(Tensor)
                    .ok_or_else(|| Error::Graph(format!("internal: output {t:?} not computed")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Executed::Outputs(outs))
    }

    /// The first node of `layer` inside this model.
    pub(crate) fn node_of(&self, layer: &Layer) -> Option<Arc<Node>> {
        self.order
            .iter()
            .find(|n| n.layer == *layer && !n.is_input)
            .cloned()
    }

    /// Keras' "sequential-like" test: one node per depth, each with at most one input, and no shared layer.
    fn sequential_like(&self) -> bool {
        if self.kind == ModelKind::Sequential {
            return true;
        }
        let by_id: HashMap<u64, &Arc<Node>> = self.order.iter().map(|n| (n.id, n)).collect();
        let mut layer_seen = HashSet::new();
        for ids in &self.nodes_by_depth {
            if ids.len() > 1 {
                return false;
            }
            if let Some(id) = ids.first() {
                let n = by_id[id];
                if n.parents().count() > 1 || !layer_seen.insert(n.layer.shared.id) {
                    return false;
                }
            }
        }
        true
    }

    /// The data behind `summary()`.
    pub(crate) fn summary_data(&self) -> SummaryData {
        let node_ids: HashSet<u64> = self.order.iter().map(|n| n.id).collect();
        let mut rows = Vec::new();
        for l in &self.layers {
            let is_input = l.class_name() == "InputLayer";
            if is_input && self.kind == ModelKind::Sequential {
                continue;
            }
            let nodes = l.nodes();
            // Keras prints the shapes of the layer's last call.
            let output_shapes = nodes
                .last()
                .map(|n| n.out_shapes.clone())
                .unwrap_or_default();
            let mut connected_to = Vec::new();
            for n in nodes.iter().filter(|n| node_ids.contains(&n.id)) {
                for p in n.parents() {
                    let (name, ni, ti) = p.keras_history();
                    connected_to.push(format!("{name}[{ni}][{ti}]"));
                }
            }
            rows.push(SummaryRow {
                name: l.name(),
                class_name: l.class_name().to_string(),
                output_shapes,
                is_input,
                params: if l.built() {
                    Some(l.count_params())
                } else {
                    None
                },
                connected_to,
            });
        }
        let total = self.count_params();
        SummaryData {
            model_name: self.name.clone(),
            rows,
            sequential_like: self.sequential_like(),
            trainable_params: total,
            non_trainable_params: 0,
            bytes_per_param: 4,
        }
    }

    /// The model's summary table in Keras 3's style (displayed inline in Jupyter; printed with `{}`).
    pub fn summary(&self) -> Summary {
        Summary {
            data: self.summary_data(),
            style: SummaryStyle::Keras3,
            line_length: None,
        }
    }

    /// The summary in a chosen style: [`SummaryStyle::Keras3`] or [`SummaryStyle::Tf2`] (the tf.keras 2.x table
    /// the classic tutorials show).
    pub fn summary_with(&self, style: SummaryStyle) -> Summary {
        Summary {
            data: self.summary_data(),
            style,
            line_length: None,
        }
    }
}

/// A model summary: prints as Keras' text table, renders as an HTML table in Jupyter.
#[derive(Clone, PartialEq)]
pub struct Summary {
    data: SummaryData,
    style: SummaryStyle,
    line_length: Option<usize>,
}

impl Summary {
    pub(crate) fn from_parts(data: SummaryData, style: SummaryStyle) -> Summary {
        Summary {
            data,
            style,
            line_length: None,
        }
    }

    /// The same summary at a given total width (Keras 3 style only; Keras uses min(88, columns - 4)).
    pub fn line_length(mut self, width: usize) -> Summary {
        self.line_length = Some(width);
        self
    }

    /// The text table.
    pub fn text(&self) -> String {
        match self.style {
            SummaryStyle::Keras3 => self.data.render_keras3(self.line_length),
            SummaryStyle::Tf2 => self.data.render_tf2(),
        }
    }

    /// The HTML table shown in Jupyter.
    pub fn html(&self) -> String {
        self.data.render_html()
    }

    /// Total parameters.
    pub fn total_params(&self) -> usize {
        self.data.trainable_params + self.data.non_trainable_params
    }

    /// Renders inline in Jupyter (evcxr): HTML plus the text table as text/plain.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.html()
        );
        println!(
            "EVCXR_BEGIN_CONTENT text/plain\n{}\nEVCXR_END_CONTENT",
            self.text()
        );
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().trim_end_matches('\n'))
    }
}
impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
