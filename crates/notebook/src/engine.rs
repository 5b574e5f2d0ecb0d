//! The execution engine: one evcxr context that runs cells and returns what Jupyter would store.
//!
//! How it is put together, and why:
//! - The `evcxr::CommandContext` lives on a worker thread. The calling thread meanwhile drains evcxr's stdout
//!   and stderr channels (evcxr blocks at the end of every cell until its stdout channel is empty, so an
//!   undrained channel hangs the engine) and watches the clock: when a cell runs past its timeout, it kills the
//!   runtime child through `process_handle()`; evcxr then reports `SubprocessTerminated` and starts a fresh
//!   child, so the engine survives with its items but without its variables.
//! - Each `execute` call is wrapped in `catch_unwind` on the worker: a panic inside evcxr itself becomes an
//!   error output, and the engine starts a new context for the next cell.
//! - `:preserve_vars_on_panic 0` is set at start (unless asked otherwise), so a panicking cell aborts the child
//!   and fails instead of reporting success; the panic message is taken out of stderr into an `error` output.
//! - evcxr resolves relative `:dep` paths (and finds `evcxr.toml`) against the process's current directory.
//!   The working directory is process-wide, so the engine changes it only while evcxr is working and holds a
//!   process-wide lock meanwhile; the runtime child gets the folder as its own directory, so user code that
//!   opens relative paths sees the notebook's folder, as in Jupyter.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, unbounded, Receiver, Sender};
use serde_json::Value;

use crate::nbformat::{ExecuteResult, JsonMap, Output};
use crate::render::render_compilation_error;

/// Which binary evcxr re-launches as its runtime child (the process that loads and runs each compiled cell).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Runtime {
    /// The running executable itself, as `evcxr::EvalContext::new` does. Its `main` must call
    /// [`runtime_hook`](crate::runtime_hook) first (the `rnnlab` CLI does).
    #[default]
    CurrentExe,
    /// Another executable whose `main` calls `runtime_hook` first; tests use the `rnnlab-nb-runtime` binary of
    /// this crate, because a libtest harness cannot serve as the runtime.
    Binary(PathBuf),
}

/// How an [`Engine`] is started and how it runs cells.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The runtime child; see [`Runtime`].
    pub runtime: Runtime,
    /// The folder relative paths are resolved against (`:dep` paths, `evcxr.toml`, files opened by cells).
    /// `None` keeps the process's current directory.
    pub working_dir: Option<PathBuf>,
    /// Per-cell wall-clock limit, counted from when evcxr starts on the cell (compiling included, because the
    /// compile phase cannot be interrupted, the child is killed as soon as the limit passes and the cell fails
    /// once evcxr returns). `None`: no limit.
    pub timeout: Option<Duration>,
    /// Keep variables after a panic (evcxr's default, `:preserve_vars_on_panic 1`). The engine's default is
    /// `false`: the child aborts, the cell reliably fails, and all variables are lost.
    pub preserve_vars_on_panic: bool,
    /// Turn on evcxr's compiled-dependency cache (`:cache N`, in megabytes, stored in the user's cache folder,
    /// `$XDG_CACHE_HOME/evcxr`), so that registry crates pulled in by `:dep` are compiled once per machine.
    pub cache_mb: Option<u64>,
    /// The folder evcxr builds in (its `EVCXR_TMPDIR`). `None`: a fresh temporary folder, removed afterwards.
    /// A folder an earlier engine used keeps its compiled `:dep` crates, so the next engine starts warm; it must
    /// not be used by two engines at once — take one with [`BuildDir::acquire`](crate::BuildDir::acquire).
    pub build_dir: Option<PathBuf>,
    /// Extra evcxr commands or code run once at start, after the engine's own settings (for example `":opt 1"`).
    pub startup_commands: Vec<String>,
    /// How long to wait for evcxr after a timed-out cell's child was killed (it may be in the middle of an
    /// uninterruptible compile) before giving up on the whole context and starting a new one.
    pub abandon_after: Duration,
    /// After a cell finishes, how long stderr must stay quiet before the cell's output is considered complete
    /// (the child's stderr has no end-of-cell marker).
    pub stream_grace: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            runtime: Runtime::CurrentExe,
            working_dir: None,
            timeout: Some(Duration::from_secs(600)),
            preserve_vars_on_panic: false,
            cache_mb: None,
            build_dir: None,
            startup_commands: Vec::new(),
            abandon_after: Duration::from_secs(300),
            stream_grace: Duration::from_millis(30),
        }
    }
}

