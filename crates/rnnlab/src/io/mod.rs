//! The raw file layer: NumPy `.npy`/`.npz`, the Keras 3 `.keras` zip and the legacy tf.keras `.h5` file,
//! read into plain structs ([`Tensor`](crate::tensor::Tensor), [`H5Group`], [`KerasArchive`], [`LegacyH5`]).
//!
//! Nothing here knows about layers beyond where Keras puts their weights; building models on top of these
//! structs is the job of the model code. Every reader takes untrusted bytes: corrupt, truncated or hostile
//! input gives an [`Error::Format`] naming the file, never a panic or a huge
//! allocation.

pub mod archive;
pub mod legacy_h5;
pub mod npy;

pub use archive::{H5Group, KerasArchive};
pub use legacy_h5::LegacyH5;
pub use npy::{read_npy, read_npz, write_npy, write_npz};

use std::path::Path;

use crate::error::{Error, Result};

/// Reads a whole file and hands its bytes to a parser, naming the file in both kinds of error.
pub(crate) fn read_with<T>(path: &Path, parse: impl FnOnce(&[u8], &str) -> Result<T>) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, &path.display().to_string())
}
