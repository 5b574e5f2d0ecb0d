//! Hidden vs cell state: traces an LSTM and a GRU on a sine wave and on a step input, and saves the figures.
//!
//! Run: `cargo run --release -p rnnlab --example state_plots -- OUT_DIR`

use rnnlab::plot::plot_traces;
use rnnlab::prelude::*;

fn main() -> rnnlab::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "plots".into()));
    std::fs::create_dir_all(&out).map_err(|source| rnnlab::Error::Io {
        action: "create",
        path: out.clone(),
        source,
    })?;
    set_random_seed(3);
    let t = 40;
    let sine = Tensor::new((1, t, 1), (0..t).map(|i| (0.3 * i as f32).sin()).collect())?;
    let step = Tensor::new(
        (1, t, 1),
        (0..t).map(|i| if i >= 10 { 1.0 } else { 0.0 }).collect(),
    )?;
    let lstm = LSTM::new(4);
    let gru = GRU::new(4);
    for (name, x) in [("sine", &sine), ("step", &step)] {
        let l = lstm.trace(x)?.remove(0);
        let g = gru.trace(x)?.remove(0);
        l.plot_states(0)?
            .save(out.join(format!("lstm_{name}_states.png")))?;
        l.plot_gates(0)?
            .save(out.join(format!("lstm_{name}_gates.png")))?;
        g.plot_states(0)?
            .save(out.join(format!("gru_{name}_states.png")))?;
        plot_traces(&[l, g], 0, &format!("LSTM vs GRU on a {name} input"))?
            .save(out.join(format!("lstm_vs_gru_{name}.svg")))?;
    }
    println!("figures written to {}", out.display());
    Ok(())
}