/// How a cell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellStatus {
    /// It compiled and ran.
    Ok,
    /// It failed to compile, or evcxr reported another error (bad `:dep`, lost variables, internal error).
    Error,
    /// It ran past the timeout and its child process was killed.
    Timeout,
    /// The cell's code panicked.
    Panic,
}

/// What executing one cell produced.
#[derive(Debug, Clone)]
pub struct CellResult {
    /// The execution count this cell got (1 for the first executed cell, then 2, 3, ...).
    pub execution_count: u64,
    /// The outputs to store in the notebook, in Jupyter's order: streams, then the result or the error(s).
    pub outputs: Vec<Output>,
    /// How the cell ended.
    pub status: CellStatus,
    /// Wall-clock time of the cell, compiling included.
    pub duration: Duration,
    /// True when the runtime child was restarted during this cell, so every variable defined so far is gone
    /// (items such as `fn` and `struct` definitions survive).
    pub variables_lost: bool,
    /// evcxr's own timing of the cell's phases (`Fallback`, `Final compile`, `Execution`, ...).
    pub phases: Vec<(String, Duration)>,
}

impl CellResult {
    /// True for [`CellStatus::Ok`].
    pub fn is_ok(&self) -> bool {
        self.status == CellStatus::Ok
    }

    /// All stdout text of the cell, joined (handy in tests and REPLs).
    pub fn stdout(&self) -> String {
        self.stream("stdout")
    }

    /// All stderr text of the cell, joined.
    pub fn stderr(&self) -> String {
        self.stream("stderr")
    }

    fn stream(&self, name: &str) -> String {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Stream(s) if s.name == name => Some(s.text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The result's value for a mime type (`text/plain`, `image/svg+xml`, ...), if the cell produced one.
    pub fn result(&self, mime: &str) -> Option<String> {
        self.outputs
            .iter()
            .find_map(|o| o.data().and_then(|d| crate::nbformat::mime_text(d, mime)))
    }

    /// The first `error` output as `(ename, evalue)`.
    pub fn error(&self) -> Option<(&str, &str)> {
        self.outputs.iter().find_map(|o| match o {
            Output::Error(e) => Some((e.ename.as_str(), e.evalue.as_str())),
            _ => None,
        })
    }
}

/// Why an engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// evcxr could not create its context (no `cargo`, no linker, the runtime binary missing or not calling
    /// `runtime_hook`, the working folder missing, ...). The message includes what the child printed.
    #[error("the evcxr engine did not start: {0}")]
    Start(String),
    /// One of the start-up commands failed.
    #[error("start-up command `{command}` failed: {message}")]
    Startup {
        /// The command.
        command: String,
        /// The error it produced.
        message: String,
    },
}

/// A running evcxr context that executes cells one after the other, sharing variables and items between them as
/// a Jupyter kernel does.
pub struct Engine {
    options: EngineOptions,
    worker: Option<Worker>,
    execution_count: u64,
    startup_time: Duration,
}

/// The worker thread's side of the engine: a channel to send cell sources, a channel for its events, and the
/// context's output channels and child handle.
struct Worker {
    jobs: Sender<Job>,
    events: Receiver<Event>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    process: Arc<Mutex<Child>>,
    /// Joined on drop, so that the context (its child process and temporary folder) is cleaned up before the
    /// engine is gone; `None` once the worker has been abandoned.
    thread: Option<thread::JoinHandle<()>>,
}

impl Worker {
    /// Lets a worker stuck in evcxr finish on its own: dropping it will not wait for the thread.
    fn detach(mut self) {
        self.thread = None;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job channel ends the worker's loop; it then drops the context.
        let (closed, _) = unbounded();
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the engine asks the worker thread to do.
enum Job {
    /// Execute a cell (reported through `Event`s).
    Execute(String),
    /// rust-analyzer's completions at a byte offset of `src`.
    Complete {
        src: String,
        pos: usize,
        reply: Sender<Option<Completions>>,
    },
    /// The variables defined so far and their types.
    Variables {
        reply: Sender<Vec<(String, String)>>,
    },
}

/// Completion candidates for a piece of code: replace `src[start..end]` with one of `candidates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    /// Byte offset where the replaced text starts.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
    /// The texts to insert.
    pub candidates: Vec<String>,
}

/// What the worker reports about a job.
enum Event {
    /// The worker holds the working-directory lock and has handed the cell to evcxr: the timeout starts now.
    Started,
    /// evcxr returned.
    Done(Outcome),
}

/// evcxr's answer, converted on the worker thread into plain data.
enum Outcome {
    Ok {
        data: Vec<(String, String)>,
        timing: Option<Duration>,
        phases: Vec<(String, Duration)>,
    },
    CompileErrors(Vec<(String, String)>),
    Terminated(String),
    OtherError(String),
    InternalPanic(String),
    /// The caller stopped waiting (see `EngineOptions::abandon_after`).
    Abandoned,
}

/// The channels and child handle the worker hands over once the context exists.
struct Ready {
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    process: Arc<Mutex<Child>>,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Everything the caller saw while a job ran.
struct JobResult {
    outcome: Outcome,
    lines: Vec<(Stream, String)>,
    timed_out: bool,
}

impl Engine {
    /// Starts an engine with default options: the current executable as runtime (its `main` must call
    /// [`runtime_hook`](crate::runtime_hook) first), the current directory, a 600 s cell timeout.
    pub fn new() -> Result<Engine, EngineError> {
        Engine::with_options(EngineOptions::default())
    }

