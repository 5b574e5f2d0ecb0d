//! The `rnnlab` binary: `predict` and `summary` on every Keras reference case, and its exit codes.
//!
//! Expected outputs: `tests/fixtures/keras-cases/*/output_K.npy` from real Keras 3.15.1 (see the fixtures' README).

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_close, case_json, case_names, cases_dir};

fn rnnlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rnnlab"))
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnlab-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn inputs_of(case: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| cases_dir().join(case).join(format!("input_{i}.npy")))
        .take_while(|p| p.exists())
        .collect()
}

fn check_outputs(case: &str, out: &Path) {
    let mut k = 0;
    loop {
        let want = cases_dir().join(case).join(format!("output_{k}.npy"));
        if !want.exists() {
            break;
        }
        let got = common::read_fixture_npy(&out.join(format!("output_{k}.npy")));
        assert_close(
            &format!("{case} output_{k}"),
            &got,
            &common::read_fixture_npy(&want),
        );
        k += 1;
    }
    assert!(
        k > 0 && !out.join(format!("output_{k}.npy")).exists(),
        "{case}: wrong number of output files"
    );
}

#[test]
fn predict_reproduces_every_keras_case() {
    let root = tempdir("predict");
    for case in case_names() {
        let out = root.join(&case);
        let st = rnnlab()
            .arg("predict")
            .arg(cases_dir().join(&case).join("model.keras"))
            .args(inputs_of(&case))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let stdout = String::from_utf8_lossy(&st.stdout);
        assert!(stdout.contains("output_0"), "{case}: {stdout}");
        check_outputs(&case, &out);
    }
}

#[test]
fn predict_streams_in_batches_with_the_same_result() {
    let root = tempdir("batches");
    let case = "encoder_decoder_lstm_initial_state";
    let st = rnnlab()
        .arg("predict")
        .arg(cases_dir().join(case).join("model.keras"))
        .args(inputs_of(case))
        .args(["--batch-size", "1", "--out"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    check_outputs(case, &root);
}

#[test]
fn summary_prints_each_case_params() {
    for case in case_names() {
        let st = rnnlab()
            .arg("summary")
            .arg(cases_dir().join(&case).join("model.keras"))
            .output()
            .unwrap();
        assert!(st.status.success());
        let text = String::from_utf8_lossy(&st.stdout);
        let params = case_json(&case)["params"].as_u64().unwrap();
        assert!(
            text.contains(&format!("Total params: {params}")),
            "{case}:\n{text}"
        );
        let st = rnnlab()
            .args(["summary", "--style", "tf2"])
            .arg(cases_dir().join(&case).join("model.keras"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&st.stdout).contains(&format!("Total params: {params}")));
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let root = tempdir("bad");
    let case = cases_dir().join("lstm_seq0_state0");
    let wrong_dtype = root.join("ints.npy");
    // A valid .npy of dtype int64, shape (2,).
    let bytes = common::npy_bytes_with_header("<i8", "(2,)", &[0u8; 16]);
    std::fs::write(&wrong_dtype, bytes).unwrap();
    std::fs::write(root.join("junk.keras"), b"junk").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "predict".into(),
                root.join("missing.keras").display().to_string(),
                case.join("input_0.npy").display().to_string(),
                "--out".into(),
                root.display().to_string(),
            ],
            "missing.keras",
        ),
        (
            vec![
                "predict".into(),
                root.join("junk.keras").display().to_string(),
                case.join("input_0.npy").display().to_string(),
                "--out".into(),
                root.display().to_string(),
            ],
            "not a Keras model file",
        ),
        (
            vec![
                "predict".into(),
                case.join("model.keras").display().to_string(),
                wrong_dtype.display().to_string(),
                "--out".into(),
                root.display().to_string(),
            ],
            "ints.npy",
        ),
        (
            vec![
                "predict".into(),
                case.join("model.keras").display().to_string(),
                case.join("input_0.npy").display().to_string(),
                case.join("input_0.npy").display().to_string(),
                "--out".into(),
                root.display().to_string(),
            ],
            "takes 1 input",
        ),
        (
            vec![
                "predict".into(),
                case.join("model.keras").display().to_string(),
                case.join("output_0.npy").display().to_string(),
                "--out".into(),
                root.display().to_string(),
            ],
            "expected shape (None, 5, 3)",
        ),
        (
            vec![
                "summary".into(),
                root.join("junk.keras").display().to_string(),
            ],
            "not a Keras model file",
        ),
    ];
    for (args, needle) in cases {
        let st = rnnlab().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&st.stderr);
        assert_eq!(st.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(err.contains(needle), "{args:?}: {err} lacks {needle}");
    }
}

