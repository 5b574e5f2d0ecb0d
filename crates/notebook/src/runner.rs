//! Running whole notebooks (`rnnlab run`) and testing them against their stored outputs (`rnnlab test`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::compare::{compare_outputs, summarise_outputs, Tolerance};
use crate::engine::{CellStatus, Engine, EngineError, EngineOptions, Runtime};
use crate::nbformat::{Cell, CodeCell, Notebook, NotebookError};

/// Why a notebook could not be run at all (a failing cell is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The notebook could not be read or written.
    #[error(transparent)]
    Notebook(#[from] NotebookError),
    /// The engine did not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// nbval's comment markers, read from the comment lines at the top of a code cell (`// NBVAL_SKIP`), or from the
/// equivalent cell tags nbval also accepts (`nbval-skip`, `nbval-ignore-output`, `raises-exception`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Markers {
    /// `NBVAL_SKIP`: the cell is not executed; its stored outputs stay as they are.
    pub skip: bool,
    /// `NBVAL_IGNORE_OUTPUT`: executed (an unexpected error still fails), outputs not compared.
    pub ignore_output: bool,
    /// `NBVAL_RAISES_EXCEPTION`: the cell must fail (compile error, panic, timeout); a success is a failure.
    pub raises_exception: bool,
}

impl Markers {
    /// Reads the markers of a code cell. Only the leading `//` comment lines count (the first line in the usual
    /// case), so a marker mentioned later in a cell's code does not change how it is tested.
    pub fn of(cell: &CodeCell) -> Markers {
        let mut markers = Markers::default();
        for line in cell.source.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some(comment) = line.strip_prefix("//") else {
                break;
            };
            match comment.trim_start_matches('/').trim() {
                "NBVAL_SKIP" => markers.skip = true,
                "NBVAL_IGNORE_OUTPUT" => markers.ignore_output = true,
                "NBVAL_RAISES_EXCEPTION" => markers.raises_exception = true,
                _ => {}
            }
        }
        if let Some(tags) = cell.metadata.get("tags").and_then(|t| t.as_array()) {
            for tag in tags.iter().filter_map(|t| t.as_str()) {
                match tag {
                    "nbval-skip" => markers.skip = true,
                    "nbval-ignore-output" => markers.ignore_output = true,
                    "raises-exception" => markers.raises_exception = true,
                    _ => {}
                }
            }
        }
        markers
    }
}

/// How to run a notebook.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Per-cell timeout (see [`EngineOptions::timeout`]). Default 600 s, enough for a cold `:dep` compile.
    pub timeout: Option<Duration>,
    /// Keep executing after a cell fails unexpectedly. When false, the run stops at the first such cell and the
    /// later code cells are left without outputs, as after an interrupted run in Jupyter.
    pub keep_going: bool,
    /// Which binary evcxr uses as its runtime child.
    pub runtime: Runtime,
    /// evcxr's compiled-dependency cache size in MB (`:cache N`); `None` leaves it off.
    pub cache_mb: Option<u64>,
    /// The folder evcxr builds in; see [`EngineOptions::build_dir`]. Runs of several notebooks pass the same
    /// (locked) folder to each, so only the first compiles the `:dep` crates.
    pub build_dir: Option<PathBuf>,
    /// Extra evcxr commands run before the first cell.
    pub startup_commands: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: EngineOptions::default().timeout,
            keep_going: false,
            runtime: Runtime::CurrentExe,
            cache_mb: None,
            build_dir: None,
            startup_commands: Vec::new(),
        }
    }
}

/// What happened to one code cell in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellOutcome {
    /// Executed, with this status.
    Executed(CellStatus),
    /// Not executed because of `NBVAL_SKIP`.
    Skipped,
    /// Not executed because its source is blank (Jupyter's nbclient does not execute blank cells either).
    Blank,
    /// Not executed because the run stopped at an earlier failing cell.
    NotRun,
}

