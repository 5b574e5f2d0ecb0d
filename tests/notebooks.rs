//! CI executes every notebook in `notebooks/`: `rnnlab test notebooks` must pass, as nbval does for Python.
//!
//! Expected outputs: the outputs stored in each notebook (written by `rnnlab run --inplace`, checked against the
//! tutorials' printed numbers and, for the Keras numbers, against real Keras; see notebooks/README.md). Numbers
//! are compared with the engine's tolerance, so a changed digit fails.

use std::path::Path;
use std::process::Command;

#[test]
fn every_notebook_passes_rnnlab_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let notebooks = root.join("notebooks");
    let count = std::fs::read_dir(&notebooks)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "ipynb"))
        })
        .count();
    assert!(
        count >= 6,
        "expected the six notebooks in {}",
        notebooks.display()
    );
    // The default build cache: one locked slot for the whole run, so the notebooks after the first start warm
    // (and a later test run reuses the compiled `:dep` crates).
    let out = Command::new(env!("CARGO_BIN_EXE_rnnlab"))
        .current_dir(&root)
        .args(["test", "notebooks", "--timeout", "900"])
        .output()
        .expect("run rnnlab test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "rnnlab test notebooks failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("{count} passed, 0 failed")),
        "every notebook must be tested:\n{stdout}"
    );
}