/// Runs `rnnlab bench ARGS --seconds 0 --json JSON` (timings are not asserted), checks it succeeded
/// and returns its standard output and the JSON it wrote.
fn bench(args: &[&str], json: &Path) -> (String, serde_json::Value) {
    let out = rnnlab()
        .arg("bench")
        .args(args)
        .args(["--seconds", "0", "--json"])
        .arg(json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (stdout, v)
}

/// `rnnlab bench` prints its table and JSON (shapes only: timings are not asserted), and explains a bad shape.
#[test]
fn bench_prints_a_table_and_writes_json() {
    let dir = tempdir("bench");
    let json = dir.join("bench.json");
    let (stdout, v) = bench(
        &[
            "--shape",
            "lstm:1,3,2,1",
            "--shape",
            "gru:2,3,4,5",
            "--shape",
            "simplernn:1,2,2,2",
            "--min-runs",
            "2",
        ],
        &json,
    );
    assert!(stdout.contains("FMA peak probe:"), "{stdout}");
    assert!(
        stdout.contains("median ms") && stdout.contains("% peak"),
        "{stdout}"
    );
    for label in ["lstm 1,3,2,1", "gru 2,3,4,5", "simplernn 1,2,2,2"] {
        assert!(stdout.contains(label), "{label} missing:\n{stdout}");
    }
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[1]["kind"], "gru");
    assert_eq!(results[1]["units"], 5);
    assert_eq!(results[1]["given_state"], false);
    assert!(results[0]["runs"].as_u64().unwrap() >= 2);
    assert!(results[0]["median_ms"].as_f64().unwrap() > 0.0);
    assert!(v["fma_peak_gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(v["threads"], 1);
    assert_eq!(results[0]["mode"], "predict");

    // --train: training steps (train_on_batch) of the same shapes.
    let (stdout, v) = bench(
        &[
            "--train",
            "--shape",
            "lstm:2,3,2,4",
            "--shape",
            "gru:2,3,2,4",
        ],
        &json,
    );
    assert!(
        stdout.contains("training step") && stdout.contains("calls/s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lstm 2,3,2,4") && stdout.contains(" train "),
        "{stdout}"
    );
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(results
        .iter()
        .all(|r| r["mode"] == "train" && r["median_ms"].as_f64().unwrap() > 0.0));

    // --threads: the same table, the thread count in it and in the JSON.
    let (_, v) = bench(&["--threads", "2", "--shape", "lstm:8,20,16,32"], &json);
    assert_eq!(v["threads"], 2);

    // --state: every call gets a random initial state (the model's extra inputs), labelled and in the JSON.
    let (stdout, v) = bench(
        &[
            "--state",
            "--shape",
            "lstm:1,1,8,4",
            "--shape",
            "gru:2,3,4,5",
            "--shape",
            "simplernn:1,2,2,2",
        ],
        &json,
    );
    for label in [
        "lstm 1,1,8,4 +state",
        "gru 2,3,4,5 +state",
        "simplernn 1,2,2,2 +state",
    ] {
        assert!(stdout.contains(label), "{label} missing:\n{stdout}");
    }
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["given_state"] == true), "{v}");

    let bad0 = rnnlab().args(["bench", "--threads", "0"]).output().unwrap();
    assert_eq!(bad0.status.code(), Some(2));

    let bad = rnnlab()
        .args(["bench", "--shape", "lstm:1,2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("bad --shape 'lstm:1,2'"), "{stderr}");
}

/// `tests/fixtures/keras-fit`: compiled Keras models and what Keras' `fit` made of them (see tests/keras_fit.rs).
fn fit_case(name: &str) -> PathBuf {
    cases_dir().join("../keras-fit").join(name)
}

fn npys_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.npy")))
        .take_while(|p| p.exists())
        .collect()
}

#[test]
fn fit_trains_with_the_files_compile_config_like_keras() {
    // Every training case through the CLI: the saved model must hold Keras' weights after two epochs, and the
    // printed and written losses must be Keras' (history.json).
    let root = tempdir("fit");
    let dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir().join("../keras-fit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.keras").exists())
        .collect();
    assert!(dirs.len() >= 12);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let out = root.join(format!("{name}.keras"));
        let hist = root.join(format!("{name}.json"));
        let o = rnnlab()
            .arg("fit")
            .arg(dir.join("model.keras"))
            .args(npys_in(&dir, "x"))
            .args(npys_in(&dir, "y"))
            .args([
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--no-shuffle",
                "--out",
            ])
            .arg(&out)
            .arg("--history")
            .arg(&hist)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{name}: {}\n{stdout}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains("Epoch 2/2") && stdout.contains("saved"),
            "{name}: {stdout}"
        );
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap())
                .unwrap();
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&hist).unwrap()).unwrap();
        for (k, v) in want.as_object().unwrap() {
            for (e, w) in v.as_array().unwrap().iter().enumerate() {
                let (g, w) = (got[k][e].as_f64().unwrap(), w.as_f64().unwrap());
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs(),
                    "{name}: {k}[{e}] {g} vs Keras {w}"
                );
                // The epoch line shows the same value to 4 decimals.
                if k == "loss" && e == 1 {
                    assert!(
                        stdout.contains(&format!("loss: {w:.4}")),
                        "{name}: {stdout}"
                    );
                }
            }
        }
        let trained = rnnlab::Model::load(&out).unwrap();
        let want_w: Vec<rnnlab::Tensor> = npys_in(&dir, "weights_after")
            .iter()
            .map(|p| common::read_fixture_npy(p))
            .collect();
        for (i, (g, w)) in trained.get_weights().iter().zip(&want_w).enumerate() {
            assert_close(&format!("{name}: weight {i} after rnnlab fit"), g, w);
        }
        assert_eq!(
            trained.compile_config().unwrap().optimizer().iterations(),
            6,
            "{name}"
        );
    }
}

