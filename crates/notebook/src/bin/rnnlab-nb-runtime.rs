//! The evcxr runtime child used by this crate's integration tests (see the crate docs).
fn main() {
    rnnlab_notebook::runtime_hook();
    eprintln!("rnnlab-nb-runtime: only useful as an evcxr runtime (EVCXR_IS_RUNTIME is not set)");
    std::process::exit(2);
}