/// One code cell's part of a [`RunReport`].
#[derive(Debug, Clone)]
pub struct CellRun {
    /// The cell's position in the notebook's `cells` (markdown cells included), counted from 0.
    pub index: usize,
    /// What happened.
    pub outcome: CellOutcome,
    /// The cell's markers.
    pub markers: Markers,
    /// Why the cell counts as failed (an unexpected error, or a missing expected error); `None` if it did not.
    pub failure: Option<String>,
    /// True when the runtime restarted during this cell and the variables defined so far were lost.
    pub variables_lost: bool,
    /// Wall-clock time of the cell.
    pub duration: Duration,
}

/// The result of running a notebook: the executed notebook and what happened to each code cell.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The notebook's file, when it was run from one.
    pub path: Option<PathBuf>,
    /// The notebook with new outputs and execution counts (write it with [`Notebook::write`]).
    pub notebook: Notebook,
    /// One entry per code cell, in order.
    pub cells: Vec<CellRun>,
    /// Engine start-up time.
    pub startup: Duration,
    /// Total wall-clock time, start-up included.
    pub total: Duration,
    /// The index of the cell the run stopped at (`keep_going == false` and a cell failed unexpectedly).
    pub stopped_at: Option<usize>,
}

impl RunReport {
    /// True when no cell failed (unexpected error or missing expected error).
    pub fn ok(&self) -> bool {
        self.cells.iter().all(|c| c.failure.is_none())
    }

    /// The cells that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CellRun> {
        self.cells.iter().filter(|c| c.failure.is_some())
    }
}

impl fmt::Display for RunReport {
    /// One summary line, then one line per failed cell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .path
            .as_ref()
            .map_or_else(|| "notebook".to_string(), |p| p.display().to_string());
        let executed = self
            .cells
            .iter()
            .filter(|c| matches!(c.outcome, CellOutcome::Executed(_)))
            .count();
        let failed = self.failures().count();
        writeln!(
            f,
            "{name}: {} ({executed} cells executed, {failed} failed) in {:.1} s (engine start {:.1} s)",
            if failed == 0 { "ok" } else { "FAILED" },
            self.total.as_secs_f64(),
            self.startup.as_secs_f64()
        )?;
        for cell in self.failures() {
            writeln!(
                f,
                "  cell {}: {}",
                cell.index,
                cell.failure.as_deref().unwrap_or_default()
            )?;
        }
        if let Some(index) = self.stopped_at {
            writeln!(
                f,
                "  stopped at cell {index}: later cells were not run (use keep-going to run them)"
            )?;
        }
        Ok(())
    }
}

/// Reads and runs a notebook file with the file's folder as working directory. The file is not written; the
/// executed notebook is in the report.
pub fn run_notebook(path: impl AsRef<Path>, options: RunOptions) -> Result<RunReport, RunError> {
    let path = path.as_ref();
    let mut notebook = Notebook::read(path)?;
    let dir = notebook_dir(path);
    let mut report = run_notebook_in(&mut notebook, &dir, options)?;
    report.path = Some(path.to_owned());
    report.notebook = notebook;
    Ok(report)
}

/// The folder a notebook's relative paths are resolved against: its parent, made absolute.
fn notebook_dir(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
}

