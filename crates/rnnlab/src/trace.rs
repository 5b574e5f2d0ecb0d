//! Traces: the values inside a recurrent layer at every time step — the hidden state h_t, the LSTM cell state
//! c_t, and the gates (LSTM i, f, g, o; GRU z, r and the candidate) — which Keras never returns.
//!
//! ```
//! use rnnlab::{Input, Model, Tensor, LSTM};
//! let x = Input::new((4, 2));
//! let y = LSTM::new(3).name("enc").call(&x).unwrap();
//! let model = Model::new(&x, &y).unwrap();
//! let data = Tensor::full((1, 4, 2), 0.5);
//! let tr = &model.trace("enc", &data).unwrap()[0];
//! assert_eq!(tr.h.shape(), [1, 4, 3]);          // (batch, steps, units)
//! assert_eq!(tr.c.as_ref().unwrap().shape(), [1, 4, 3]);
//! assert_eq!(tr.gate_names(), ["i", "f", "g", "o"]);
//! // The last step is what predict returns.
//! assert_eq!(tr.last_h(), model.predict(&data).unwrap());
//! ```

use std::fmt;

use ndarray::{Array3, Axis};

use crate::error::{Error, Result};
use crate::layers::rnn::{CellKind, RawTrace, RnnModule};
use crate::layers::{BidirectionalModule, Layer};
use crate::model::{Model, ModelInputs};
use crate::tensor::Tensor;

/// Which way a traced layer read its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// First step to last.
    Forward,
    /// Last step to first (`go_backwards`, or the backward half of a Bidirectional).
    Backward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        })
    }
}

/// The per-step values of one direction of a recurrent layer for a batch, in processing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The layer's name.
    pub layer: String,
    /// `"LSTM"`, `"GRU"` or `"SimpleRNN"`.
    pub class_name: String,
    /// Which way the sequence was read.
    pub direction: Direction,
    /// The input time index consumed at each processed step (reversed when going backwards).
    pub input_steps: Vec<usize>,
    /// Hidden state after each step, `(batch, steps, units)`.
    pub h: Tensor,
    /// LSTM cell state after each step, `(batch, steps, units)`; `None` for GRU and SimpleRNN, whose only state
    /// is h.
    pub c: Option<Tensor>,
    /// Activated gates at each step, `(batch, steps, units)` each: LSTM `i, f, g, o`; GRU `z, r, candidate`;
    /// none for SimpleRNN.
    pub gates: Vec<(String, Tensor)>,
}

impl Trace {
    /// Number of time steps.
    pub fn steps(&self) -> usize {
        self.h.shape().dims().get(1).copied().unwrap_or(0)
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.h.shape().dims().get(2).copied().unwrap_or(0)
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.h.shape().dims().first().copied().unwrap_or(0)
    }

    /// The gate names, in order.
    pub fn gate_names(&self) -> Vec<&str> {
        self.gates.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// One gate's values, `(batch, steps, units)`.
    ///
    /// # Errors
    /// No gate has that name (the message lists the names there are).
    pub fn gate(&self, name: &str) -> Result<&Tensor> {
        self.gates
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<&str> = self.gate_names();
                Error::unknown(
                    format!("gate of {} \"{}\"", self.class_name, self.layer),
                    name,
                    &names,
                )
            })
    }

    /// h after the last step, `(batch, units)`: the layer's final state (and its output without return_sequences).
    pub fn last_h(&self) -> Tensor {
        last_step(&self.h)
    }

    /// c after the last step, `(batch, units)` (LSTM only).
    pub fn last_c(&self) -> Option<Tensor> {
        self.c.as_ref().map(last_step)
    }
}

fn last_step(t: &Tensor) -> Tensor {
    let steps = t.shape().dims().get(1).copied().unwrap_or(0);
    if steps == 0 {
        let d = t.shape().0;
        return Tensor::zeros((d[0], d.get(2).copied().unwrap_or(0)));
    }
    Tensor(t.index_axis(Axis(1), steps - 1).to_owned())
}

/// `[step] (B, U)` -> `(B, steps, U)`.
fn stack(steps: &[ndarray::Array2<f32>], b: usize, u: usize) -> Tensor {
    let mut out = Array3::<f32>::zeros((b, steps.len(), u));
    for (k, s) in steps.iter().enumerate() {
        out.index_axis_mut(Axis(1), k).assign(s);
    }
    Tensor(out.into_dyn())
}

fn gate_block(steps: &[ndarray::Array2<f32>], b: usize, u: usize, block: usize) -> Tensor {
    let mut out = Array3::<f32>::zeros((b, steps.len(), u));
    for (k, s) in steps.iter().enumerate() {
        out.index_axis_mut(Axis(1), k)
            .assign(&s.slice(ndarray::s![.., block * u..(block + 1) * u]));
    }
    Tensor(out.into_dyn())
}

/// Runs a copy of `module` (so a stateful layer's kept state does not move) and records every step.
fn trace_rnn(
    layer: &str,
    module: &RnnModule,
    x: &ndarray::ArrayD<f32>,
    initial_state: &[ndarray::ArrayD<f32>],
    mask: Option<&crate::layers::Mask>,
    direction: Direction,
) -> Result<Trace> {
    let mut m = module.clone();
    let mut raw = RawTrace::default();
    let ctx = format!("Layer \"{layer}\" ({})", m.cell.class_name());
    let st: Vec<_> = initial_state.iter().map(|s| s.view()).collect();
    m.run(&ctx, &x.view(), &st, mask, Some(&mut raw), None)?;
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let u = m.cell.cfg.units;
    let input_steps: Vec<usize> = if m.opts.go_backwards {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    };
    let h = stack(&raw.states[0], b, u);
    let c = (m.cell.n_states() == 2).then(|| stack(&raw.states[1], b, u));
    let names: &[&str] = match m.cell.kind {
        CellKind::Lstm => &["i", "f", "g", "o"],
        CellKind::Gru { .. } => &["z", "r", "candidate"],
        CellKind::Simple => &[],
    };
    let gates = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.to_string(), gate_block(&raw.gates, b, u, k)))
        .collect();
    Ok(Trace {
        layer: layer.to_string(),
        class_name: m.cell.class_name().to_string(),
        direction,
        input_steps,
        h,
        c,
        gates,
    })
}

