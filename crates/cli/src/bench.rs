//! `rnnlab bench`: forward-pass timings of recurrent layers, with GFLOP/s against a quick FMA-peak probe, and with
//! `--train` the time of one training step (forward, backpropagation through time, Adam update) of the layer
//! followed by `Dense(1)` under an mse loss (`Model::train_on_batch`).
//!
//! Timings are medians of repeated `Model::predict` calls on one model per shape, after warm-up runs, so they are
//! what a user of the library sees (graph walk and output copies included). Comparisons with Keras and PyTorch
//! run in `benches/compare.py`, which reads this command's JSON: the ratio is only meaningful when both sides run
//! on the same machine in the same session.

use std::time::Instant;

use rnnlab::{
    set_random_seed, Dense, Initializer, Input, Layer, Loss, Model, Optimizer, Tensor, GRU, LSTM,
};

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `predict`: one forward pass.
    Predict,
    /// `train_on_batch`: forward, backward and an Adam update.
    Train,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Predict => "predict",
            Mode::Train => "train",
        }
    }
}

/// Default cases of `rnnlab bench --train`.
pub const DEFAULT_TRAIN_CASES: &[&str] = &[
    "lstm:1,3,2,1",
    "lstm:32,100,64,128",
    "gru:32,100,64,128",
    "lstm:64,200,256,256",
];

/// One benchmark case: a single recurrent layer of `units` on `(batch, steps, features)` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Which layer.
    pub kind: Kind,
    /// Samples per call.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Input features.
    pub features: usize,
    /// Units of the layer.
    pub units: usize,
    /// Each call passes a random initial state (`rnnlab bench --state`), as a step-by-step loop or a decoder does,
    /// instead of starting from Keras' zero state, whose first step rnnlab skips `h R` for.
    pub given_state: bool,
}

/// The benchmarked layer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `LSTM` (4 gates).
    Lstm,
    /// `GRU` (3 gates, Keras 3's `reset_after=True`).
    Gru,
    /// `SimpleRNN`.
    SimpleRnn,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lstm => "lstm",
            Kind::Gru => "gru",
            Kind::SimpleRnn => "simplernn",
        }
    }

    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::SimpleRnn => 1,
        }
    }
}

/// The shapes of the performance issue's reference table: the tutorial model, then medium and large layers.
pub const DEFAULT_CASES: &[&str] = &[
    "lstm:1,3,2,1",
    "lstm:32,100,64,128",
    "lstm:64,200,256,256",
    "gru:32,100,64,128",
    "gru:64,200,256,256",
];

impl std::str::FromStr for Case {
    type Err = String;

    /// `KIND:BATCH,STEPS,FEATURES,UNITS`, e.g. `lstm:32,100,64,128`.
    fn from_str(s: &str) -> Result<Case, String> {
        let usage = || {
            format!("bad --shape '{s}': expected KIND:BATCH,STEPS,FEATURES,UNITS with KIND lstm, gru or simplernn (e.g. lstm:32,100,64,128)")
        };
        let (kind, dims) = s.split_once(':').ok_or_else(usage)?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "lstm" => Kind::Lstm,
            "gru" => Kind::Gru,
            "simplernn" | "rnn" => Kind::SimpleRnn,
            _ => return Err(usage()),
        };
        let dims: Vec<usize> = dims
            .split(',')
            .map(|d| d.trim().parse::<usize>().map_err(|_| usage()))
            .collect::<Result<_, _>>()?;
        let [batch, steps, features, units] = dims[..] else {
            return Err(usage());
        };
        if [batch, steps, features, units].contains(&0) {
            return Err(format!(
                "bad --shape '{s}': every dimension must be at least 1"
            ));
        }
        Ok(Case {
            kind,
            batch,
            steps,
            features,
            units,
            given_state: false,
        })
    }
}

impl Case {
    /// `lstm 32,100,64,128`, with ` +state` when the calls give an initial state.
    pub fn label(&self) -> String {
        format!(
            "{} {},{},{},{}{}",
            self.kind.name(),
            self.batch,
            self.steps,
            self.features,
            self.units,
            if self.given_state { " +state" } else { "" }
        )
    }

