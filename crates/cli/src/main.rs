//! `rnnlab`: the command line of rnnlab.
//!
//! - `rnnlab predict MODEL INPUT.npy... --out DIR` runs a Keras model (`.keras` or legacy `.h5`) and writes
//!   `DIR/output_K.npy` in the model's output order.
//! - `rnnlab summary MODEL [--style keras3|tf2]` prints the model's summary table.
//! - `rnnlab fit MODEL.keras X.npy... Y.npy... --epochs N --batch-size B --out TRAINED.keras` trains a compiled
//!   Keras model with its own compile_config and saves it.
//! - `rnnlab run NB.ipynb... [--inplace | -o OUT]` executes Rust (evcxr) notebooks and writes them with outputs.
//! - `rnnlab test PATH...` executes notebooks (files or folders) and compares with their stored outputs.
//! - `rnnlab repl` is an interactive Rust session with rnnlab loaded (the notebooks' engine).
//! - `rnnlab bench` times recurrent layers' forward passes (GFLOP/s against an FMA-peak probe).
//!
//! Exit codes: 0 success, 2 bad input (one line on stderr), 1 anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod repl;
use rnnlab::ndarray::{concatenate, Axis};
use rnnlab::{Model, SummaryStyle, Tensor};

#[derive(Parser)]
#[command(
    name = "rnnlab",
    version,
    about = "Keras-exact recurrent networks: run and inspect Keras RNN models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Keras model on .npy inputs and write one .npy per output.
    Predict {
        /// The model: a Keras 3 `.keras` file or a legacy tf.keras `.h5` file.
        model: PathBuf,
        /// Input arrays (.npy, float32 or float64), in the model's input order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder (created if missing): output_0.npy, output_1.npy, ... in the model's output order.
        #[arg(long, short)]
        out: PathBuf,
        /// Run the inputs through the model this many samples at a time (default: all at once).
        #[arg(long)]
        batch_size: Option<usize>,
    },
    /// Train a compiled Keras model (.keras) with its own compile_config (optimizer, loss) and save it.
    Fit {
        /// The compiled model: a Keras 3 `.keras` file saved after `model.compile(...)`.
        model: PathBuf,
        /// Arrays (.npy): the inputs in the model's input order, then one target per output, in output order.
        #[arg(required = true)]
        arrays: Vec<PathBuf>,
        /// Passes over the data.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Samples per gradient step (Keras' default is 32).
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Keep the sample order (by default the samples are shuffled before every epoch, as in Keras).
        #[arg(long)]
        no_shuffle: bool,
        /// Seed of the shuffling (and of dropout masks in layers without their own seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Hold out this fraction of the samples (the last ones) and report val_loss after every epoch.
        #[arg(long, default_value_t = 0.0)]
        validation_split: f64,
        /// Where to save the trained model (.keras, with its compile_config).
        #[arg(long, short)]
        out: PathBuf,
        /// Also write the per-epoch losses as JSON (Keras' `history.history`).
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Print the model's summary table.
    Summary {
        /// The model: `.keras` or legacy `.h5`.
        model: PathBuf,
        /// Table style: Keras 3's (default) or tf.keras 2.x's.
        #[arg(long, value_enum, default_value_t = Style::Keras3)]
        style: Style,
        /// Total width of the Keras 3 table (Keras uses min(88, terminal columns - 4); 76 when piped).
        #[arg(long)]
        line_length: Option<usize>,
    },
    /// Time forward passes of recurrent layers: ms per call, GFLOP/s and % of a quick FMA-peak probe.
    Bench {
        /// A case KIND:BATCH,STEPS,FEATURES,UNITS (KIND lstm, gru or simplernn); repeat for several. Default:
        /// the performance issue's table (the tutorial LSTM up to LSTM/GRU 64,200,256,256).
        #[arg(long = "shape")]
        shapes: Vec<String>,
        /// Timed runs per case, at least.
        #[arg(long, default_value_t = 5)]
        min_runs: usize,
        /// Keep timing a case until this many seconds have passed (after `--min-runs`).
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Also write the results as JSON (read by benches/compare.py).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Time training steps instead of forward passes: the layer + Dense(1), mse, Adam, `train_on_batch`
        /// on one batch (forward, backpropagation through time, update).
        #[arg(long)]
        train: bool,
        /// Threads a recurrent layer may split its batch over in predict (`rnnlab::set_num_threads`; results are
        /// bit-identical to one thread). Training steps run on one thread.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Give every call a random initial state (h, and c for LSTM), as a loop that feeds a layer step by step
        /// does: its first step then computes `h R`, which a call from Keras' zero state skips (it is zero).
        #[arg(long)]
        state: bool,
    },
    /// An interactive Rust session with rnnlab's prelude imported (history, completion, :help).
    Repl {
        /// Read plain lines from stdin (for scripts and tests) instead of the line editor.
        #[arg(long)]
        no_readline: bool,
        /// The rnnlab crate folder to load (default: $RNNLAB_CRATE, else the source this binary was built from).
        #[arg(long)]
        rnnlab_path: Option<PathBuf>,
        /// History file (default: $RNNLAB_HISTORY, else $XDG_DATA_HOME/rnnlab/history or
        /// ~/.local/share/rnnlab/history).
        #[arg(long, conflicts_with = "no_history")]
        history: Option<PathBuf>,
        /// Keep no history.
        #[arg(long)]
        no_history: bool,
        /// Per-input time limit in seconds (0: none; Ctrl-C stops a long evaluation).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
        /// Build rnnlab in a temporary folder instead of the shared build cache (see `run --build-cache`).
        #[arg(long)]
        no_build_cache: bool,
    },
    /// Execute notebooks (evcxr Rust kernel) cell by cell and write them with their outputs.
    Run {
        /// Notebooks to execute, in order, each in a fresh engine with its own folder as working directory.
        #[arg(required = true)]
        notebooks: Vec<PathBuf>,
        /// Write the outputs back into each notebook file.
        #[arg(long, conflicts_with = "output")]
        inplace: bool,
        /// Where to write the executed notebook: a file, or an existing folder (which keeps the notebook's name);
        /// a folder, made if needed, when several notebooks are given.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Keep executing after a failing cell (by default the run stops there, as Jupyter's nbconvert does).
        #[arg(long)]
        keep_going: bool,
        #[command(flatten)]
        common: NotebookArgs,
    },
    /// Execute notebooks and compare their outputs with the stored ones (numbers with a tolerance).
    Test {
        /// Notebook files or folders (searched recursively for .ipynb files).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Rewrite the stored outputs with the new ones.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        common: NotebookArgs,
    },
}