    /// Starts an engine: creates the evcxr context (which spawns the runtime child and compiles a first
    /// expression, a few seconds with an optimised build) and runs the start-up commands.
    pub fn with_options(options: EngineOptions) -> Result<Engine, EngineError> {
        let start = Instant::now();
        let mut engine = Engine {
            options,
            worker: None,
            execution_count: 0,
            startup_time: Duration::ZERO,
        };
        engine.start_worker()?;
        engine.startup_time = start.elapsed();
        Ok(engine)
    }

    /// How long starting took (context creation plus start-up commands).
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// The options the engine runs with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Changes the per-cell timeout for the following cells.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.options.timeout = timeout;
    }

    /// The execution count the last executed cell got (0 before the first).
    pub fn execution_count(&self) -> u64 {
        self.execution_count
    }

    fn start_worker(&mut self) -> Result<(), EngineError> {
        let (ready_tx, ready_rx) = unbounded::<Result<Ready, String>>();
        let (jobs_tx, jobs_rx) = unbounded::<Job>();
        let (events_tx, events_rx) = unbounded::<Event>();
        let program = match &self.options.runtime {
            Runtime::CurrentExe => std::env::current_exe().map_err(|e| {
                EngineError::Start(format!("cannot find the current executable: {e}"))
            })?,
            Runtime::Binary(path) => path.clone(),
        };
        if !program.exists() {
            return Err(EngineError::Start(format!(
                "the runtime binary {} does not exist",
                program.display()
            )));
        }
        let working_dir = self.options.working_dir.clone();
        let build_dir = self.options.build_dir.clone();
        if let Some(dir) = &build_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Start(format!(
                    "cannot create the build folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let thread = thread::Builder::new()
            .name("rnnlab-notebook-engine".into())
            .spawn(move || {
                worker_main(
                    program,
                    working_dir,
                    build_dir,
                    ready_tx,
                    jobs_rx,
                    events_tx,
                )
            })
            .map_err(|e| EngineError::Start(format!("cannot start the engine thread: {e}")))?;
        let ready = ready_rx
            .recv()
            .map_err(|_| EngineError::Start("the engine thread ended while starting".into()))?
            .map_err(EngineError::Start)?;
        self.worker = Some(Worker {
            jobs: jobs_tx,
            events: events_rx,
            stdout: ready.stdout,
            stderr: ready.stderr,
            process: ready.process,
            thread: Some(thread),
        });
        let mut commands = vec![format!(
            ":preserve_vars_on_panic {}",
            if self.options.preserve_vars_on_panic {
                1
            } else {
                0
            }
        )];
        if let Some(mb) = self.options.cache_mb {
            commands.push(format!(":cache {mb}"));
        }
        commands.extend(self.options.startup_commands.iter().cloned());
        for command in commands {
            let job = self.run_job(&command, self.options.timeout);
            let failure = match job.outcome {
                Outcome::Ok { .. } => None,
                Outcome::CompileErrors(errors) => Some(
                    errors
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Outcome::Terminated(m) | Outcome::OtherError(m) | Outcome::InternalPanic(m) => {
                    Some(m)
                }
                Outcome::Abandoned => Some("no answer from evcxr".into()),
            };
            if let Some(message) = failure {
                self.worker = None;
                return Err(EngineError::Startup { command, message });
            }
        }
        Ok(())
    }

    /// Executes one cell: Rust code and/or evcxr `:` commands, exactly as a Jupyter cell with the evcxr kernel.
    /// Never panics and never hangs past the timeout (plus `abandon_after` when evcxr is stuck compiling):
    /// failures are reported in the result's status and outputs.
    pub fn execute(&mut self, source: &str) -> CellResult {
        let start = Instant::now();
        self.execution_count += 1;
        let execution_count = self.execution_count;
        let mut restarted_engine = false;
        if self.worker.is_none() {
            // A previous cell crashed evcxr itself or had to be abandoned: start over with a fresh context.
            restarted_engine = true;
            if let Err(error) = self.start_worker() {
                return CellResult {
                    execution_count,
                    outputs: vec![Output::error(
                        "Error",
                        error.to_string(),
                        vec![error.to_string()],
                    )],
                    status: CellStatus::Error,
                    duration: start.elapsed(),
                    variables_lost: true,
                    phases: Vec::new(),
                };
            }
        }
        let timeout = self.options.timeout;
        let job = self.run_job(source, timeout);
        let mut lines = job.lines;
        let panic = extract_panic(&mut lines);
        let mut outputs = stream_outputs(&lines);
        let mut phases = Vec::new();
        let lost_note = "note: the runtime process was restarted: variables defined so far are lost (items such as fn and struct definitions remain)";

        let (status, variables_lost) = if job.timed_out {
            let limit = format_duration(timeout.unwrap_or_default());
            let evalue = format!("the cell did not finish within {limit} and was stopped");
            outputs.push(Output::error(
                "Timeout",
                evalue.clone(),
                vec![format!("Timeout: {evalue}"), lost_note.into()],
            ));
            if matches!(
                job.outcome,
                Outcome::Ok { .. } | Outcome::CompileErrors(_) | Outcome::OtherError(_)
            ) {
                // The kill raced with the end of the cell: evcxr has not noticed the dead child yet, so restart
                // it now rather than failing the next cell.
                let _ = self.run_job(":restart", None);
            }
            if matches!(job.outcome, Outcome::Abandoned | Outcome::InternalPanic(_)) {
                self.worker = None;
            }
            (CellStatus::Timeout, true)
        } else {
            match job.outcome {
                Outcome::Ok {
                    data,
                    timing,
                    phases: p,
                } => {
                    phases = p;
                    if !data.is_empty() {
                        outputs.push(execute_result(&data, execution_count));
                    }
                    if let Some(timing) = timing {
                        // What evcxr_jupyter shows after `:timing`.
                        let html = format!(
                            "<span style=\"color: rgba(0,0,0,0.4);\">Took {}ms</span>",
                            timing.as_millis()
                        );
                        outputs.push(execute_result(
                            &[("text/html".into(), html)],
                            execution_count,
                        ));
                    }
                    match panic {
                        // Only with `preserve_vars_on_panic`: evcxr caught the panic and reported success.
                        Some(message) => {
                            outputs.push(panic_output(&message, None));
                            (CellStatus::Panic, false)
                        }
                        None => (CellStatus::Ok, false),
                    }
                }
                Outcome::CompileErrors(errors) => {
                    for (message, rendered) in errors {
                        outputs.push(Output::error(
                            "Error",
                            message,
                            rendered.lines().map(String::from).collect(),
                        ));
                    }
                    (CellStatus::Error, false)
                }
                Outcome::Terminated(message) => match panic {
                    Some(panic_message) => {
                        outputs.push(panic_output(&panic_message, Some(lost_note)));
                        (CellStatus::Panic, true)
                    }
                    None => {
                        let message = message.trim().to_string();
                        let mut traceback: Vec<String> =
                            message.lines().map(String::from).collect();
                        traceback.push(lost_note.into());
                        outputs.push(Output::error("Error", message, traceback));
                        (CellStatus::Error, true)
                    }
                },
                Outcome::OtherError(message) => {
                    outputs.push(Output::error(
                        "Error",
                        message.clone(),
                        message.lines().map(String::from).collect(),
                    ));
                    (CellStatus::Error, false)
                }
                Outcome::InternalPanic(message) => {
                    self.worker = None;
                    let evalue = format!("evcxr failed internally: {message}");
                    let traceback = vec![
                        evalue.clone(),
                        "note: the engine starts a new evcxr context for the next cell: variables and items are lost".into(),
                    ];
                    outputs.push(Output::error("InternalError", evalue, traceback));
                    (CellStatus::Error, true)
                }
                Outcome::Abandoned => unreachable!("only a timed-out job is abandoned"),
            }
        };
        CellResult {
            execution_count,
            outputs,
            status,
            duration: start.elapsed(),
            variables_lost: variables_lost || restarted_engine,
            phases,
        }
    }

    /// Completions at byte offset `pos` of `src` (code or a `:` command), as evcxr's kernel offers them in
    /// Jupyter: names in scope, methods of the value before a dot where rust-analyzer can infer its type, command
    /// names. `None` when there is no answer within `wait` (rust-analyzer can be slow on a first query) or the
    /// engine is not running.
    pub fn completions(&mut self, src: &str, pos: usize, wait: Duration) -> Option<Completions> {
        let worker = self.worker.as_ref()?;
        let (reply, answer) = unbounded();
        worker
            .jobs
            .send(Job::Complete {
                src: src.to_owned(),
                pos,
                reply,
            })
            .ok()?;
        answer.recv_timeout(wait).ok().flatten()
    }

    /// The variables defined so far with their types, sorted by name (evcxr's `:vars`).
    pub fn variables(&mut self) -> Vec<(String, String)> {
        let Some(worker) = self.worker.as_ref() else {
            return Vec::new();
        };
        let (reply, answer) = unbounded();
        if worker.jobs.send(Job::Variables { reply }).is_err() {
            return Vec::new();
        }
        answer
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default()
    }

    /// Sends one job to the worker and collects its stdout/stderr lines until it is done, killing the child when
    /// the timeout passes.
    fn run_job(&mut self, source: &str, timeout: Option<Duration>) -> JobResult {
        let Some(worker) = self.worker.as_mut() else {
            return JobResult {
                outcome: Outcome::InternalPanic("the engine is not running".into()),
                lines: Vec::new(),
                timed_out: false,
            };
        };
        let grace = self.options.stream_grace;
        let abandon_after = self.options.abandon_after;
        let mut lines = Vec::new();
        // Lines that arrived between cells (for example from a thread a previous cell started) belong to no cell
        // in particular; like Jupyter, show them with the cell that is running now.
        drain_ready(worker, &mut lines);
        if worker.jobs.send(Job::Execute(source.to_owned())).is_err() {
            self.worker = None;
            return JobResult {
                outcome: Outcome::InternalPanic("the engine thread has stopped".into()),
                lines,
                timed_out: false,
            };
        }
        let mut started: Option<Instant> = None;
        let mut killed_at: Option<Instant> = None;
        let outcome = loop {
            let deadline = match (killed_at, started, timeout) {
                (Some(killed), _, _) => Some(killed + abandon_after),
                (None, Some(started), Some(limit)) => Some(started + limit),
                _ => None,
            };
            let wait = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            select! {
                recv(worker.stdout) -> line => match line {
                    Ok(line) => lines.push((Stream::Stdout, line)),
                    Err(_) => worker.stdout = never(),
                },
                recv(worker.stderr) -> line => match line {
                    Ok(line) => lines.push((Stream::Stderr, line)),
                    Err(_) => worker.stderr = never(),
                },
                recv(worker.events) -> event => match event {
                    Ok(Event::Started) => started = Some(Instant::now()),
                    Ok(Event::Done(outcome)) => break outcome,
                    Err(_) => break Outcome::InternalPanic("the engine thread stopped unexpectedly".into()),
                },
                default(wait) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        if killed_at.is_some() {
                            break Outcome::Abandoned;
                        }
                        // The handle survives evcxr's restarts; `try_lock` because evcxr may hold it while it
                        // reaps a child that is exiting anyway.
                        match worker.process.try_lock() {
                            Ok(mut child) => {
                                let _ = child.kill();
                                killed_at = Some(Instant::now());
                            }
                            Err(_) => thread::sleep(Duration::from_millis(10)),
                        }
                    }
                },
            }
        };
        if matches!(outcome, Outcome::Abandoned) {
            // The worker thread finishes on its own once evcxr returns, then drops its context.
            if let Some(worker) = self.worker.take() {
                worker.detach();
            }
            return JobResult {
                outcome,
                lines,
                timed_out: true,
            };
        }
        // The child's stderr has no end-of-cell marker: wait until both streams have been quiet for a moment.
        loop {
            select! {
                recv(worker.stdout) -> line => match line {
                    Ok(line) => lines.push((Stream::Stdout, line)),
                    Err(_) => worker.stdout = never(),
                },
                recv(worker.stderr) -> line => match line {
                    Ok(line) => lines.push((Stream::Stderr, line)),
                    Err(_) => worker.stderr = never(),
                },
                default(grace) => break,
            }
        }
        JobResult {
            outcome,
            lines,
            timed_out: killed_at.is_some(),
        }
    }
}

impl Drop for Engine {
    /// Dropping the job channel ends the worker thread, which drops the evcxr context (closing the child's stdin
    /// ends the child, and evcxr deletes its temporary folder).
    fn drop(&mut self) {
        self.worker = None;
    }
}

/// Moves the lines already waiting in the output channels into `lines`.
fn drain_ready(worker: &Worker, lines: &mut Vec<(Stream, String)>) {
    while let Ok(line) = worker.stdout.try_recv() {
        lines.push((Stream::Stdout, line));
    }
    while let Ok(line) = worker.stderr.try_recv() {
        lines.push((Stream::Stderr, line));
    }
}

/// The process-wide lock held while the current directory is switched to an engine's working folder.
static CWD_LOCK: Mutex<()> = Mutex::new(());

/// Switches the process's current directory for as long as it lives (and holds [`CWD_LOCK`] meanwhile).
struct CwdGuard {
    previous: Option<PathBuf>,
    _lock: Option<MutexGuard<'static, ()>>,
}

impl CwdGuard {
    fn enter(dir: Option<&Path>) -> Result<CwdGuard, String> {
        let Some(dir) = dir else {
            return Ok(CwdGuard {
                previous: None,
                _lock: None,
            });
        };
        // A poisoned lock only means another engine panicked while holding it; the directory is restored by
        // that guard's drop, so carry on.
        let lock = CWD_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = std::env::current_dir().ok();
        std::env::set_current_dir(dir)
            .map_err(|e| format!("cannot enter the working folder {}: {e}", dir.display()))?;
        Ok(CwdGuard {
            previous,
            _lock: Some(lock),
        })
    }
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            let _ = std::env::set_current_dir(previous);
        }
    }
}

/// Serialises engines' use of `EVCXR_TMPDIR` (evcxr reads its build folder from the environment only).
static TMPDIR_LOCK: Mutex<()> = Mutex::new(());

/// Runs `create` with `EVCXR_TMPDIR` set to `dir` (when given), restoring the variable afterwards. evcxr reads it
/// once, while the context is created.
fn with_evcxr_tmpdir<T>(dir: Option<&Path>, create: impl FnOnce() -> T) -> T {
    let Some(dir) = dir else { return create() };
    let _lock = TMPDIR_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = std::env::var_os("EVCXR_TMPDIR");
    // SAFETY-by-convention: the engine's threads read the environment only here, under the same lock.
    std::env::set_var("EVCXR_TMPDIR", dir);
    let created = create();
    match previous {
        Some(value) => std::env::set_var("EVCXR_TMPDIR", value),
        None => std::env::remove_var("EVCXR_TMPDIR"),
    }
    created
}

/// The worker thread: creates the context, then executes jobs until the job channel closes or evcxr panics.
fn worker_main(
    program: PathBuf,
    working_dir: Option<PathBuf>,
    build_dir: Option<PathBuf>,
    ready: Sender<Result<Ready, String>>,
    jobs: Receiver<Job>,
    events: Sender<Event>,
) {
    let created = {
        let guard = CwdGuard::enter(working_dir.as_deref());
        match guard {
            Err(message) => Ok(Err(message)),
            Ok(_guard) => catch_unwind(AssertUnwindSafe(|| {
                let mut command = Command::new(&program);
                if let Some(dir) = &working_dir {
                    command.current_dir(dir);
                }
                with_evcxr_tmpdir(build_dir.as_deref(), || {
                    evcxr::EvalContext::with_subprocess_command(command)
                })
                .map_err(|e| e.to_string())
            })),
        }
    };
    let (eval_context, outputs) = match created {
        Ok(Ok(created)) => created,
        Ok(Err(message)) => {
            let _ = ready.send(Err(message));
            return;
        }
        Err(payload) => {
            let _ = ready.send(Err(format!(
                "evcxr panicked: {}",
                panic_payload_message(&*payload)
            )));
            return;
        }
    };
    let process = eval_context.process_handle();
    let mut context = evcxr::CommandContext::with_eval_context(eval_context);
    if ready
        .send(Ok(Ready {
            stdout: outputs.stdout,
            stderr: outputs.stderr,
            process,
        }))
        .is_err()
    {
        return;
    }
    for job in jobs {
        let source = match job {
            Job::Execute(source) => source,
            Job::Complete { src, pos, reply } => {
                // Queries run between cells, so nothing else is waiting on the context; a panic inside
                // rust-analyzer only loses this answer.
                let answer = catch_unwind(AssertUnwindSafe(|| context.completions(&src, pos)))
                    .ok()
                    .and_then(Result::ok)
                    .map(|c| Completions {
                        start: c.start_offset,
                        end: c.end_offset,
                        candidates: c.completions.into_iter().map(|c| c.code).collect(),
                    });
                let _ = reply.send(answer);
                continue;
            }
            Job::Variables { reply } => {
                let mut vars: Vec<(String, String)> = context
                    .variables_and_types()
                    .map(|(n, t)| (n.to_string(), t.to_string()))
                    .collect();
                vars.sort();
                let _ = reply.send(vars);
                continue;
            }
        };
        let result = match CwdGuard::enter(working_dir.as_deref()) {
            Err(message) => Ok(Err(evcxr::Error::Message(message))),
            Ok(_guard) => {
                let _ = events.send(Event::Started);
                catch_unwind(AssertUnwindSafe(|| context.execute(&source)))
            }
        };
        let (outcome, fatal) = match result {
            Ok(result) => (convert(result, &source), false),
            Err(payload) => (
                Outcome::InternalPanic(panic_payload_message(&*payload)),
                true,
            ),
        };
        if events.send(Event::Done(outcome)).is_err() || fatal {
            break;
        }
    }
}

/// Converts evcxr's result into plain data, rendering compile errors against the cell's source.
fn convert(result: Result<evcxr::EvalOutputs, evcxr::Error>, source: &str) -> Outcome {
    match result {
        Ok(outputs) => {
            let mut data: Vec<(String, String)> =
                outputs.content_by_mime_type.into_iter().collect();
            data.sort();
            let phases = outputs
                .phases
                .iter()
                .map(|p| (p.name.clone(), p.duration))
                .collect();
            Outcome::Ok {
                data,
                timing: outputs.timing,
                phases,
            }
        }
        Err(evcxr::Error::CompilationErrors(errors)) => {
            // Warnings come along with errors; show them only when there is nothing else to show.
            let has_errors = errors
                .iter()
                .any(|e| e.level() == "error" || e.level().is_empty());
            let rendered = errors
                .iter()
                .filter(|e| !has_errors || e.level() == "error" || e.level().is_empty())
                .map(|e| (e.message(), render_compilation_error(e, source, "cell")))
                .collect();
            Outcome::CompileErrors(rendered)
        }
        Err(evcxr::Error::SubprocessTerminated(message)) => Outcome::Terminated(message),
        Err(other) => Outcome::OtherError(other.to_string()),
    }
}

fn panic_payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Finds panic reports in the stderr lines, removes them (with their backtraces) and returns the first panic's
/// message. The report's location points into evcxr's generated code and its backtrace at addresses, neither of
/// which means anything to the notebook's reader or stays the same between runs.
fn extract_panic(lines: &mut Vec<(Stream, String)>) -> Option<String> {
    let mut message: Option<String> = None;
    let mut kept = Vec::with_capacity(lines.len());
    let mut i = 0;
    let is_header = |l: &str| l.starts_with("thread '") && l.contains(" panicked at ");
    while i < lines.len() {
        let (stream, line) = &lines[i];
        if *stream == Stream::Stderr && is_header(line) {
            // The header: `thread '<unnamed>' (123) panicked at src/lib.rs:10:5:`; the message follows on its
            // own lines (Rust 1.73+). Older compilers put `'message', location` on the header line itself.
            let mut text = Vec::new();
            if let Some(rest) = line.split(" panicked at '").nth(1) {
                text.push(rest.rsplit_once("', ").map_or(rest, |(m, _)| m).to_string());
            }
            i += 1;
            while i < lines.len() {
                let (stream, next) = &lines[i];
                if *stream != Stream::Stderr {
                    kept.push(lines[i].clone());
                    i += 1;
                    continue;
                }
                if next == "stack backtrace:" || next.starts_with("note: ") || is_header(next) {
                    break;
                }
                text.push(next.clone());
                i += 1;
            }
            // The backtrace: indented frame lines, then a `note:` line.
            while i < lines.len() {
                let (stream, next) = &lines[i];
                if *stream == Stream::Stderr
                    && (next == "stack backtrace:"
                        || next.starts_with(' ')
                        || next.starts_with("note: "))
                {
                    i += 1;
                } else {
                    break;
                }
            }
            if message.is_none() {
                message = Some(text.join("\n"));
            }
            continue;
        }
        if *stream == Stream::Stderr
            && message.is_some()
            && line.starts_with("thread caused non-unwinding panic")
        {
            i += 1;
            continue;
        }
        kept.push(lines[i].clone());
        i += 1;
    }
    if message.is_some() {
        *lines = kept;
    }
    message
}

fn panic_output(message: &str, note: Option<&str>) -> Output {
    let mut traceback = vec!["Panic: the cell panicked:".to_string()];
    traceback.extend(message.lines().map(|l| format!("  {l}")));
    if let Some(note) = note {
        traceback.push(note.to_string());
    }
    Output::error("Panic", message, traceback)
}

/// Joins consecutive lines of the same stream into one `stream` output each, as Jupyter's front end shows them.
fn stream_outputs(lines: &[(Stream, String)]) -> Vec<Output> {
    let mut outputs: Vec<Output> = Vec::new();
    let mut current: Option<(Stream, String)> = None;
    for (stream, line) in lines {
        match &mut current {
            Some((s, text)) if s == stream => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {
                if let Some((s, text)) = current.take() {
                    outputs.push(Output::stream(s.name(), text));
                }
                current = Some((*stream, format!("{line}\n")));
            }
        }
    }
    if let Some((s, text)) = current {
        outputs.push(Output::stream(s.name(), text));
    }
    outputs
}

/// An `execute_result`; JSON mime types are parsed as JSON, as evcxr_jupyter does.
fn execute_result(data: &[(String, String)], execution_count: u64) -> Output {
    let mut bundle = JsonMap::new();
    for (mime, text) in data {
        let value = if mime.contains("json") {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        } else {
            Value::String(text.clone())
        };
        bundle.insert(mime.clone(), value);
    }
    Output::ExecuteResult(ExecuteResult {
        data: bundle,
        metadata: JsonMap::new(),
        execution_count: Some(execution_count),
        extra: JsonMap::new(),
    })
}

/// `2 s`, `0.5 s`, `1.25 s`.
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let text = format!("{secs:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(l: &str) -> (Stream, String) {
        (Stream::Stderr, l.to_string())
    }

