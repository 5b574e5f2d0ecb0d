//! The one error type of the library, with Keras-style messages.
//!
//! Every fallible public function returns [`Result`]. Messages name the layer (or file), the argument, what was
//! expected and what was received, the way Keras' `ValueError`s do, so a notebook user can fix the call without
//! reading the source.

use std::path::PathBuf;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rnnlab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument has a value the callee cannot accept (units = 0, a negative rate, ...).
    #[error("{context}: invalid argument `{argument}`: expected {expected}, received {received}")]
    InvalidArgument {
        /// Where it happened, e.g. `Layer "lstm" (LSTM)`.
        context: String,
        /// The argument's Keras name, e.g. `units`.
        argument: String,
        /// What would have been accepted.
        expected: String,
        /// What was given.
        received: String,
    },
    /// An array or symbolic tensor has the wrong rank or shape.
    #[error("{context}: input `{argument}` is incompatible: expected shape {expected}, received {received}")]
    Shape {
        /// Where it happened, e.g. `Layer "lstm" (LSTM)`.
        context: String,
        /// Which input, e.g. `sequences` or `initial_state[1]`.
        argument: String,
        /// The expected shape, Keras notation: `(None, None, 2)`.
        expected: String,
        /// The received shape.
        received: String,
    },
    /// A name (activation, initializer, layer class, layer name) that rnnlab does not know.
    #[error("Unknown {kind}: '{name}'. Expected one of: {}", known.join(", "))]
    UnknownName {
        /// What kind of name: `activation`, `initializer`, `layer class`, ...
        kind: String,
        /// The name that was given.
        name: String,
        /// The names that would have been accepted.
        known: Vec<String>,
    },
    /// The model graph is malformed: outputs not connected to inputs, wrong number of outputs, ...
    #[error("{0}")]
    Graph(String),
    /// A file could not be read or written.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        /// `read`, `write`, `create`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is corrupt or not what it claims to be.
    #[error("{what}: {message}")]
    Format {
        /// The file or member, e.g. `model.keras: config.json`.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// Something valid in Keras that rnnlab does not (yet) support.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(
        context: impl Into<String>,
        argument: impl Into<String>,
        expected: impl Into<String>,
        received: impl std::fmt::Display,
    ) -> Self {
        Error::InvalidArgument {
            context: context.into(),
            argument: argument.into(),
            expected: expected.into(),
            received: received.to_string(),
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(
        context: impl Into<String>,
        argument: impl Into<String>,
        expected: impl std::fmt::Display,
        received: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            argument: argument.into(),
            expected: expected.to_string(),
            received: received.to_string(),
        }
    }

    /// Shorthand for [`Error::UnknownName`].
    pub fn unknown(kind: impl Into<String>, name: impl Into<String>, known: &[&str]) -> Self {
        Error::UnknownName {
            kind: kind.into(),
            name: name.into(),
            known: known.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Shorthand for [`Error::Format`].
    pub fn format(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Format {
            what: what.into(),
            message: message.to_string(),
        }
    }
}