/// Options shared by `run` and `test`.
#[derive(clap::Args, Clone)]
struct NotebookArgs {
    /// Per-cell time limit in seconds (a cold `:dep` compile of rnnlab can take a minute or two).
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Size in MB of evcxr's shared cache of compiled registry crates (0, the default, turns it off). It makes
    /// later runs faster, but two rnnlab processes using it at the same time break each other's builds.
    #[arg(long, default_value_t = 0)]
    cache_mb: u64,
    /// Where compiled `:dep` crates are kept between notebooks and between runs (default
    /// `$RNNLAB_BUILD_CACHE`, else `rnnlab-evcxr-builds-$USER` in the temporary folder). Each run locks its own
    /// slot in it, so concurrent runs never share a build folder.
    #[arg(long, conflicts_with = "no_build_cache")]
    build_cache: Option<PathBuf>,
    /// Build every notebook from scratch in a temporary folder.
    #[arg(long)]
    no_build_cache: bool,
}

impl NotebookArgs {
    /// Locks a build folder for this process (held until it exits); `None` when caching is off or all slots are
    /// busy, and then each notebook builds in a temporary folder.
    fn build_dir(&self) -> Result<Option<rnnlab_notebook::BuildDir>, Failure> {
        if self.no_build_cache {
            return Ok(None);
        }
        match &self.build_cache {
            Some(root) => rnnlab_notebook::BuildDir::acquire(root).map_err(|e| {
                bad(format!(
                    "--build-cache '{}' cannot be used: {e}",
                    root.display()
                ))
            }),
            None => Ok(rnnlab_notebook::BuildDir::acquire_default()),
        }
    }