    /// Floating-point operations of one forward pass: the products it computes (input and recurrent kernels, a
    /// multiply and an add per term), `x K` at every step and `h R` at every step with a state that is not all
    /// zeros, i.e. from the second step unless the case gives a state (from zeros `h R` is zero and skipped,
    /// so counting it would inflate GFLOP/s). The element-wise gate math is small beside them at these sizes.
    pub fn flops(&self) -> f64 {
        let rec_steps = if self.given_state {
            self.steps
        } else {
            self.steps - 1
        };
        2.0 * (self.batch
            * (self.steps * self.features + rec_steps * self.units)
            * self.kind.gates()
            * self.units) as f64
    }
}

/// The timing of one case.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The case.
    pub case: Case,
    /// Forward pass or training step.
    pub mode: Mode,
    /// Median, minimum and maximum wall-clock time of one forward pass, in milliseconds.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Timed runs.
    pub runs: usize,
}

impl Measurement {
    /// Achieved GFLOP/s at the median. A training step counts three forward passes (the backward pass does two
    /// products per forward product: the input and the weight gradients), the usual estimate.
    pub fn gflops(&self) -> f64 {
        let k = if self.mode == Mode::Train { 3.0 } else { 1.0 };
        k * self.case.flops() / (self.median_ms * 1e-3) / 1e9
    }
}

/// Builds the case's model (seeded, Keras default initializers) and times `predict` on random inputs: warm-up
/// runs, then runs until both `min_runs` and about `budget_s` seconds are reached.
pub fn measure(
    case: Case,
    mode: Mode,
    min_runs: usize,
    budget_s: f64,
) -> Result<Measurement, rnnlab::Error> {
    set_random_seed(1);
    let x_in = Input::new((case.steps, case.features));
    // With a given state the model's inputs are x, then h (and c for LSTM), each (batch, units).
    let n_states = match (case.given_state, case.kind) {
        (false, _) => 0,
        (true, Kind::Lstm) => 2,
        (true, _) => 1,
    };
    let state_in: Vec<_> = (0..n_states).map(|_| Input::new((case.units,))).collect();
    let mut inputs = vec![&x_in];
    inputs.extend(&state_in);
    let layer: Layer = match case.kind {
        Kind::Lstm => LSTM::new(case.units).into(),
        Kind::Gru => GRU::new(case.units).into(),
        Kind::SimpleRnn => rnnlab::SimpleRNN::new(case.units).into(),
    };
    let h = layer.call_with_state(&x_in, &inputs[1..])?;
    let model = match mode {
        Mode::Predict => Model::new(&inputs[..], &h)?,
        Mode::Train => {
            let m = Model::new(&inputs[..], &Dense::new(1).call(&h)?)?;
            m.compile(Optimizer::adam(0.001), Loss::mse())?;
            m
        }
    };
    let target = Tensor::from(
        Initializer::RandomUniform {
            minval: -1.0,
            maxval: 1.0,
            seed: Some(3),
        }
        .sample(&[case.batch, 1])?,
    );
    let run = |x: &[Tensor]| -> Result<(), rnnlab::Error> {
        match mode {
            Mode::Predict => {
                std::hint::black_box(model.predict(x)?);
            }
            Mode::Train => {
                std::hint::black_box(model.train_on_batch(x, &target)?);
            }
        }
        Ok(())
    };
    let uniform = |seed: u64, shape: &[usize]| -> Result<Tensor, rnnlab::Error> {
        let init = Initializer::RandomUniform {
            minval: -1.0,
            maxval: 1.0,
            seed: Some(seed),
        };
        Ok(Tensor::from(init.sample(shape)?))
    };
    let mut x = vec![uniform(2, &[case.batch, case.steps, case.features])?];
    for i in 0..n_states {
        x.push(uniform(4 + i as u64, &[case.batch, case.units])?);
    }
    // Warm-up: first-touch page faults and caches.
    for _ in 0..2 {
        run(&x)?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs.max(1)
        || (start.elapsed().as_secs_f64() < budget_s && times.len() < 10_000)
    {
        let t = Instant::now();
        run(&x)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median_ms = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    Ok(Measurement {
        case,
        mode,
        median_ms,
        min_ms: times[0],
        max_ms: times[n - 1],
        runs: n,
    })
}

/// A quick estimate of one core's peak float32 FMA throughput in GFLOP/s: independent fused multiply-adds on the
/// widest vectors the CPU has (chosen at run time), the best of [`PROBE_ROUNDS`] rounds.
pub fn fma_peak_gflops() -> (f64, &'static str) {
    let (probe, isa): (fn() -> f64, _) = probe_for_this_cpu();
    // The best round, not one: on a shared host a single 8 ms round was seen to lose a third to another process
    // (78 GFLOP/s against 115 on a Zen 4), which made the layers look faster than the peak.
    let best = (0..PROBE_ROUNDS).map(|_| probe()).fold(0.0, f64::max);
    (best, isa)
}

/// Rounds of the FMA probe; the fastest counts.
pub const PROBE_ROUNDS: usize = 5;

/// The probe loop for the widest vectors this CPU has, and their name.
fn probe_for_this_cpu() -> (fn() -> f64, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            return (|| unsafe { probe_avx512() }, "avx512");
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return (|| unsafe { probe_avx2() }, "avx2+fma");
        }
    }
    (probe_scalar, "scalar")
}

