//! The symbolic graph: [`Input`], [`SymbolicTensor`] and the nodes that layer calls create.
//!
//! A symbolic tensor owns (through an `Arc`) the node that produced it, and each node owns its input tensors, so a
//! graph is kept alive by whatever tensors a notebook still binds: no global graph, no lifetimes, and values stay
//! valid across notebook cells.

use std::fmt;
use std::sync::Arc;

use crate::layers::{fmt_sym, next_id, InputLayer, Layer, SymShape};

/// One call of a layer: its inputs and the shapes of what it returns (Keras' `Node`).
pub(crate) struct Node {
    pub id: u64,
    pub layer: Layer,
    /// Which call of `layer` this is (Keras' node_index): 0 for the first call.
    pub node_index: usize,
    pub inputs: Vec<SymbolicTensor>,
    pub initial_state: Vec<SymbolicTensor>,
    pub out_shapes: Vec<SymShape>,
    pub is_input: bool,
}

impl Node {
    /// Every tensor this node consumes, inputs first (Keras' `node.input_tensors`, which includes kwargs).
    pub fn parents(&self) -> impl Iterator<Item = &SymbolicTensor> {
        self.inputs.iter().chain(self.initial_state.iter())
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Node {}[{}]>", self.layer.name(), self.node_index)
    }
}

/// A placeholder for a value in a model being defined (Keras' `KerasTensor`): returned by [`Input::new`] and by
/// layer calls, consumed by [`crate::Model::new`].
#[derive(Clone)]
pub struct SymbolicTensor {
    pub(crate) node: Arc<Node>,
    pub(crate) index: usize,
}

impl SymbolicTensor {
    /// The symbolic shape, `None` for the batch and other unknown dimensions: prints as `(None, 3, 1)`.
    pub fn shape(&self) -> SymbolicShape {
        SymbolicShape(self.sym_shape().to_vec())
    }

    pub(crate) fn sym_shape(&self) -> &[Option<usize>] {
        &self.node.out_shapes[self.index]
    }

    /// Keras' `_keras_history`: the producing layer's name, the node index and the tensor index.
    pub fn keras_history(&self) -> (String, usize, usize) {
        (self.node.layer.name(), self.node.node_index, self.index)
    }

    /// The layer that produced this tensor.
    pub fn layer(&self) -> Layer {
        self.node.layer.clone()
    }

    pub(crate) fn key(&self) -> (u64, usize) {
        (self.node.id, self.index)
    }
}

impl PartialEq for SymbolicTensor {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, n, i) = self.keras_history();
        write!(
            f,
            "<SymbolicTensor shape={}, dtype=float32, from={l}[{n}][{i}]>",
            self.shape()
        )
    }
}

/// A symbolic shape printed as a Python tuple with `None`: `(None, 3, 1)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SymbolicShape(pub Vec<Option<usize>>);

impl fmt::Display for SymbolicShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_sym(&self.0))
    }
}
impl fmt::Debug for SymbolicShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One dimension of a symbolic shape: a number, or `None` for "any".
pub trait Dim {
    /// The dimension, `None` when unknown.
    fn dim(self) -> Option<usize>;
}
impl Dim for usize {
    fn dim(self) -> Option<usize> {
        Some(self)
    }
}
impl Dim for i32 {
    fn dim(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}
impl Dim for Option<usize> {
    fn dim(self) -> Option<usize> {
        self
    }
}

/// Anything that names a symbolic shape: `(3, 2)`, `(None, 5)`, `[3, 2]`, `vec![Some(3), None]`, `4`.
pub trait IntoSymShape {
    /// The dimensions.
    fn into_sym(self) -> SymShape;
}
impl IntoSymShape for usize {
    fn into_sym(self) -> SymShape {
        vec![Some(self)]
    }
}
impl IntoSymShape for i32 {
    fn into_sym(self) -> SymShape {
        vec![self.dim()]
    }
}
impl IntoSymShape for Vec<Option<usize>> {
    fn into_sym(self) -> SymShape {
        self
    }
}
impl IntoSymShape for Vec<usize> {
    fn into_sym(self) -> SymShape {
        self.into_iter().map(Some).collect()
    }
}
impl IntoSymShape for &[usize] {
    fn into_sym(self) -> SymShape {
        self.iter().map(|&d| Some(d)).collect()
    }
}
impl<const N: usize> IntoSymShape for [usize; N] {
    fn into_sym(self) -> SymShape {
        self.iter().map(|&d| Some(d)).collect()
    }
}
impl<const N: usize> IntoSymShape for [Option<usize>; N] {
    fn into_sym(self) -> SymShape {
        self.to_vec()
    }
}
impl IntoSymShape for SymbolicShape {
    fn into_sym(self) -> SymShape {
        self.0
    }
}
macro_rules! tuple_sym {
    ($($t:ident),+) => {
        impl<$($t: Dim),+> IntoSymShape for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_sym(self) -> SymShape {
                let ($($t,)+) = self;
                vec![$($t.dim()),+]
            }
        }
    };
}
tuple_sym!(A);
tuple_sym!(A, B);
tuple_sym!(A, B, C);
tuple_sym!(A, B, C, D);
tuple_sym!(A, B, C, D, E);

