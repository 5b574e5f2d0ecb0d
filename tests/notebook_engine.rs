//! Integration tests of the notebook engine (crate `rnnlab-notebook`) on the fixture notebooks in
//! `tests/fixtures/notebooks/`: passing cells, a changed number, a compile error, a panic, an endless loop under
//! a short timeout, rich output, a `:dep` on rnnlab, and nbval's markers.
//!
//! The engine's runtime child is this crate's `rnnlab-nb-runtime` binary: the libtest harness cannot serve as
//! evcxr's runtime because its `main` does not call `runtime_hook()`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rnnlab_notebook::nbformat::Output;
use rnnlab_notebook::{
    run_notebook, test_notebook, CellOutcome, CellStatus, Engine, EngineOptions, Notebook,
    RunError, RunOptions, Runtime, TestOptions, Verdict,
};

fn runtime() -> Runtime {
    Runtime::Binary(env!("CARGO_BIN_EXE_rnnlab-nb-runtime").into())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/notebooks")
        .join(name)
}

fn run_options(keep_going: bool) -> RunOptions {
    RunOptions {
        runtime: runtime(),
        keep_going,
        timeout: Some(Duration::from_secs(300)),
        ..RunOptions::default()
    }
}

fn test_options() -> TestOptions {
    TestOptions {
        run: run_options(true),
        ..TestOptions::default()
    }
}

/// A fresh folder for notebooks a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnlab-nb-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn outputs(nb: &Notebook, index: usize) -> &[Output] {
    &nb.cells[index].as_code().unwrap().outputs
}

fn stream_text(outputs: &[Output], name: &str) -> String {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Stream(s) if s.name == name => Some(s.text.clone()),
            _ => None,
        })
        .collect()
}

fn plain(outputs: &[Output]) -> Option<String> {
    outputs
        .iter()
        .find_map(|o| o.data())
        .and_then(|d| d.get("text/plain"))
        .and_then(|v| v.as_str())
        .map(String::from)
}

fn error_of(outputs: &[Output]) -> Option<(String, String, Vec<String>)> {
    outputs.iter().find_map(|o| match o {
        Output::Error(e) => Some((e.ename.clone(), e.evalue.clone(), e.traceback.clone())),
        _ => None,
    })
}

fn status(report: &rnnlab_notebook::RunReport, index: usize) -> CellOutcome {
    report
        .cells
        .iter()
        .find(|c| c.index == index)
        .unwrap()
        .outcome
}

#[test]
fn fixtures_round_trip_byte_for_byte() {
    // The fixtures were written the way Jupyter writes notebooks, so reading and writing must change nothing.
    let dir = fixture("");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ipynb") {
            let text = std::fs::read_to_string(&path).unwrap();
            let nb = Notebook::read(&path).unwrap();
            assert_eq!(
                nb.to_json_string(),
                text,
                "{} changed on a round trip",
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count >= 8,
        "expected the fixture notebooks in {}",
        dir.display()
    );
}

