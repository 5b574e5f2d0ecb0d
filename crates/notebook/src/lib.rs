//! The notebook engine of rnnlab: executes Rust Jupyter notebooks (evcxr kernel) and tests them against their
//! stored outputs, the way nbval does for Python notebooks. It is the engine behind `rnnlab run` and
//! `rnnlab test`, and is kept out of the `rnnlab` library's dependency tree because evcxr brings rust-analyzer
//! (about 240 crates).
//!
//! - [`nbformat`]: read and write nbformat 4 without losing metadata or unknown fields, formatted as Jupyter
//!   writes it.
//! - [`Engine`]: one evcxr context executing cells, returning Jupyter's outputs (streams, results with every
//!   mime type, errors rendered against the cell's own lines), with per-cell timeouts and panics as errors.
//! - [`run_notebook`] / [`test_notebook`]: whole notebooks, with nbval's `// NBVAL_SKIP`,
//!   `// NBVAL_IGNORE_OUTPUT` and `// NBVAL_RAISES_EXCEPTION` markers and a numeric tolerance for text.
//!
//! # The runtime hook: required in every binary that embeds the engine
//!
//! evcxr runs compiled cells in a child process, and that child is a *second copy of an executable* — by
//! default the running one ([`Runtime::CurrentExe`]). So the binary's `main` must call [`runtime_hook`] as its
//! very first statement; in the child it never returns (it becomes the cell runner, or a rustc wrapper for
//! evcxr's `:cache`), in the parent it returns at once:
//!
//! ```no_run
//! fn main() {
//!     rnnlab_notebook::runtime_hook(); // first: anything before it also runs in every child
//!     // ... parse arguments, then Engine::new() / run_notebook(...)
//! }
//! ```
//!
//! A test harness cannot be the runtime, so tests point the engine at this crate's tiny `rnnlab-nb-runtime`
//! binary instead: `Runtime::Binary(env!("CARGO_BIN_EXE_rnnlab-nb-runtime").into())`.
//!
//! # Build and environment requirements
//!
//! - `Cargo.lock` must pin `salsa`, `salsa-macros` and `salsa-macro-rules` to 0.28.2: unlocked resolution picks
//!   0.28.5, which does not compile with evcxr 0.22's `ra_ap_*` 0.0.347.
//! - Build the engine optimised (the workspace compiles dependencies at opt-level 2): rust-analyzer inside evcxr
//!   is about ten times slower in a debug build.
//! - At run time: `cargo` on `PATH`, a C linker (`cc`), and the `rust-src` rustup component (rust-analyzer needs
//!   it to infer variable types).

pub mod build_dir;
pub mod compare;
pub mod engine;
pub mod nbformat;
pub mod render;
pub mod runner;

pub use build_dir::BuildDir;
pub use compare::Tolerance;
pub use engine::{
    CellResult, CellStatus, Completions, Engine, EngineError, EngineOptions, Runtime,
};
pub use nbformat::{Cell, CodeCell, Notebook, NotebookError, Output};
pub use runner::{
    run_notebook, run_notebook_in, test_notebook, CellOutcome, CellRun, CellTest, Markers,
    RunError, RunOptions, RunReport, TestOptions, TestReport, Verdict,
};

/// Must be the first statement of `main` in every binary that runs the engine with itself as runtime (see the
/// crate docs). When the process was started by evcxr as its runtime child (`EVCXR_IS_RUNTIME` set) or as its
/// rustc wrapper, this never returns; otherwise it returns immediately and does nothing.
pub fn runtime_hook() {
    evcxr::runtime_hook();
}
