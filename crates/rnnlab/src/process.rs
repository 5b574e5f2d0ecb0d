//! Process-wide state shared by every copy of this crate loaded into one process.
//!
//! Why this exists: the evcxr kernel (Jupyter, `rnnlab run`, `rnnlab repl`) compiles each notebook cell into its own
//! shared library and links the `:dep` crates statically into each one, so a process ends up with one copy of
//! rnnlab's `static`s per cell. Layer and node ids, Keras' automatic names (`lstm`, `lstm_1`, ...) and the
//! generator behind `set_random_seed` must survive from one cell to the next: an id that restarts at 1 in a later
//! cell collides with an id handed out earlier, and a model built across cells would silently merge two layers.
//!
//! The first copy that needs the state allocates it, leaks it (it lives as long as the process) and publishes its
//! address in an environment variable; later copies read the address back. The variable's name carries the crate
//! version and the struct's size, and its value carries the process id, so a different build of rnnlab or a child
//! process that inherited the environment never reads memory it does not own.

use rand::rngs::StdRng;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

/// The state every copy of rnnlab in the process shares.
pub(crate) struct ProcessState {
    /// The next layer/node id.
    pub next_id: AtomicU64,
    /// Keras' per-prefix name counters.
    pub names: Mutex<Option<HashMap<String, usize>>>,
    /// The generator unseeded initializers draw their sub-seeds from.
    pub rng: Mutex<Option<StdRng>>,
    /// Threads a recurrent forward pass may split its batch over (`set_num_threads`); 0 means 1.
    pub threads: std::sync::atomic::AtomicUsize,
}

/// The variable that holds the address. Differs between crate versions and layouts, which could not share it.
fn variable_name() -> String {
    format!(
        "RNNLAB_PROCESS_STATE_{}_{}",
        env!("CARGO_PKG_VERSION").replace(['.', '-', '+'], "_"),
        std::mem::size_of::<ProcessState>()
    )
}

/// Reads `pid:address` back; `None` when it is absent, malformed or was written by another process.
fn parse(value: &str) -> Option<usize> {
    let (pid, addr) = value.split_once(':')?;
    if pid.parse::<u32>().ok()? != std::process::id() {
        return None;
    }
    let addr = usize::from_str_radix(addr.strip_prefix("0x")?, 16).ok()?;
    (addr != 0 && addr % std::mem::align_of::<ProcessState>() == 0).then_some(addr)
}

/// Serialises the first publication between threads of this copy; copies in other cells run one after another
/// (the evcxr runtime loads and runs one cell at a time), so they find the variable already set.
static INIT: Mutex<()> = Mutex::new(());

/// The shared state of this process.
pub(crate) fn state() -> &'static ProcessState {
    static LOCAL: OnceLock<&'static ProcessState> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        let name = variable_name();
        if let Some(addr) = std::env::var(&name).ok().as_deref().and_then(parse) {
            // SAFETY: the address was published by a copy of this same crate version with the same struct size in
            // this process (checked by the variable's name and the pid), and that allocation is never freed.
            return unsafe { &*(addr as *const ProcessState) };
        }
        let state: &'static ProcessState = Box::leak(Box::new(ProcessState {
            next_id: AtomicU64::new(1),
            names: Mutex::new(None),
            rng: Mutex::new(None),
            threads: std::sync::atomic::AtomicUsize::new(0),
        }));
        // Once per process, before the first layer exists; see the module docs for why an environment variable.
        std::env::set_var(
            &name,
            format!(
                "{}:{:#x}",
                std::process::id(),
                state as *const ProcessState as usize
            ),
        );
        state
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_address_is_read_back() {
        let s = state();
        let value = std::env::var(variable_name()).unwrap();
        assert_eq!(parse(&value), Some(s as *const ProcessState as usize));
    }

    #[test]
    fn another_process_value_is_ignored() {
        let other = std::process::id().wrapping_add(1);
        assert_eq!(parse(&format!("{other}:0x1000")), None);
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(&format!("{}:0x0", std::process::id())), None);
        assert_eq!(parse(&format!("{}:1000", std::process::id())), None);
    }
}