    #[test]
    fn panic_report_is_taken_out_of_stderr() {
        let mut lines = vec![
            err("before"),
            err("thread '<unnamed>' (4242) panicked at src/lib.rs:31:1:"),
            err("boom 7"),
            err("stack backtrace:"),
            err("   0: __rustc::rust_begin_unwind"),
            err("             at /rustc/x/library/std/src/panicking.rs:697:5"),
            err("note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace."),
            err("thread '<unnamed>' (4242) panicked at library/core/src/panicking.rs:225:5:"),
            err("panic in a function that cannot unwind"),
            err("stack backtrace:"),
            err("   0: x"),
            err("thread caused non-unwinding panic. aborting."),
        ];
        assert_eq!(extract_panic(&mut lines).as_deref(), Some("boom 7"));
        assert_eq!(lines, vec![err("before")]);
    }

    #[test]
    fn streams_are_coalesced() {
        let lines = vec![
            (Stream::Stdout, "a".into()),
            (Stream::Stdout, "b".into()),
            err("c"),
        ];
        let outputs = stream_outputs(&lines);
        assert_eq!(
            outputs,
            vec![
                Output::stream("stdout", "a\nb\n"),
                Output::stream("stderr", "c\n")
            ]
        );
        assert_eq!(format_duration(Duration::from_millis(2000)), "2 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
