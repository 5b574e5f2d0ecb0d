//! Models: the symbolic graph ([`Input`], [`SymbolicTensor`]), the Functional [`Model`] and [`Sequential`].

pub(crate) mod functional;
pub(crate) mod graph;
mod sequential;

pub(crate) use functional::ModelKind;
pub use functional::{Model, ModelInputs, Summary};
pub use graph::{Dim, Input, IntoSymShape, SymbolicShape, SymbolicTensor, TensorList};
pub use sequential::Sequential;