/// Runs every code cell of `notebook` in order in one fresh engine whose working directory is `dir`, writing new
/// outputs and execution counts into the notebook. The report's `notebook` is a copy of the result.
pub fn run_notebook_in(
    notebook: &mut Notebook,
    dir: &Path,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    let start = Instant::now();
    let engine_options = EngineOptions {
        runtime: options.runtime.clone(),
        working_dir: Some(dir.to_path_buf()),
        timeout: options.timeout,
        cache_mb: options.cache_mb,
        build_dir: options.build_dir.clone(),
        startup_commands: options.startup_commands.clone(),
        ..EngineOptions::default()
    };
    let mut engine = Engine::with_options(engine_options)?;
    let startup = engine.startup_time();
    let mut cells = Vec::new();
    let mut stopped_at = None;
    for (index, cell) in notebook.cells.iter_mut().enumerate() {
        let Cell::Code(code) = cell else { continue };
        let markers = Markers::of(code);
        let mut run = CellRun {
            index,
            outcome: CellOutcome::NotRun,
            markers,
            failure: None,
            variables_lost: false,
            duration: Duration::ZERO,
        };
        if stopped_at.is_some() {
            code.outputs.clear();
            code.execution_count = None;
        } else if markers.skip {
            run.outcome = CellOutcome::Skipped;
        } else if code.source.trim().is_empty() {
            run.outcome = CellOutcome::Blank;
            code.outputs.clear();
            code.execution_count = None;
        } else {
            let result = engine.execute(&code.source);
            code.outputs = result.outputs.clone();
            code.execution_count = Some(result.execution_count);
            run.outcome = CellOutcome::Executed(result.status);
            run.duration = result.duration;
            run.variables_lost = result.variables_lost;
            if result.status != CellStatus::Ok && !markers.raises_exception {
                let what = result
                    .error()
                    .map(|(ename, evalue)| {
                        format!("{ename}: {}", evalue.lines().next().unwrap_or_default())
                    })
                    .unwrap_or_else(|| format!("{:?}", result.status));
                run.failure = Some(format!("unexpected error: {what}"));
                if !options.keep_going {
                    stopped_at = Some(index);
                }
            } else if result.status == CellStatus::Ok && markers.raises_exception {
                run.failure = Some(
                    "NBVAL_RAISES_EXCEPTION: the cell was expected to fail but succeeded".into(),
                );
            }
        }
        cells.push(run);
    }
    Ok(RunReport {
        path: None,
        notebook: notebook.clone(),
        cells,
        startup,
        total: start.elapsed(),
        stopped_at,
    })
}

/// How to test a notebook.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// How to run it. Tests default to `keep_going: true`, so that one failing cell does not hide the others.
    pub run: RunOptions,
    /// Numeric tolerance for text outputs.
    pub tolerance: Tolerance,
    /// Write the new outputs into the notebook file (whether or not the test passed).
    pub update: bool,
    /// How many lines of expected and actual output a failure report shows.
    pub diff_lines: usize,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            run: RunOptions {
                keep_going: true,
                ..RunOptions::default()
            },
            tolerance: Tolerance::default(),
            update: false,
            diff_lines: 12,
        }
    }
}

/// The verdict on one code cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The outputs match (or the cell is blank).
    Passed,
    /// The outputs differ, the cell failed unexpectedly, an expected error did not happen, or it was not run.
    Failed,
    /// `NBVAL_SKIP`: not executed.
    Skipped,
    /// `NBVAL_IGNORE_OUTPUT`: executed without unexpected error; outputs not compared.
    Ignored,
}

/// One code cell's part of a [`TestReport`].
#[derive(Debug, Clone)]
pub struct CellTest {
    /// The cell's position in the notebook's `cells`, counted from 0.
    pub index: usize,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed (the first difference found).
    pub reason: Option<String>,
    /// The first lines of the stored outputs (filled for failures).
    pub expected: Vec<String>,
    /// The first lines of the new outputs (filled for failures).
    pub got: Vec<String>,
}

/// The result of testing a notebook.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// The notebook file.
    pub path: PathBuf,
    /// One entry per code cell, in order.
    pub cells: Vec<CellTest>,
    /// The run behind the test (its `notebook` holds the new outputs).
    pub run: RunReport,
    /// True when the notebook file was rewritten with the new outputs.
    pub updated: bool,
}

impl TestReport {
    /// True when no cell failed.
    pub fn passed(&self) -> bool {
        self.cells.iter().all(|c| c.verdict != Verdict::Failed)
    }

    /// The failed cells.
    pub fn failures(&self) -> impl Iterator<Item = &CellTest> {
        self.cells.iter().filter(|c| c.verdict == Verdict::Failed)
    }

    /// The verdict on the cell at `index` in the notebook's `cells`.
    pub fn verdict(&self, index: usize) -> Option<Verdict> {
        self.cells
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.verdict)
    }
}