/// Iterations of one probe round: 768 million flops, about 8 ms at 100 GFLOP/s.
const PROBE_ITERS: usize = 2_000_000;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn probe_avx512() -> f64 {
    use std::arch::x86_64::*;
    // Twelve independent accumulators hide the FMA latency (4 cycles) on two FMA ports.
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); 12];
    let t = Instant::now();
    for _ in 0..PROBE_ITERS {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let mut sink = 0.0;
    for v in acc {
        sink += _mm512_reduce_add_ps(v);
    }
    std::hint::black_box(sink);
    (PROBE_ITERS * 12 * 16 * 2) as f64 / secs / 1e9
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn probe_avx2() -> f64 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let t = Instant::now();
    for _ in 0..PROBE_ITERS {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let mut lanes = [0.0f32; 8];
    for v in acc {
        let mut l = [0.0f32; 8];
        _mm256_storeu_ps(l.as_mut_ptr(), v);
        for (s, x) in lanes.iter_mut().zip(l) {
            *s += x;
        }
    }
    std::hint::black_box(lanes);
    (PROBE_ITERS * 12 * 8 * 2) as f64 / secs / 1e9
}

fn probe_scalar() -> f64 {
    let mut acc = [1.0f32; 12];
    let t = Instant::now();
    for _ in 0..PROBE_ITERS / 4 {
        for v in acc.iter_mut() {
            *v = v.mul_add(0.999_999, 1e-7);
        }
        std::hint::black_box(&mut acc);
    }
    let secs = t.elapsed().as_secs_f64();
    (PROBE_ITERS / 4 * 12 * 2) as f64 / secs / 1e9
}

/// The 1-minute load average, when the system says (Linux: /proc/loadavg).
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// What the other processes and virtual machines used of the CPUs over a short window, in cores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OtherLoad {
    /// Cores kept busy by other processes (user, system, interrupts, and time stolen by the hypervisor).
    pub busy_cores: f64,
    /// The part of `busy_cores` the hypervisor gave to other virtual machines (steal time).
    pub steal_cores: f64,
}

/// The aggregate `cpu` line of `/proc/stat`: (busy, steal, total) clock ticks over all CPUs, and the number of
/// CPUs (`cpuN` lines). Busy is everything but idle and iowait; guest time is already part of user time.
fn cpu_ticks(stat: &str) -> Option<(u64, u64, u64, usize)> {
    let mut lines = stat.lines();
    let first = lines.next()?;
    let mut fields = first.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let v: Vec<u64> = fields
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let cpus = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some((total - v[3] - v[4], v[7], total, cpus.max(1)))
}

/// The CPU time others used while this process slept for `window`: two reads of `/proc/stat`. Unlike the
/// 1-minute load average, which still counts a job that ended a minute ago (in `benches/compare.py`, the
/// references timed just before), this is the load at the moment the timings start. None off Linux.
pub fn other_load(window: std::time::Duration) -> Option<OtherLoad> {
    let read = || cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?);
    let (b0, s0, t0, cpus) = read()?;
    std::thread::sleep(window);
    let (b1, s1, t1, _) = read()?;
    let dt = t1.checked_sub(t0).filter(|&d| d > 0)? as f64;
    let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt * cpus as f64;
    Some(OtherLoad {
        busy_cores: cores(b0, b1),
        steal_cores: cores(s0, s1),
    })
}

