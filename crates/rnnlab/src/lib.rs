//! # rnnlab
//!
//! Keras-compatible recurrent networks in Rust: [`LSTM`], [`GRU`], [`SimpleRNN`], [`Bidirectional`], [`Dense`] and
//! friends, a Functional [`Model`] builder with several inputs and outputs, [`Sequential`], `predict`, `summary`,
//! and weights in Keras' layout — giving the numbers Keras gives (checked against Keras 3.15 reference cases).
//!
//! ```
//! use rnnlab::prelude::*;
//! let inputs = Input::new((3, 2));
//! let [seq, h, c] = LSTM::new(1)
//!     .return_sequences(true)
//!     .return_state(true)
//!     .kernel_initializer(Initializer::Constant(0.1))
//!     .recurrent_initializer(Initializer::Constant(0.1))
//!     .call_n(&inputs)
//!     .unwrap();
//! let model = Model::new(&inputs, [&seq, &h, &c]).unwrap();
//! let data = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).reshape((1, 3, 2)).unwrap();
//! let [seq_v, h_v, c_v] = model.predict_n(&data).unwrap();
//! assert_eq!(seq_v.shape(), [1, 3, 1]);
//! assert_eq!(h_v.shape(), [1, 1]);
//! assert_eq!(c_v.shape(), [1, 1]);
//! ```

#![warn(missing_docs)]

pub mod activations;
pub mod error;
mod helper;
pub mod initializers;
pub mod io;
pub mod layers;
pub mod model;
mod numpy_fmt;
pub mod plot;
mod pool;
mod process;
pub mod saving;
pub mod summary;
pub mod tensor;
pub mod trace;
pub mod train;
mod vmath;

pub use activations::Activation;
pub use error::{Error, Result};
pub use initializers::{set_random_seed, Initializer};
pub use layers::{
    clear_session, Bidirectional, Dense, Dropout, Flatten, Layer, Masking, MergeMode, RepeatVector,
    SimpleRNN, TimeDistributed, GRU, LSTM,
};
pub use model::{Input, Model, Sequential, Summary, SymbolicShape, SymbolicTensor};
pub use ndarray;
pub use plot::Figure;
pub use summary::SummaryStyle;
pub use tensor::{Shape, Tensor};
pub use trace::{Direction, Trace};
pub use train::{Compile, FitOptions, History, Loss, Optimizer};

/// Lets recurrent layers split a large batch over `n` threads in `predict` (default 1), and at batch 1 (which
/// cannot be split by samples) share every step's matrix products by columns with one helper thread, kept for
/// the process (it spins a moment after each use, then sleeps). The results are bit for bit those of one thread:
/// every output value is computed by the same code in the same order.
///
/// ```
/// use rnnlab::{num_threads, set_num_threads};
/// set_num_threads(2);
/// assert_eq!(num_threads(), 2);
/// set_num_threads(1);
/// ```
pub fn set_num_threads(n: usize) {
    process::state()
        .threads
        .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The number of threads set by [`set_num_threads`] (1 by default).
pub fn num_threads() -> usize {
    process::state()
        .threads
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1)
}

/// Deterministic test inputs shared by the crate's unit tests.
#[cfg(test)]
mod test_values {
    /// `n` values in [-1, 1) from a 64-bit LCG seeded with `seed`.
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

/// Everything a notebook needs: `use rnnlab::prelude::*;`.
pub mod prelude {
    pub use crate::{
        clear_session, set_random_seed, Activation, Bidirectional, Compile, Dense, Direction,
        Dropout, FitOptions, Flatten, History, Initializer, Input, Layer, Loss, Masking, MergeMode,
        Model, Optimizer, RepeatVector, Sequential, Shape, SimpleRNN, SummaryStyle, SymbolicTensor,
        Tensor, TimeDistributed, Trace, GRU, LSTM,
    };
}
