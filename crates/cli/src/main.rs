//! `rnnlab`: the command line of rnnlab.
//!
//! - `rnnlab predict MODEL INPUT.npy... --out DIR` runs a Keras model (`.keras` or legacy `.h5`) and writes
//!   `DIR/output_K.npy` in the model's output order.
//! - `rnnlab summary MODEL [--style keras3|tf2]` prints the model's summary table.
//!
//! Exit codes: 0 success, 2 bad input (one line on stderr), 1 anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