#[test]
fn fit_bad_input_exits_2_with_a_clear_message() {
    let root = tempdir("fit-bad");
    let dir = fit_case("lstm_dense_sgd_nesterov");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = rnnlab().arg("fit").args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let out = root.join("t.keras");
    let (m, x, y) = (
        dir.join("model.keras"),
        dir.join("x_0.npy"),
        dir.join("y_0.npy"),
    );
    // An uncompiled model (the inference reference cases are saved uncompiled).
    let unc = cases_dir().join(&case_names()[0]).join("model.keras");
    let (code, err) = run(&[
        unc.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("was not compiled") && err.lines().count() == 1,
        "{err}"
    );
    // A target of the wrong shape: named with expected and received shapes.
    let (code, err) = run(&[
        m.as_os_str(),
        x.as_os_str(),
        x.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("target for loss mse")
            && err.contains("(10, 2)")
            && err.contains("(10, 5, 3)"),
        "{err}"
    );
    // A missing target.
    let (code, err) = run(&[
        m.as_os_str(),
        x.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give 2 .npy files"), "{err}");
    // An optimizer rnnlab does not implement: the compile_config is rewritten to Adagrad.
    let bytes = std::fs::read(&m).unwrap();
    let mut a = rnnlab::io::KerasArchive::from_bytes(&bytes, "m").unwrap();
    a.config["compile_config"]["optimizer"]["class_name"] = serde_json::json!("Adagrad");
    let adagrad = root.join("adagrad.keras");
    a.write(&adagrad).unwrap();
    let (code, err) = run(&[
        adagrad.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Unknown optimizer") && err.contains("Adagrad") && err.contains("adam"),
        "{err}"
    );
    assert!(!out.exists(), "nothing saved after a failure");
}

/// `rnnlab run -o`: one notebook into an existing folder is written there under its own name; a file in a missing
/// folder is refused before anything runs (a notebook can run for minutes, and its outputs would be lost).
#[test]
fn run_writes_one_notebook_into_an_existing_folder_and_checks_the_target_first() {
    let dir = tempdir("run-output");
    let nb =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/notebooks/passing.ipynb");
    let run_to = |target: &Path| {
        rnnlab()
            .arg("run")
            .arg(&nb)
            .arg("-o")
            .arg(target)
            .output()
            .unwrap()
    };
    let folder = dir.join("executed");
    std::fs::create_dir_all(&folder).unwrap();
    let out = run_to(&folder);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(folder.join("passing.ipynb")).unwrap();
    assert!(
        written.contains("hello 43"),
        "the executed cell's output is in the file"
    );

    let out = run_to(&dir.join("no-such-folder").join("passing.ipynb"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("cells executed"),
        "refused before running"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