/// Creates the symbolic input of a model (Keras `keras.Input`). The shape excludes the batch dimension.
///
/// ```
/// use rnnlab::Input;
/// let x = Input::new((3, 2));
/// assert_eq!(x.shape().to_string(), "(None, 3, 2)");
/// let v = Input::new((None, 5)); // any number of time steps
/// assert_eq!(v.shape().to_string(), "(None, None, 5)");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Input;

impl Input {
    /// `keras.Input(shape=...)`: batch size unknown.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl IntoSymShape) -> SymbolicTensor {
        let mut s = vec![None];
        s.extend(shape.into_sym());
        Input::with_batch_shape(s)
    }

    /// `keras.Input(shape=..., name=...)`.
    pub fn named(name: &str, shape: impl IntoSymShape) -> SymbolicTensor {
        let t = Input::new(shape);
        t.node.layer.set_name(name);
        t
    }

    /// `keras.Input(batch_shape=...)`: the shape including the batch (needed by stateful layers in Keras).
    pub fn with_batch_shape(batch_shape: impl IntoSymShape) -> SymbolicTensor {
        let batch_shape = batch_shape.into_sym();
        let layer = Layer::from_module(Box::new(InputLayer {
            batch_shape: batch_shape.clone(),
        }));
        add_input_node(layer, batch_shape)
    }
}

pub(crate) fn add_input_node(layer: Layer, batch_shape: SymShape) -> SymbolicTensor {
    let node = Arc::new(Node {
        id: next_id(),
        layer: layer.clone(),
        node_index: 0,
        inputs: vec![],
        initial_state: vec![],
        out_shapes: vec![batch_shape],
        is_input: true,
    });
    layer
        .shared
        .nodes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&node));
    SymbolicTensor { node, index: 0 }
}

/// Records a call of `layer` and returns its output tensors.
pub(crate) fn add_node(
    layer: &Layer,
    inputs: Vec<SymbolicTensor>,
    initial_state: Vec<SymbolicTensor>,
    out_shapes: Vec<SymShape>,
) -> Vec<SymbolicTensor> {
    let mut nodes = layer.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
    let n = out_shapes.len();
    let node = Arc::new(Node {
        id: next_id(),
        layer: layer.clone(),
        node_index: nodes.len(),
        inputs,
        initial_state,
        out_shapes,
        is_input: false,
    });
    nodes.push(Arc::downgrade(&node));
    (0..n)
        .map(|index| SymbolicTensor {
            node: node.clone(),
            index,
        })
        .collect()
}

pub(crate) fn node_outputs(node: &Arc<Node>) -> Vec<SymbolicTensor> {
    (0..node.out_shapes.len())
        .map(|index| SymbolicTensor {
            node: node.clone(),
            index,
        })
        .collect()
}

/// A list of symbolic tensors: one tensor, a slice, an array or a vector of them (owned or borrowed).
pub trait TensorList {
    /// The tensors, in order.
    fn to_list(self) -> Vec<SymbolicTensor>;
}
impl TensorList for &SymbolicTensor {
    fn to_list(self) -> Vec<SymbolicTensor> {
        vec![self.clone()]
    }
}
impl TensorList for SymbolicTensor {
    fn to_list(self) -> Vec<SymbolicTensor> {
        vec![self]
    }
}
impl TensorList for &[&SymbolicTensor] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}
impl<const N: usize> TensorList for &[&SymbolicTensor; N] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}
impl<const N: usize> TensorList for [&SymbolicTensor; N] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}
impl<const N: usize> TensorList for [SymbolicTensor; N] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.to_vec()
    }
}
impl<const N: usize> TensorList for &[SymbolicTensor; N] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.to_vec()
    }
}
impl TensorList for &[SymbolicTensor] {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.to_vec()
    }
}
impl TensorList for Vec<SymbolicTensor> {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self
    }
}
impl TensorList for &Vec<SymbolicTensor> {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.clone()
    }
}
impl TensorList for Vec<&SymbolicTensor> {
    fn to_list(self) -> Vec<SymbolicTensor> {
        self.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Model, LSTM};

    #[test]
    fn a_dropped_model_frees_its_graph() {
        // Found by fuzzing (LeakSanitizer): layer -> node -> layer links used to form a cycle that was never
        // freed. Layers now hold their nodes weakly.
        let x = Input::new((3, 2));
        let lstm = LSTM::new(2);
        let [_, h, _c] = lstm.return_state(true).call_n(&x).unwrap();
        let model = Model::new(&x, &h).unwrap();
        let layer = model.get_layer(&h.layer().name()).unwrap();
        let weak_layer = Arc::downgrade(&layer.shared);
        let weak_node = Arc::downgrade(&h.node);
        assert_eq!(
            layer.output().unwrap().len(),
            3,
            "layer.output() works while the model exists"
        );
        drop((x, h, _c, model, layer));
        assert!(weak_node.upgrade().is_none(), "nodes are freed");
        assert!(weak_layer.upgrade().is_none(), "layers are freed");
    }
}
