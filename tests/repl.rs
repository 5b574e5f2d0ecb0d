//! `rnnlab repl --no-readline` driven through pipes, as a script or a test harness would drive it.
//!
//! Expected numbers: the dlology tutorial's LSTM (constant 0.1 weights, Keras 2 hard_sigmoid): 0.00767819,
//! 0.01597687, 0.02480672 and c = 0.04864851, as printed by the tutorial and by Keras (see tests/tutorial_numbers.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn rnnlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rnnlab"))
}

/// Runs one REPL session on `script` and returns (stdout, stderr, exit status).
fn session(script: &str, dir: &Path) -> (String, String, Output) {
    let mut child = rnnlab()
        .args(["repl", "--no-readline", "--no-history", "--timeout", "900"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rnnlab repl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    (stdout, stderr, out)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnlab-repl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One session covers the tutorial transcribed line by line (a method chain over several lines), mistakes of
/// three kinds followed by more work on the earlier variables, `:vars`, `:plot` and `:save`; then `rnnlab test`
/// passes on the saved notebook and a second session `:load`s it.
#[test]
fn tutorial_session_survives_mistakes_saves_and_loads() {
    let dir = scratch("session");
    let script = r#"
let inputs = Input::new((3, 2));
let [seq, h, c] = LSTM::new(1)
    .return_sequences(true)
    .return_state(true)
    .kernel_initializer(Initializer::Constant(0.1))
    .recurrent_initializer(Initializer::Constant(0.1))
    .recurrent_activation_fn(Activation::HardSigmoidKeras2)
    .call_n(&inputs)?;
let model = Model::new(&inputs, [&seq, &h, &c])?;
let data = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).reshape((1, 3, 2))?;
model.predict_all(&data)?
undefined_thing + 1
let empty: Vec<f32> = Vec::new();
empty[3]
model.predict(&Tensor::zeros((1, 3, 5)))?
data.shape()
:vars
let traces = model.trace("lstm", &data)?;
:plot traces[0].plot_states(0)? states.png
:save saved.ipynb
:quit
this line is never read
"#;
    let (stdout, stderr, out) = session(script, &dir);
    assert!(out.status.success(), "the session must end cleanly");
    // The tutorial's numbers, printed as NumPy prints them.
    assert!(
        stdout.contains("[array([[[0.00767819],\n        [0.01597687],\n        [0.02480672]]], dtype=float32), array([[0.02480672]], dtype=float32), array([[0.04864851]], dtype=float32)]"),
        "{stdout}"
    );
    // Three mistakes, each reported against the user's own line.
    assert!(
        stderr.contains("cannot find value `undefined_thing`"),
        "{stderr}"
    );
    assert!(stderr.contains("1 | undefined_thing + 1"), "{stderr}");
    assert!(
        stderr.contains("index out of bounds: the len is 0 but the index is 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected shape (None, 3, 2), received (1, 3, 5)"),
        "{stderr}"
    );
    // ... and the earlier variables survived all three.
    assert!(stdout.contains("(1, 3, 2)\n"), "{stdout}");
    assert!(
        stdout.contains("data: Tensor\n") && stdout.contains("model: Model\n"),
        "{stdout}"
    );
    let png = std::fs::read(dir.join("states.png")).expect(":plot wrote the figure");
    assert!(png.starts_with(b"\x89PNG"), "a PNG file");
    assert!(stdout.contains("saved "), "{stdout}");
    assert!(
        !stderr.contains("never read"),
        "input after :quit is not executed"
    );

    // The saved notebook passes `rnnlab test`: its outputs are the session's outputs.
    let saved = dir.join("saved.ipynb");
    let tested = rnnlab().args(["test"]).arg(&saved).output().unwrap();
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        !text.contains("undefined_thing"),
        "failed inputs are not saved"
    );
    assert!(text.contains("0.04864851"), "outputs are saved");

    // A new session replays it with :load and carries on with its variables.
    let (stdout, stderr, out) = session(":load saved.ipynb\nmodel.predict(&data)?\n", &dir);
    assert!(out.status.success());
    assert!(stdout.contains("(skipped `:dep rnnlab"), "{stdout}");
    assert!(stdout.contains("0.04864851"), "{stdout}");
    assert!(stdout.contains("[[0.02480672]]"), "{stdout}\n{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_rnnlab_crate_is_a_clear_error() {
    let out = rnnlab()
        .args([
            "repl",
            "--no-readline",
            "--rnnlab-path",
            "/nonexistent/rnnlab",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the rnnlab crate was not found at '/nonexistent/rnnlab'"),
        "{stderr}"
    );
}