    fn run_options(
        &self,
        keep_going: bool,
        build_dir: Option<&rnnlab_notebook::BuildDir>,
    ) -> rnnlab_notebook::RunOptions {
        rnnlab_notebook::RunOptions {
            timeout: Some(Duration::from_secs(self.timeout)),
            keep_going,
            cache_mb: (self.cache_mb > 0).then_some(self.cache_mb),
            build_dir: build_dir.map(|d| d.path().to_path_buf()),
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Style {
    Keras3,
    Tf2,
}

/// An error for the user: printed as one line; `bad_input` selects exit code 2.
struct Failure {
    message: String,
    bad_input: bool,
}

impl From<rnnlab::Error> for Failure {
    fn from(e: rnnlab::Error) -> Self {
        // Every library error is about the files or arguments the user gave.
        Failure {
            message: e.to_string(),
            bad_input: true,
        }
    }
}

/// Cells failed: reported above, exit code 1.
fn failed_cells() -> Failure {
    Failure {
        message: "some notebook cells failed (see above)".into(),
        bad_input: false,
    }
}

fn bad(message: String) -> Failure {
    Failure {
        message,
        bad_input: true,
    }
}

fn predict(
    model_path: &Path,
    inputs: &[PathBuf],
    out: &Path,
    batch_size: Option<usize>,
) -> Result<(), Failure> {
    let model = Model::load(model_path)?;
    let expected = model.inputs().len();
    if inputs.len() != expected {
        let names: Vec<String> = model
            .inputs()
            .iter()
            .map(|t| format!("{} {}", t.keras_history().0, t.shape()))
            .collect();
        return Err(bad(format!(
            "model '{}' takes {expected} input(s) [{}], but {} .npy file(s) were given",
            model_path.display(),
            names.join(", "),
            inputs.len()
        )));
    }
    let arrays: Vec<Tensor> = inputs
        .iter()
        .map(rnnlab::io::read_npy)
        .collect::<Result<_, _>>()?;
    let n = arrays
        .first()
        .and_then(|a| a.shape().dims().first().copied())
        .unwrap_or(0);
    let outputs = match batch_size {
        Some(0) => return Err(bad("--batch-size must be at least 1".into())),
        Some(bs) if bs < n => {
            let mut parts: Vec<Vec<Tensor>> = Vec::new();
            let mut start = 0;
            while start < n {
                let end = (start + bs).min(n);
                let chunk: Vec<Tensor> = arrays
                    .iter()
                    .map(|a| Tensor(a.slice_axis(Axis(0), (start..end).into()).to_owned()))
                    .collect();
                parts.push(model.predict_all(&chunk)?);
                start = end;
            }
            let k = parts[0].len();
            (0..k)
                .map(|i| {
                    let views: Vec<_> = parts.iter().map(|p| p[i].view()).collect();
                    concatenate(Axis(0), &views)
                        .map(Tensor)
                        .map_err(|e| bad(format!("cannot join batches of output {i}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => model.predict_all(&arrays)?,
    };
    std::fs::create_dir_all(out).map_err(|e| {
        bad(format!(
            "cannot create output folder '{}': {e}",
            out.display()
        ))
    })?;
    for (i, (t, sym)) in outputs.iter().zip(model.outputs()).enumerate() {
        let path = out.join(format!("output_{i}.npy"));
        rnnlab::io::write_npy(&path, t)?;
        let (layer, node, tensor) = sym.keras_history();
        println!(
            "output_{i}  {layer}[{node}][{tensor}]  {}  -> {}",
            t.shape(),
            path.display()
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn fit(
    model_path: &Path,
    paths: &[PathBuf],
    epochs: usize,
    batch_size: usize,
    shuffle: bool,
    seed: Option<u64>,
    validation_split: f64,
    out: &Path,
    history_path: Option<&Path>,
) -> Result<(), Failure> {
    let is_keras = std::fs::read(model_path)
        .map(|b| b.starts_with(b"PK"))
        .unwrap_or(true);
    let model = Model::load(model_path)?;
    if !is_keras {
        return Err(bad(format!(
            "'{}' is a legacy .h5 file: rnnlab reads the training settings from a Keras 3 .keras file's \
             compile_config; save the compiled model with model.save('model.keras')",
            model_path.display()
        )));
    }
    let Some(compile) = model.compile_config() else {
        return Err(bad(match model.compile_config_error() {
            Some(e) => format!(
                "'{}': its compile_config cannot be used for training: {e}",
                model_path.display()
            ),
            None => format!(
                "'{}' was not compiled (its compile_config is empty), so it has no optimizer or loss to train \
                 with: call model.compile(optimizer=..., loss=...) in Keras before model.save()",
                model_path.display()
            ),
        }));
    };
    let (n_in, n_out) = (model.inputs().len(), model.outputs().len());
    if paths.len() != n_in + n_out {
        let ins: Vec<String> = model
            .inputs()
            .iter()
            .map(|t| format!("{} {}", t.keras_history().0, t.shape()))
            .collect();
        let outs: Vec<String> = model
            .outputs()
            .iter()
            .map(|t| format!("{} {}", t.keras_history().0, t.shape()))
            .collect();
        return Err(bad(format!(
            "model '{}' takes {n_in} input(s) [{}] and needs {n_out} target(s) [{}]: give {} .npy files \
             (inputs, then targets), not {}",
            model_path.display(),
            ins.join(", "),
            outs.join(", "),
            n_in + n_out,
            paths.len()
        )));
    }
    let arrays: Vec<Tensor> = paths
        .iter()
        .map(rnnlab::io::read_npy)
        .collect::<Result<_, _>>()?;
    let (x, y) = arrays.split_at(n_in);
    let losses: Vec<String> = compile.losses().iter().map(|l| format!("{l:?}")).collect();
    println!(
        "training '{}': optimizer {:?}, loss [{}]{}",
        model_path.display(),
        compile.optimizer(),
        losses.join(", "),
        compile
            .get_loss_weights()
            .map(|w| format!(", loss_weights {w:?}"))
            .unwrap_or_default()
    );
    if !compile.metrics().is_null() {
        println!(
            "note: the compile_config lists metrics {}; rnnlab reports the losses only",
            compile.metrics()
        );
    }
    let mut options = rnnlab::FitOptions::new()
        .epochs(epochs)
        .batch_size(batch_size)
        .shuffle(shuffle)
        .validation_split(validation_split);
    if let Some(s) = seed {
        options = options.seed(s);
    }
    let history = model.fit(x, y, options)?;
    model.save(out)?;
    println!("saved {}", out.display());
    if let Some(p) = history_path {
        let mut m = serde_json::Map::new();
        for k in history.keys() {
            m.insert(k.clone(), serde_json::json!(history.get(k).unwrap_or(&[])));
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(m))
            .map_err(|e| bad(format!("cannot encode the history: {e}")))?;
        std::fs::write(p, text + "\n")
            .map_err(|e| bad(format!("cannot write '{}': {e}", p.display())))?;
    }
    Ok(())
}

fn summary(model_path: &Path, style: Style, line_length: Option<usize>) -> Result<(), Failure> {
    let model = Model::load(model_path)?;
    let s = match style {
        Style::Keras3 => model.summary_with(SummaryStyle::Keras3),
        Style::Tf2 => model.summary_with(SummaryStyle::Tf2),
    };
    let s = match line_length {
        Some(w) => s.line_length(w),
        None => s,
    };
    println!("{s}");
    Ok(())
}

impl From<rnnlab_notebook::RunError> for Failure {
    fn from(e: rnnlab_notebook::RunError) -> Self {
        let bad_input = matches!(e, rnnlab_notebook::RunError::Notebook(_));
        Failure {
            message: e.to_string(),
            bad_input,
        }
    }
}

impl From<rnnlab_notebook::NotebookError> for Failure {
    fn from(e: rnnlab_notebook::NotebookError) -> Self {
        Failure {
            message: e.to_string(),
            bad_input: true,
        }
    }
}

/// Notebooks named on the command line: files as given, folders searched recursively (checkpoints skipped),
/// in sorted order.
fn collect_notebooks(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != ".ipynb_checkpoints") {
                    walk(&p, out)?;
                }
            } else if p.extension().is_some_and(|e| e == "ipynb") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)
                .map_err(|e| bad(format!("cannot read folder '{}': {e}", p.display())))?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(bad(format!(
                "no such notebook or folder: '{}'",
                p.display()
            )));
        }
    }
    if out.is_empty() {
        return Err(bad("no .ipynb notebooks found in the given paths".into()));
    }
    Ok(out)
}

/// Runs notebooks; returns whether every cell succeeded.
fn run(
    notebooks: &[PathBuf],
    inplace: bool,
    output: Option<&Path>,
    keep_going: bool,
    common: &NotebookArgs,
) -> Result<bool, Failure> {
    // Into a folder: several notebooks, or an existing folder (`-o out/` for one notebook).
    let into_folder = output.is_some_and(|o| notebooks.len() > 1 || o.is_dir());
    if let Some(o) = output {
        if into_folder {
            std::fs::create_dir_all(o).map_err(|e| {
                bad(format!(
                    "cannot create output folder '{}': {e}",
                    o.display()
                ))
            })?;
        } else if let Some(parent) = o.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Checked before running: a notebook can run for minutes, and its outputs would be lost.
            if !parent.is_dir() {
                return Err(bad(format!(
                    "cannot write '{}': the folder '{}' does not exist",
                    o.display(),
                    parent.display()
                )));
            }
        }
    }
    let build_dir = common.build_dir()?;
    let mut all_ok = true;
    for nb in notebooks {
        let report =
            rnnlab_notebook::run_notebook(nb, common.run_options(keep_going, build_dir.as_ref()))?;
        print!("{report}");
        all_ok &= report.ok();
        let target = match output {
            Some(o) if into_folder => Some(o.join(nb.file_name().unwrap_or_default())),
            Some(o) => Some(o.to_path_buf()),
            None if inplace => Some(nb.clone()),
            None => None,
        };
        if let Some(t) = target {
            report.notebook.write(&t)?;
            println!("  written to {}", t.display());
        }
    }
    Ok(all_ok)
}

/// `rnnlab bench`: measures each case and prints the table (and writes JSON when asked).
fn bench_cmd(
    shapes: &[String],
    min_runs: usize,
    seconds: f64,
    json: Option<&Path>,
    train: bool,
    threads: usize,
    state: bool,
) -> Result<(), Failure> {
    if threads == 0 {
        return Err(bad("--threads must be at least 1".into()));
    }
    let mode = if train {
        bench::Mode::Train
    } else {
        bench::Mode::Predict
    };
    let specs: Vec<String> = if shapes.is_empty() {
        let defaults = if train {
            bench::DEFAULT_TRAIN_CASES
        } else {
            bench::DEFAULT_CASES
        };
        defaults.iter().map(|s| s.to_string()).collect()
    } else {
        shapes.to_vec()
    };
    let cases: Vec<bench::Case> = specs
        .iter()
        .map(|s| {
            s.parse()
                .map(|c| bench::Case {
                    given_state: state,
                    ..c
                })
                .map_err(bad)
        })
        .collect::<Result<_, _>>()?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(bad(format!(
            "--seconds must be a non-negative number, got {seconds}"
        )));
    }
    rnnlab::set_num_threads(threads);
    let threads = if train { 1 } else { threads };
    // The load now (this process idle for 300 ms), not the 1-minute average, which still counts whatever ran
    // just before (benches/compare.py's references): a quarter of a core busy elsewhere is worth a warning.
    let others = bench::other_load(std::time::Duration::from_millis(300));
    if let Some(o) = others.filter(|o| o.busy_cores > 0.25) {
        eprintln!(
            "warning: other processes used {:.2} core(s) over the last 0.3 s ({:.2} of it stolen by the hypervisor \
             for other virtual machines): timings will be noisy",
            o.busy_cores, o.steal_cores
        );
    }
    let (peak, isa) = bench::fma_peak_gflops();
    let what = if train {
        "training step of the layer + Dense(1), mse, Adam (train_on_batch); GFLOP/s counts 3 forward passes"
    } else {
        "forward pass of one layer, predict()"
    };
    println!("FMA peak probe: {peak:.1} GFLOP/s on one core ({isa}); % peak is of {threads} core(s); float32; {what}");
    let mut results = Vec::new();
    for case in cases {
        results.push(bench::measure(case, mode, min_runs, seconds)?);
        // Print as we go: the large cases take a while.
        if results.len() == 1 {
            print!("{}", bench::table(&results, peak, threads));
        } else {
            print!(
                "{}",
                bench::table(&results[results.len() - 1..], peak, threads)
                    .lines()
                    .nth(1)
                    .map(|l| format!("{l}\n"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(path) = json {
        let value = bench::json(&results, peak, isa, threads, others);
        let text = serde_json::to_string_pretty(&value).expect("a JSON value serialises");
        std::fs::write(path, text + "\n")
            .map_err(|e| bad(format!("cannot write '{}': {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Tests notebooks; returns whether all passed.
fn test(paths: &[PathBuf], update: bool, common: &NotebookArgs) -> Result<bool, Failure> {
    let notebooks = collect_notebooks(paths)?;
    let build_dir = common.build_dir()?;
    let mut failed = 0;
    for nb in &notebooks {
        let options = rnnlab_notebook::TestOptions {
            run: common.run_options(true, build_dir.as_ref()),
            update,
            ..Default::default()
        };
        let report = rnnlab_notebook::test_notebook(nb, options)?;
        print!("{report}");
        failed += usize::from(!report.passed());
    }
    println!("{} passed, {} failed", notebooks.len() - failed, failed);
    Ok(failed == 0)
}

fn main() -> ExitCode {
    // First, before anything else: evcxr re-launches this executable as the child that runs notebook cells.
    rnnlab_notebook::runtime_hook();
    let cli = Cli::parse();
    let ok_or_failed = |ok: bool| if ok { Ok(()) } else { Err(failed_cells()) };
    let result = match &cli.command {
        Command::Predict {
            model,
            inputs,
            out,
            batch_size,
        } => predict(model, inputs, out, *batch_size),
        Command::Summary {
            model,
            style,
            line_length,
        } => summary(model, *style, *line_length),
        Command::Fit {
            model,
            arrays,
            epochs,
            batch_size,
            no_shuffle,
            seed,
            validation_split,
            out,
            history,
        } => fit(
            model,
            arrays,
            *epochs,
            *batch_size,
            !no_shuffle,
            *seed,
            *validation_split,
            out,
            history.as_deref(),
        ),
        Command::Run {
            notebooks,
            inplace,
            output,
            keep_going,
            common,
        } => {
            run(notebooks, *inplace, output.as_deref(), *keep_going, common).and_then(ok_or_failed)
        }
        Command::Test {
            paths,
            update,
            common,
        } => test(paths, *update, common).and_then(ok_or_failed),
        Command::Bench {
            shapes,
            min_runs,
            seconds,
            json,
            train,
            threads,
            state,
        } => bench_cmd(
            shapes,
            *min_runs,
            *seconds,
            json.as_deref(),
            *train,
            *threads,
            *state,
        ),
        Command::Repl {
            no_readline,
            rnnlab_path,
            history,
            no_history,
            timeout,
            no_build_cache,
        } => {
            // Held for the whole session: the slot's builds are this process's until it exits.
            let build_dir = (!no_build_cache)
                .then(rnnlab_notebook::BuildDir::acquire_default)
                .flatten();
            repl::run(repl::ReplOptions {
                no_readline: *no_readline,
                rnnlab_path: rnnlab_path
                    .clone()
                    .unwrap_or_else(repl::default_rnnlab_path),
                history: if *no_history {
                    None
                } else {
                    history.clone().or_else(repl::default_history)
                },
                timeout: (*timeout > 0).then(|| Duration::from_secs(*timeout)),
                build_dir: build_dir.as_ref().map(|d| d.path().to_path_buf()),
            })
            .map_err(bad)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // One line, whatever the message contains.
            eprintln!("rnnlab: error: {}", f.message.replace('\n', " "));
            ExitCode::from(if f.bad_input { 2 } else { 1 })
        }
    }
}