impl fmt::Display for TestReport {
    /// The per-cell diff report: a summary line, then for each failed cell its reason and the first lines of
    /// the expected and actual outputs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |v: Verdict| self.cells.iter().filter(|c| c.verdict == v).count();
        writeln!(
            f,
            "{}: {} ({} passed, {} failed, {} skipped, {} output ignored) in {:.1} s{}",
            self.path.display(),
            if self.passed() { "ok" } else { "FAILED" },
            count(Verdict::Passed),
            count(Verdict::Failed),
            count(Verdict::Skipped),
            count(Verdict::Ignored),
            self.run.total.as_secs_f64(),
            if self.updated {
                ", outputs updated"
            } else {
                ""
            }
        )?;
        for cell in self.failures() {
            writeln!(
                f,
                "  cell {}: {}",
                cell.index,
                cell.reason.as_deref().unwrap_or("failed")
            )?;
            writeln!(f, "    expected:")?;
            for line in &cell.expected {
                writeln!(f, "      {line}")?;
            }
            writeln!(f, "    got:")?;
            for line in &cell.got {
                writeln!(f, "      {line}")?;
            }
        }
        Ok(())
    }
}

/// Executes a notebook file and compares every code cell's new outputs with its stored ones (rules in
/// [`crate::compare`]), honouring the nbval markers. With `update`, the file is rewritten with the new outputs.
pub fn test_notebook(path: impl AsRef<Path>, options: TestOptions) -> Result<TestReport, RunError> {
    let path = path.as_ref();
    let stored = Notebook::read(path)?;
    let mut notebook = stored.clone();
    let dir = notebook_dir(path);
    let mut run = run_notebook_in(&mut notebook, &dir, options.run.clone())?;
    run.path = Some(path.to_owned());
    let n = options.diff_lines;
    let mut cells = Vec::new();
    for cell_run in &run.cells {
        let expected = stored.cells[cell_run.index]
            .as_code()
            .map(|c| c.outputs.as_slice())
            .unwrap_or_default();
        let got = notebook.cells[cell_run.index]
            .as_code()
            .map(|c| c.outputs.as_slice())
            .unwrap_or_default();
        let (verdict, reason) = match cell_run.outcome {
            CellOutcome::Skipped => (Verdict::Skipped, None),
            CellOutcome::Blank => (Verdict::Passed, None),
            CellOutcome::NotRun => (
                Verdict::Failed,
                Some("not executed: the run stopped at an earlier failing cell".into()),
            ),
            CellOutcome::Executed(_) => {
                if let Some(failure) = &cell_run.failure {
                    (Verdict::Failed, Some(failure.clone()))
                } else if cell_run.markers.ignore_output {
                    (Verdict::Ignored, None)
                } else {
                    match compare_outputs(expected, got, options.tolerance) {
                        None => (Verdict::Passed, None),
                        Some(reason) => (Verdict::Failed, Some(reason)),
                    }
                }
            }
        };
        let (expected_lines, got_lines) = if verdict == Verdict::Failed {
            (summarise_outputs(expected, n), summarise_outputs(got, n))
        } else {
            (Vec::new(), Vec::new())
        };
        cells.push(CellTest {
            index: cell_run.index,
            verdict,
            reason,
            expected: expected_lines,
            got: got_lines,
        });
    }
    let mut updated = false;
    if options.update {
        notebook.write(path)?;
        updated = true;
    }
    run.notebook = notebook;
    Ok(TestReport {
        path: path.to_owned(),
        cells,
        run,
        updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(source: &str) -> CodeCell {
        let mut nb = Notebook::new_rust();
        nb.push_code(source).clone()
    }

    #[test]
    fn markers_from_leading_comments_and_tags() {
        assert!(Markers::of(&code("// NBVAL_SKIP\nloop {}")).skip);
        assert!(Markers::of(&code("//NBVAL_IGNORE_OUTPUT\n1")).ignore_output);
        let both = Markers::of(&code(
            "// NBVAL_IGNORE_OUTPUT\n// NBVAL_RAISES_EXCEPTION\npanic!()",
        ));
        assert!(both.ignore_output && both.raises_exception);
        assert_eq!(
            Markers::of(&code("let x = 1;\n// NBVAL_SKIP")),
            Markers::default()
        );
        let mut tagged = code("1");
        tagged
            .metadata
            .insert("tags".into(), serde_json::json!(["raises-exception"]));
        assert!(Markers::of(&tagged).raises_exception);
    }
}