#[test]
fn corrupt_and_old_notebooks_are_errors() {
    let dir = scratch_dir("corrupt");
    let garbage = dir.join("garbage.ipynb");
    std::fs::write(&garbage, "{ not json").unwrap();
    let err = run_notebook(&garbage, run_options(false)).unwrap_err();
    assert!(matches!(err, RunError::Notebook(_)), "{err}");
    let old = dir.join("v3.ipynb");
    std::fs::write(
        &old,
        r#"{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}"#,
    )
    .unwrap();
    let err = Notebook::read(&old).unwrap_err().to_string();
    assert!(err.contains("only nbformat 4"), "{err}");
    let missing = Notebook::read(dir.join("missing.ipynb"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing.ipynb"), "{missing}");
}

#[test]
fn passing_notebook_passes() {
    let report = test_notebook(fixture("passing.ipynb"), test_options()).unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
    // Execution counts are 1..n over the executed cells.
    let counts: Vec<u64> = report
        .run
        .notebook
        .code_cells()
        .filter_map(|(_, c)| c.execution_count)
        .collect();
    assert_eq!(counts, (1..=counts.len() as u64).collect::<Vec<_>>());
    let nb = &report.run.notebook;
    assert_eq!(plain(outputs(nb, 1)).as_deref(), Some("42"));
    assert_eq!(stream_text(outputs(nb, 2), "stdout"), "hello 43\n");
    assert_eq!(stream_text(outputs(nb, 3), "stderr"), "to stderr\n");
    // The tolerance case: the engine prints one more digit than stored.
    assert_eq!(stream_text(outputs(nb, 7), "stdout"), "[[0.024806721]]\n");
}

#[test]
fn changed_number_fails_at_that_cell() {
    let report = test_notebook(fixture("changed_number.ipynb"), test_options()).unwrap();
    let text = report.to_string();
    println!("{text}");
    assert!(!report.passed());
    assert_eq!(report.verdict(1), Some(Verdict::Passed));
    assert_eq!(report.verdict(2), Some(Verdict::Failed));
    let failure = report.failures().next().unwrap();
    let reason = failure.reason.as_deref().unwrap();
    assert!(
        reason.contains("0.04864951") && reason.contains("0.04864851"),
        "{reason}"
    );
    assert!(text.contains("cell 2:"), "{text}");
    assert!(
        failure
            .expected
            .iter()
            .any(|l| l.contains("c = 0.04864951")),
        "{:?}",
        failure.expected
    );
    assert!(
        failure.got.iter().any(|l| l.contains("c = 0.04864851")),
        "{:?}",
        failure.got
    );
}

#[test]
fn update_rewrites_stored_outputs() {
    let dir = scratch_dir("update");
    let path = dir.join("changed_number.ipynb");
    std::fs::copy(fixture("changed_number.ipynb"), &path).unwrap();
    let first = test_notebook(
        &path,
        TestOptions {
            update: true,
            ..test_options()
        },
    )
    .unwrap();
    assert!(!first.passed() && first.updated);
    let second = test_notebook(&path, test_options()).unwrap();
    assert!(second.passed(), "{second}");
    let nb = Notebook::read(&path).unwrap();
    assert_eq!(stream_text(outputs(&nb, 2), "stdout"), "c = 0.04864851\n");
    // Metadata survives the rewrite.
    assert_eq!(nb.metadata["kernelspec"]["name"], "rust");
}

#[test]
fn compile_error_is_rendered_against_the_cell() {
    let report = run_notebook(fixture("compile_error.ipynb"), run_options(true)).unwrap();
    println!("{report}");
    assert_eq!(status(&report, 2), CellOutcome::Executed(CellStatus::Error));
    let (ename, evalue, traceback) =
        error_of(outputs(&report.notebook, 2)).expect("an error output");
    assert_eq!(ename, "Error");
    assert_eq!(evalue, "mismatched types");
    let rendered = traceback.join("\n");
    println!("{rendered}");
    assert!(
        !rendered.contains('\u{1b}'),
        "no ANSI escapes: {rendered:?}"
    );
    assert!(
        rendered.starts_with(
            "error[E0308]: mismatched types\n --> cell:1:14\n  |\n1 | let z: i32 = \"nope\";\n  |              ^^^^^^ expected `i32`, found `&str`"
        ),
        "{rendered}"
    );
    // keep_going: the next cell ran, with the earlier variable intact.
    assert_eq!(plain(outputs(&report.notebook, 3)).as_deref(), Some("2"));

    // Without keep_going the run stops at the error and later cells have no outputs.
    let stopped = run_notebook(fixture("compile_error.ipynb"), run_options(false)).unwrap();
    assert_eq!(stopped.stopped_at, Some(2));
    assert_eq!(status(&stopped, 3), CellOutcome::NotRun);
    let last = stopped.notebook.cells[3].as_code().unwrap();
    assert!(last.outputs.is_empty() && last.execution_count.is_none());
    assert!(!stopped.ok());

    // As a test, an unmarked error cell fails.
    let tested = test_notebook(fixture("compile_error.ipynb"), test_options()).unwrap();
    assert_eq!(tested.verdict(2), Some(Verdict::Failed));
    assert!(
        tested
            .to_string()
            .contains("unexpected error: Error: mismatched types"),
        "{tested}"
    );
}

#[test]
fn panic_is_an_error_and_the_engine_survives() {
    let report = run_notebook(fixture("panic.ipynb"), run_options(true)).unwrap();
    println!("{report}");
    assert_eq!(status(&report, 2), CellOutcome::Executed(CellStatus::Panic));
    let cell = &report.cells.iter().find(|c| c.index == 2).unwrap();
    assert!(cell.variables_lost);
    let out = outputs(&report.notebook, 2);
    let (ename, evalue, _) = error_of(out).expect("an error output");
    assert_eq!((ename.as_str(), evalue.as_str()), ("Panic", "boom 7"));
    // The panic report and backtrace are not left in stderr.
    assert!(
        !stream_text(out, "stderr").contains("panicked at"),
        "{out:?}"
    );
    assert_eq!(plain(outputs(&report.notebook, 3)).as_deref(), Some("4"));
}

#[test]
fn endless_cell_is_stopped_by_the_timeout() {
    let options = RunOptions {
        timeout: Some(Duration::from_secs(6)),
        ..run_options(true)
    };
    let start = Instant::now();
    let report = run_notebook(fixture("timeout.ipynb"), options).unwrap();
    println!("{report}");
    assert_eq!(
        status(&report, 2),
        CellOutcome::Executed(CellStatus::Timeout)
    );
    let (ename, evalue, _) = error_of(outputs(&report.notebook, 2)).expect("an error output");
    assert_eq!(ename, "Timeout");
    assert!(evalue.contains("6 s"), "{evalue}");
    assert_eq!(plain(outputs(&report.notebook, 3)).as_deref(), Some("4"));
    let cell = report.cells.iter().find(|c| c.index == 2).unwrap();
    assert!(
        cell.duration < Duration::from_secs(30),
        "{:?}",
        cell.duration
    );
    assert!(start.elapsed() < Duration::from_secs(240));
}

#[test]
fn rich_output_keeps_every_mime_type() {
    let report = test_notebook(fixture("rich_output.ipynb"), test_options()).unwrap();
    println!("{report}");
    // The stored PNG bytes differ from the new ones on purpose: images are compared by mime type.
    assert!(report.passed(), "{report}");
    let nb = &report.run.notebook;
    let svg = outputs(nb, 1)[0].data().unwrap();
    assert_eq!(
        svg.get("image/svg+xml").and_then(|v| v.as_str()),
        Some("<svg/>")
    );
    assert!(!svg.contains_key("text/plain"));
    let multi = outputs(nb, 2)[0].data().unwrap();
    assert_eq!(
        multi.get("text/html").and_then(|v| v.as_str()),
        Some("<b>multi</b>")
    );
    assert_eq!(
        multi.get("text/plain").and_then(|v| v.as_str()),
        Some("multi as text")
    );
    assert!(outputs(nb, 3)[0].data().unwrap().contains_key("image/png"));
}

#[test]
fn dep_on_rnnlab_by_relative_path() {
    let report = test_notebook(fixture("dep_rnnlab.ipynb"), test_options()).unwrap();
    println!("{report}");
    for cell in &report.run.cells {
        println!(
            "cell {} took {:.1} s",
            cell.index,
            cell.duration.as_secs_f64()
        );
    }
    assert!(report.passed(), "{report}");
    let printed = stream_text(outputs(&report.run.notebook, 2), "stdout");
    assert!(printed.contains("[[[0.1 0.2]"), "{printed}");
    assert!(printed.contains("dtype=float32"), "{printed}");
    // Cells 4-6 build one model from layers made in different cells. Each cell links its own copy of rnnlab, so
    // these hold only because ids, names and the seeded generator live in process-wide state (rnnlab::process).
    assert_eq!(
        stream_text(outputs(&report.run.notebook, 4), "stdout"),
        "lstm\n"
    );
    assert_eq!(
        stream_text(outputs(&report.run.notebook, 5), "stdout"),
        "lstm_1\n"
    );
    assert_eq!(
        stream_text(outputs(&report.run.notebook, 6), "stdout"),
        "[\"input_layer\", \"lstm\", \"lstm_1\"]\nsame draw after reseeding: true\n"
    );
}

#[test]
fn markers_are_honoured() {
    let report = test_notebook(fixture("markers.ipynb"), test_options()).unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.verdict(1), Some(Verdict::Skipped));
    assert_eq!(report.verdict(2), Some(Verdict::Ignored));
    assert_eq!(report.verdict(3), Some(Verdict::Passed));
    assert_eq!(report.verdict(4), Some(Verdict::Passed));
    // The skipped cell was not run: its stored output is still there, and it took no execution count.
    let skipped = report.run.notebook.cells[1].as_code().unwrap();
    assert_eq!(
        stream_text(&skipped.outputs, "stdout"),
        "stored output of a skipped cell\n"
    );
    assert_eq!(
        report.run.notebook.cells[4]
            .as_code()
            .unwrap()
            .execution_count,
        Some(3)
    );

    // An expected error that does not happen is a failure.
    let dir = scratch_dir("raises");
    let path = dir.join("no_error.ipynb");
    let mut nb = Notebook::new_rust();
    nb.push_code("// NBVAL_RAISES_EXCEPTION\n1 + 1");
    nb.write(&path).unwrap();
    let report = test_notebook(&path, test_options()).unwrap();
    assert!(!report.passed());
    assert!(
        report.to_string().contains("NBVAL_RAISES_EXCEPTION"),
        "{report}"
    );
}

#[test]
fn engine_runs_commands_and_counts_executions() {
    let options = EngineOptions {
        runtime: runtime(),
        ..EngineOptions::default()
    };
    let mut engine = Engine::with_options(options).unwrap();
    println!("engine start: {:.1} s", engine.startup_time().as_secs_f64());
    let a = engine.execute("let greeting = \"hi\".to_string();");
    assert!(a.is_ok(), "{:?}", a.outputs);
    let b = engine.execute(":vars");
    assert!(b.is_ok(), "{:?}", b.outputs);
    assert!(
        b.result("text/plain")
            .unwrap_or_default()
            .contains("greeting"),
        "{:?}",
        b.outputs
    );
    let c = engine.execute("println!(\"{greeting} there\");\ngreeting.len()");
    assert_eq!(c.stdout(), "hi there\n");
    assert_eq!(c.result("text/plain").as_deref(), Some("2"));
    // An unknown command is an error, not a crash.
    let d = engine.execute(":no_such_command");
    assert_eq!(d.status, CellStatus::Error);
    assert_eq!(
        (
            a.execution_count,
            b.execution_count,
            c.execution_count,
            d.execution_count
        ),
        (1, 2, 3, 4)
    );
}