/// The table `rnnlab bench` prints.
pub fn table(results: &[Measurement], peak: f64, threads: usize) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7}\n",
        "shape (b,t,f,u)",
        "mode",
        "median ms",
        "min ms",
        "max ms",
        "calls/s",
        "GFLOP/s",
        "% peak",
        "threads"
    );
    for m in results {
        out.push_str(&format!(
            "{:<28} {:>8} {:>10.4} {:>10.4} {:>10.4} {:>10.1} {:>9.2} {:>7.1}% {:>7}\n",
            m.case.label(),
            m.mode.name(),
            m.median_ms,
            m.min_ms,
            m.max_ms,
            1000.0 / m.median_ms,
            m.gflops(),
            100.0 * m.gflops() / (peak * threads as f64),
            threads
        ));
    }
    out
}

/// The JSON `rnnlab bench --json` writes (read by `benches/compare.py`).
pub fn json(
    results: &[Measurement],
    peak: f64,
    isa: &str,
    threads: usize,
    others: Option<OtherLoad>,
) -> serde_json::Value {
    serde_json::json!({
        "tool": "rnnlab",
        "version": env!("CARGO_PKG_VERSION"),
        "threads": threads,
        "fma_peak_gflops": peak,
        "fma_probe": isa,
        "load_average_1min": load_average(),
        "other_busy_cores": others.map(|o| o.busy_cores),
        "other_steal_cores": others.map(|o| o.steal_cores),
        "results": results.iter().map(|m| serde_json::json!({
            "kind": m.case.kind.name(),
            "batch": m.case.batch,
            "steps": m.case.steps,
            "features": m.case.features,
            "units": m.case.units,
            "given_state": m.case.given_state,
            "mode": m.mode.name(),
            "median_ms": m.median_ms,
            "min_ms": m.min_ms,
            "max_ms": m.max_ms,
            "runs": m.runs,
            "gflops": m.gflops(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_read_the_aggregate_line_of_proc_stat() {
        // A two-CPU /proc/stat (Linux 6.x): user nice system idle iowait irq softirq steal guest guest_nice.
        let stat = "cpu  100 5 50 1000 20 3 2 40 7 0\n\
                    cpu0 50 2 25 500 10 1 1 20 3 0\n\
                    cpu1 50 3 25 500 10 2 1 20 4 0\n\
                    intr 12345 0 0\nctxt 999\n";
        // busy = user + nice + system + irq + softirq + steal (guest is inside user); total adds idle and iowait.
        assert_eq!(cpu_ticks(stat), Some((200, 40, 1220, 2)));
        for bad in ["", "intr 1 2 3", "cpu  1 2 3", "cpu  1 2 x 4 5 6 7 8"] {
            assert_eq!(cpu_ticks(bad), None, "{bad:?}");
        }
        // On this machine's own file (Linux CI), when there is one: a reading, no more busy time than there is.
        if let Some(o) = other_load(std::time::Duration::from_millis(50)) {
            let cpus = cpu_ticks(&std::fs::read_to_string("/proc/stat").unwrap())
                .unwrap()
                .3;
            assert!(
                o.busy_cores >= 0.0 && o.busy_cores <= cpus as f64 + 1e-9,
                "{o:?}"
            );
            assert!(o.steal_cores <= o.busy_cores + 1e-9, "{o:?}");
        }
    }

    #[test]
    fn shapes_parse_and_bad_ones_are_explained() {
        let c: Case = "gru:32,100,64,128".parse().unwrap();
        assert_eq!(
            (c.kind, c.batch, c.steps, c.features, c.units),
            (Kind::Gru, 32, 100, 64, 128)
        );
        assert!(!c.given_state);
        // 2 * b * (t * f + (t - 1) * u) * 3u: from the zero state the first step has no `h R`.
        assert_eq!(
            c.flops(),
            2.0 * 32.0 * (100.0 * 64.0 + 99.0 * 128.0) * 384.0
        );
        // With a given state, 2 * b * t * (f + u) * 3u.
        let s = Case {
            given_state: true,
            ..c
        };
        assert_eq!(s.flops(), 2.0 * 32.0 * 100.0 * 192.0 * 384.0);
        assert_eq!(c.label(), "gru 32,100,64,128");
        assert_eq!(s.label(), "gru 32,100,64,128 +state");
        for bad in [
            "lstm",
            "conv:1,2,3,4",
            "lstm:1,2,3",
            "lstm:1,2,x,4",
            "lstm:0,1,1,1",
        ] {
            let err = bad.parse::<Case>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        for case in DEFAULT_CASES {
            case.parse::<Case>().unwrap();
        }
    }
}