/// Traces a recurrent (or Bidirectional) layer given what it receives.
fn trace_layer(
    layer: &Layer,
    x: &ndarray::ArrayD<f32>,
    initial_state: &[ndarray::ArrayD<f32>],
    mask: Option<&crate::layers::Mask>,
) -> Result<Vec<Trace>> {
    let name = layer.name();
    let module = layer.module();
    if let Some(rnn) = module.as_any().downcast_ref::<RnnModule>() {
        let dir = if rnn.opts.go_backwards {
            Direction::Backward
        } else {
            Direction::Forward
        };
        return Ok(vec![trace_rnn(&name, rnn, x, initial_state, mask, dir)?]);
    }
    if let Some(bi) = module.as_any().downcast_ref::<BidirectionalModule>() {
        let (fs, bs) = initial_state.split_at(initial_state.len() / 2);
        let fwd_dir = if bi.fwd.opts.go_backwards {
            Direction::Backward
        } else {
            Direction::Forward
        };
        let bwd_dir = if bi.bwd.opts.go_backwards {
            Direction::Backward
        } else {
            Direction::Forward
        };
        return Ok(vec![
            trace_rnn(
                &format!("forward_{}", bi.inner_name),
                &bi.fwd,
                x,
                fs,
                mask,
                fwd_dir,
            )?,
            trace_rnn(
                &format!("backward_{}", bi.inner_name),
                &bi.bwd,
                x,
                bs,
                mask,
                bwd_dir,
            )?,
        ]);
    }
    Err(Error::invalid(
        format!("Layer \"{name}\" ({})", module.class_name()),
        "layer",
        "a recurrent layer (LSTM, GRU, SimpleRNN or Bidirectional) to trace",
        module.class_name(),
    ))
}

impl Model {
    /// Runs the model on `inputs` and records the per-step states and gates of the recurrent layer `layer_name`
    /// (one [`Trace`] per direction: two for Bidirectional). The last step equals what `predict` returns.
    ///
    /// # Errors
    /// No such layer, a layer that is not recurrent, or inputs the model rejects.
    pub fn trace(&self, layer_name: &str, inputs: impl ModelInputs) -> Result<Vec<Trace>> {
        let layer = self.get_layer(layer_name)?;
        let is_rnn = {
            let m = layer.module();
            m.as_any().is::<RnnModule>() || m.as_any().is::<BidirectionalModule>()
        };
        if !is_rnn {
            let rnns: Vec<String> = self
                .layers()
                .iter()
                .filter(|l| {
                    matches!(
                        l.class_name(),
                        "LSTM" | "GRU" | "SimpleRNN" | "Bidirectional"
                    )
                })
                .map(|l| l.name())
                .collect();
            return Err(Error::invalid(
                &*layer.ctx(),
                "layer_name",
                format!(
                    "the name of a recurrent layer of this model: [{}]",
                    rnns.join(", ")
                ),
                format!("{layer_name} ({})", layer.class_name()),
            ));
        }
        let node = self.node_of(&layer).ok_or_else(|| {
            Error::Graph(format!("{}: not called inside this model", layer.ctx()))
        })?;
        let arrays = inputs.arrays();
        let captured = self.capture_inputs(&arrays, node.id)?;
        let x = captured
            .inputs
            .first()
            .ok_or_else(|| Error::Graph(format!("{}: has no input", layer.ctx())))?;
        trace_layer(&layer, x, &captured.initial_state, captured.mask.as_ref())
    }
}

impl Layer {
    /// Runs this recurrent layer on `x` and records its per-step states and gates (one [`Trace`] per direction).
    ///
    /// ```
    /// use rnnlab::{Tensor, GRU};
    /// let gru = GRU::new(2);
    /// let tr = gru.trace(&Tensor::full((1, 5, 3), 0.1)).unwrap();
    /// assert_eq!(tr[0].gate_names(), ["z", "r", "candidate"]);
    /// assert!(tr[0].c.is_none()); // a GRU's only state is h
    /// ```
    ///
    /// # Errors
    /// A layer that is not recurrent, or an input it rejects.
    pub fn trace(&self, x: &Tensor) -> Result<Vec<Trace>> {
        self.trace_with_state(x, &[])
    }

    /// [`Layer::trace`] with an initial state.
    ///
    /// # Errors
    /// As [`Layer::trace`], or a mismatched initial state.
    pub fn trace_with_state(&self, x: &Tensor, initial_state: &[&Tensor]) -> Result<Vec<Trace>> {
        // Builds the weights (and checks shapes) exactly as an eager call does.
        let sym = |t: &Tensor| t.shape().0.iter().map(|&d| Some(d)).collect::<Vec<_>>();
        {
            let ctx = self.ctx();
            let st: Vec<_> = initial_state.iter().map(|t| sym(t)).collect();
            self.module().call_shapes(&ctx, &[sym(x)], &st)?;
        }
        let st: Vec<ndarray::ArrayD<f32>> = initial_state.iter().map(|t| t.0.clone()).collect();
        trace_layer(self, &x.0, &st, None)
    }
}
