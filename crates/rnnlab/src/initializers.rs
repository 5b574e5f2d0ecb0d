//! Keras 3 weight initializers (`keras.initializers`) and the global seed unseeded ones draw from.
//!
//! Every initializer has Keras' name, parameters, defaults and serialized form
//! (`{"module": "keras.initializers", "class_name": ..., "config": {...}, "registered_name": null}`), and samples
//! from the same distribution as Keras 3 (`keras/src/initializers/random_initializers.py` and
//! `constant_initializers.py`). The random streams themselves cannot match Keras bit for bit.
//!
//! Seeding: an initializer with `seed: Some(s)` returns the same values on every call, as a Keras 3 initializer
//! seeded with an integer does. An unseeded one draws a fresh sub-seed from one process-wide generator on every
//! call; [`set_random_seed`] reseeds that generator (like `keras.utils.set_random_seed`), so a program that builds
//! its weights in the same order prints the same numbers on every run. Before any [`set_random_seed`] the global
//! generator is seeded from the operating system's entropy. (Keras 3 fixes an unseeded initializer's seed when the
//! object is created, so calling one Keras instance twice repeats its values; rnnlab's initializers are plain
//! values, so every unseeded call draws anew, as every newly built Keras layer does.)

use std::sync::PoisonError;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayD, ArrayViewMut2, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// A weight initializer, named and parameterised as in Keras 3 (`keras.initializers`).
///
/// The random variants take `seed: Option<u64>`: `Some(s)` makes every call return the same values, `None`
/// draws from the global generator (see [`set_random_seed`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros (`"zeros"`, `keras.initializers.Zeros`).
    Zeros,
    /// All ones (`"ones"`, `keras.initializers.Ones`).
    Ones,
    /// Every element equal to the value (`"constant"`, `keras.initializers.Constant`; Keras default 0.0).
    Constant(f32),
    /// Uniform in `[-limit, limit]`, `limit = sqrt(6 / (fan_in + fan_out))` (`"glorot_uniform"`).
    GlorotUniform {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Truncated normal with `stddev = sqrt(2 / (fan_in + fan_out))` after truncation (`"glorot_normal"`).
    GlorotNormal {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Truncated normal with `stddev = sqrt(2 / fan_in)` after truncation (`"he_normal"`).
    HeNormal {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Uniform in `[-limit, limit]`, `limit = sqrt(6 / fan_in)` (`"he_uniform"`).
    HeUniform {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Truncated normal with `stddev = sqrt(1 / fan_in)` after truncation (`"lecun_normal"`).
    LecunNormal {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Uniform in `[-limit, limit]`, `limit = sqrt(3 / fan_in)` (`"lecun_uniform"`).
    LecunUniform {
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// A random orthogonal matrix (QR of a normal matrix), times `gain` (`"orthogonal"`).
    /// Shapes of rank > 2 are treated as `(prod(shape[:-1]), shape[-1])`.
    Orthogonal {
        /// Multiplicative factor (Keras default 1.0).
        gain: f32,
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Normal distribution (`"random_normal"`, Keras defaults mean 0.0, stddev 0.05).
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Uniform distribution in `[minval, maxval)` (`"random_uniform"`, Keras defaults -0.05, 0.05).
    RandomUniform {
        /// Lower bound (inclusive).
        minval: f32,
        /// Upper bound (exclusive).
        maxval: f32,
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// Normal distribution with values beyond two standard deviations redrawn (`"truncated_normal"`,
    /// Keras defaults mean 0.0, stddev 0.05; `stddev` is that of the untruncated distribution).
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation before truncation.
        stddev: f32,
        /// Fixed seed, or `None` for the global generator.
        seed: Option<u64>,
    },
    /// `gain` times the identity matrix; 2-D shapes only (`"identity"`, Keras default gain 1.0).
    Identity {
        /// Multiplicative factor.
        gain: f32,
    },
}

/// Every name [`Initializer::from_name`] accepts, as listed in its error message.
const KNOWN_NAMES: &[&str] = &[
    "zeros",
    "ones",
    "constant",
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "identity",
    "variance_scaling",
    "zero",
    "one",
    "normal",
    "uniform",
    "Zeros",
    "Ones",
    "Constant",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "Identity",
    "IdentityInitializer",
    "VarianceScaling",
];

/// The Keras module every built-in initializer is serialized under.
const KERAS_MODULE: &str = "keras.initializers";

/// The standard deviation of a standard normal truncated to `[-2, 2]`: Keras' `VarianceScaling` divides by it so
/// that the truncated values have the intended standard deviation.
const TRUNCATION_STDDEV: f64 = 0.879_625_661_034_239_8; // Keras: 0.87962566103423978

/// Seeds the global generator that unseeded initializers draw from (like `keras.utils.set_random_seed`).
///
/// After `set_random_seed(s)`, the same sequence of unseeded `sample` calls returns the same values.
pub fn set_random_seed(seed: u64) {
    let mut guard = crate::process::state()
        .rng
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    *guard = Some(StdRng::seed_from_u64(seed));
}

/// The generator for one `sample` call: from the fixed seed, or from a sub-seed of the global generator.
fn make_rng(seed: Option<u64>) -> StdRng {
    let seed = match seed {
        Some(seed) => seed,
        None => {
            let mut guard = crate::process::state()
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            guard.get_or_insert_with(StdRng::from_os_rng).next_u64()
        }
    };
    StdRng::seed_from_u64(seed)
}

/// A generator seeded from the global one (so `set_random_seed` makes training runs repeatable too).
pub(crate) fn fork_global_rng() -> StdRng {
    make_rng(None)
}

/// How `VarianceScaling` counts units.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FanMode {
    In,
    Avg,
}

/// Which distribution `VarianceScaling` draws from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Distribution {
    TruncatedNormal,
    Uniform,
}

/// A shape in Keras/Python tuple notation: `()`, `(4,)`, `(3, 4)`.
fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Keras' `compute_fans`: `(fan_in, fan_out)` of a weight shape.
fn compute_fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [rows, cols] => (*rows as f64, *cols as f64),
        [head @ .., rows, cols] => {
            let receptive: f64 = head.iter().map(|&d| d as f64).product();
            (*rows as f64 * receptive, *cols as f64 * receptive)
        }
    }
}

/// A finite `f32` as the JSON number Python would write for the same decimal (`0.05`, not `0.0500000007`).
fn json_f32(x: f32) -> Value {
    let shortest: f64 = x.to_string().parse().unwrap_or(f64::from(x));
    Value::from(shortest)
}

fn json_seed(seed: Option<u64>) -> Value {
    seed.map_or(Value::Null, Value::from)
}

impl Initializer {
    /// `GlorotUniform` with no seed (Keras' default kernel initializer).
    pub fn glorot_uniform() -> Self {
        Initializer::GlorotUniform { seed: None }
    }

    /// `GlorotNormal` with no seed.
    pub fn glorot_normal() -> Self {
        Initializer::GlorotNormal { seed: None }
    }

    /// `HeNormal` with no seed.
    pub fn he_normal() -> Self {
        Initializer::HeNormal { seed: None }
    }

    /// `HeUniform` with no seed.
    pub fn he_uniform() -> Self {
        Initializer::HeUniform { seed: None }
    }

    /// `LecunNormal` with no seed.
    pub fn lecun_normal() -> Self {
        Initializer::LecunNormal { seed: None }
    }

    /// `LecunUniform` with no seed.
    pub fn lecun_uniform() -> Self {
        Initializer::LecunUniform { seed: None }
    }

    /// `Orthogonal` with gain 1.0 and no seed (Keras' default recurrent initializer).
    pub fn orthogonal() -> Self {
        Initializer::Orthogonal {
            gain: 1.0,
            seed: None,
        }
    }

    /// `RandomNormal` with Keras' defaults: mean 0.0, stddev 0.05, no seed.
    pub fn random_normal() -> Self {
        Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.05,
            seed: None,
        }
    }

    /// `RandomUniform` with Keras' defaults: minval -0.05, maxval 0.05, no seed.
    pub fn random_uniform() -> Self {
        Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: None,
        }
    }

    /// `TruncatedNormal` with Keras' defaults: mean 0.0, stddev 0.05, no seed.
    pub fn truncated_normal() -> Self {
        Initializer::TruncatedNormal {
            mean: 0.0,
            stddev: 0.05,
            seed: None,
        }
    }

    /// `Identity` with gain 1.0.
    pub fn identity() -> Self {
        Initializer::Identity { gain: 1.0 }
    }

    /// `Constant(value)`.
    pub fn constant(value: f32) -> Self {
        Initializer::Constant(value)
    }

    /// `Zeros` (Keras' default bias initializer).
    pub fn zeros() -> Self {
        Initializer::Zeros
    }

    /// `Ones`.
    pub fn ones() -> Self {
        Initializer::Ones
    }

    /// The same initializer with a fixed seed; a no-op for the non-random ones (zeros, ones, constant, identity).
    pub fn with_seed(mut self, new_seed: u64) -> Self {
        match &mut self {
            Initializer::GlorotUniform { seed }
            | Initializer::GlorotNormal { seed }
            | Initializer::HeNormal { seed }
            | Initializer::HeUniform { seed }
            | Initializer::LecunNormal { seed }
            | Initializer::LecunUniform { seed }
            | Initializer::Orthogonal { seed, .. }
            | Initializer::RandomNormal { seed, .. }
            | Initializer::RandomUniform { seed, .. }
            | Initializer::TruncatedNormal { seed, .. } => *seed = Some(new_seed),
            Initializer::Zeros
            | Initializer::Ones
            | Initializer::Constant(_)
            | Initializer::Identity { .. } => {}
        }
        self
    }

    /// The Keras class name: `"GlorotUniform"`, `"Orthogonal"`, `"Zeros"`, ...
    pub fn class_name(&self) -> &'static str {
        match self {
            Initializer::Zeros => "Zeros",
            Initializer::Ones => "Ones",
            Initializer::Constant(_) => "Constant",
            Initializer::GlorotUniform { .. } => "GlorotUniform",
            Initializer::GlorotNormal { .. } => "GlorotNormal",
            Initializer::HeNormal { .. } => "HeNormal",
            Initializer::HeUniform { .. } => "HeUniform",
            Initializer::LecunNormal { .. } => "LecunNormal",
            Initializer::LecunUniform { .. } => "LecunUniform",
            Initializer::Orthogonal { .. } => "Orthogonal",
            Initializer::RandomNormal { .. } => "RandomNormal",
            Initializer::RandomUniform { .. } => "RandomUniform",
            Initializer::TruncatedNormal { .. } => "TruncatedNormal",
            Initializer::Identity { .. } => "Identity",
        }
    }

    /// Context for error messages, e.g. `Initializer "Orthogonal"`.
    fn context(&self) -> String {
        format!("Initializer \"{}\"", self.class_name())
    }

    /// Draws (or builds) an array of the given shape, as the Keras initializer called with `shape` would.
    ///
    /// ```
    /// use rnnlab::Initializer;
    /// let w = Initializer::glorot_uniform().with_seed(1).sample(&[3, 16]).unwrap();
    /// assert_eq!(w.shape(), &[3, 16]);
    /// let limit = (6.0f32 / 19.0).sqrt();
    /// assert!(w.iter().all(|x| x.abs() <= limit));
    /// ```
    ///
    /// # Errors
    /// `Identity` on a shape that is not 2-D, `Orthogonal` on a shape of rank < 2, a non-finite parameter of a
    /// random initializer, or a shape whose element count overflows.
    pub fn sample(&self, shape: &[usize]) -> Result<ArrayD<f32>> {
        const TRUNCATED: Distribution = Distribution::TruncatedNormal;
        let len = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= isize::MAX as usize / std::mem::size_of::<f64>())
            .ok_or_else(|| {
                Error::invalid(
                    self.context(),
                    "shape",
                    "a shape whose element count fits in memory",
                    fmt_shape(shape),
                )
            })?;
        match *self {
            Initializer::Zeros => Ok(ArrayD::zeros(IxDyn(shape))),
            Initializer::Ones => Ok(ArrayD::ones(IxDyn(shape))),
            Initializer::Constant(value) => Ok(ArrayD::from_elem(IxDyn(shape), value)),
            Initializer::Identity { gain } => {
                let &[rows, cols] = shape else {
                    return Err(Error::invalid(
                        self.context(),
                        "shape",
                        "a 2-D shape (the identity initializer only builds matrices)",
                        format!("{} of rank {}", fmt_shape(shape), shape.len()),
                    ));
                };
                let mut out = ArrayD::zeros(IxDyn(shape));
                for i in 0..rows.min(cols) {
                    out[[i, i]] = gain;
                }
                Ok(out)
            }
            Initializer::GlorotUniform { seed } => {
                self.variance_scaling(shape, len, 1.0, FanMode::Avg, Distribution::Uniform, seed)
            }
            Initializer::GlorotNormal { seed } => {
                self.variance_scaling(shape, len, 1.0, FanMode::Avg, TRUNCATED, seed)
            }
            Initializer::HeNormal { seed } => {
                self.variance_scaling(shape, len, 2.0, FanMode::In, TRUNCATED, seed)
            }
            Initializer::HeUniform { seed } => {
                self.variance_scaling(shape, len, 2.0, FanMode::In, Distribution::Uniform, seed)
            }
            Initializer::LecunNormal { seed } => {
                self.variance_scaling(shape, len, 1.0, FanMode::In, TRUNCATED, seed)
            }
            Initializer::LecunUniform { seed } => {
                self.variance_scaling(shape, len, 1.0, FanMode::In, Distribution::Uniform, seed)
            }
            Initializer::RandomNormal { mean, stddev, seed } => {
                self.check_finite(&[("mean", mean), ("stddev", stddev)])?;
                let (mean, stddev) = (f64::from(mean), f64::from(stddev));
                let mut rng = make_rng(seed);
                self.build(shape, len, || {
                    let z: f64 = rng.sample(StandardNormal);
                    (mean + stddev * z) as f32
                })
            }
            Initializer::TruncatedNormal { mean, stddev, seed } => {
                self.check_finite(&[("mean", mean), ("stddev", stddev)])?;
                let (mean, stddev) = (f64::from(mean), f64::from(stddev));
                let mut rng = make_rng(seed);
                self.build(shape, len, || {
                    (mean + stddev * truncated_standard_normal(&mut rng)) as f32
                })
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => {
                self.check_finite(&[("minval", minval), ("maxval", maxval)])?;
                let (minval, maxval) = (f64::from(minval), f64::from(maxval));
                let mut rng = make_rng(seed);
                self.build(shape, len, || {
                    let u: f64 = rng.random();
                    (minval + (maxval - minval) * u) as f32
                })
            }
            Initializer::Orthogonal { gain, seed } => {
                self.check_finite(&[("gain", gain)])?;
                self.orthogonal_sample(shape, len, gain, seed)
            }
        }
    }

    /// Rejects NaN and infinite parameters of the random initializers.
    fn check_finite(&self, params: &[(&str, f32)]) -> Result<()> {
        match params.iter().find(|(_, v)| !v.is_finite()) {
            Some((name, v)) => Err(Error::invalid(self.context(), *name, "a finite number", v)),
            None => Ok(()),
        }
    }

    /// An array of `shape` filled, in row-major order, by `next`.
    fn build(
        &self,
        shape: &[usize],
        len: usize,
        mut next: impl FnMut() -> f32,
    ) -> Result<ArrayD<f32>> {
        let data: Vec<f32> = (0..len).map(|_| next()).collect();
        ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| {
            Error::invalid(
                self.context(),
                "shape",
                format!("a valid array shape ({e})"),
                fmt_shape(shape),
            )
        })
    }

    /// Keras' `VarianceScaling.__call__` for the six named variants.
    fn variance_scaling(
        &self,
        shape: &[usize],
        len: usize,
        scale: f64,
        mode: FanMode,
        distribution: Distribution,
        seed: Option<u64>,
    ) -> Result<ArrayD<f32>> {
        let (fan_in, fan_out) = compute_fans(shape);
        let n = match mode {
            FanMode::In => fan_in,
            FanMode::Avg => (fan_in + fan_out) / 2.0,
        };
        let scale = scale / n.max(1.0);
        let mut rng = make_rng(seed);
        match distribution {
            Distribution::TruncatedNormal => {
                let stddev = scale.sqrt() / TRUNCATION_STDDEV;
                self.build(shape, len, || {
                    (stddev * truncated_standard_normal(&mut rng)) as f32
                })
            }
            Distribution::Uniform => {
                let limit = (3.0 * scale).sqrt();
                self.build(shape, len, || {
                    let u: f64 = rng.random();
                    (limit * (2.0 * u - 1.0)) as f32
                })
            }
        }
    }

    /// Keras' `Orthogonal.__call__`: QR of a `(max(rows, cols), min(rows, cols))` normal matrix.
    fn orthogonal_sample(
        &self,
        shape: &[usize],
        len: usize,
        gain: f32,
        seed: Option<u64>,
    ) -> Result<ArrayD<f32>> {
        let Some((&cols, head)) = shape.split_last().filter(|_| shape.len() >= 2) else {
            return Err(Error::invalid(
                self.context(),
                "shape",
                "a shape of rank at least 2",
                format!("{} of rank {}", fmt_shape(shape), shape.len()),
            ));
        };
        let rows: usize = head.iter().product();
        let mut rng = make_rng(seed);
        if len == 0 {
            return Ok(ArrayD::zeros(IxDyn(shape)));
        }
        let (m, n) = (rows.max(cols), rows.min(cols));
        let mut a: Vec<f64> = (0..m * n).map(|_| rng.sample(StandardNormal)).collect();
        // `q` is m×n, column-major: column j is q[j*m..(j+1)*m].
        let q = householder_q(&mut a, m, n);
        let gain = f64::from(gain);
        let data: Vec<f32> = if rows >= cols {
            // Row-major (rows × cols) output from column-major q (rows × cols).
            (0..rows)
                .flat_map(|i| (0..cols).map(move |j| (i, j)))
                .map(|(i, j)| (gain * q[j * m + i]) as f32)
                .collect()
        } else {
            // q is (cols × rows) column-major, so its buffer is qᵀ (rows × cols) in row-major order.
            q.iter().map(|&x| (gain * x) as f32).collect()
        };
        ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| {
            Error::invalid(
                self.context(),
                "shape",
                format!("a valid array shape ({e})"),
                fmt_shape(shape),
            )
        })
    }

    /// Looks an initializer up by its Keras name, with Keras' defaults: the snake_case function names
    /// (`"glorot_uniform"`, ...), the class names (`"GlorotUniform"`, ...) and Keras' aliases (`"normal"`,
    /// `"uniform"`, `"zero"`, `"one"`, `"OrthogonalInitializer"`, `"IdentityInitializer"`). As in Keras,
    /// `"variance_scaling"` with its defaults (scale 1, fan_in, truncated normal) is `LecunNormal`.
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn from_name(name: &str) -> Result<Initializer> {
        Ok(match name {
            "zeros" | "zero" | "Zeros" => Initializer::Zeros,
            "ones" | "one" | "Ones" => Initializer::Ones,
            "constant" | "Constant" => Initializer::Constant(0.0),
            "glorot_uniform" | "GlorotUniform" => Initializer::glorot_uniform(),
            "glorot_normal" | "GlorotNormal" => Initializer::glorot_normal(),
            "he_normal" | "HeNormal" => Initializer::he_normal(),
            "he_uniform" | "HeUniform" => Initializer::he_uniform(),
            "lecun_normal" | "LecunNormal" | "variance_scaling" | "VarianceScaling" => {
                Initializer::lecun_normal()
            }
            "lecun_uniform" | "LecunUniform" => Initializer::lecun_uniform(),
            "orthogonal" | "Orthogonal" | "OrthogonalInitializer" => Initializer::orthogonal(),
            "random_normal" | "RandomNormal" | "normal" => Initializer::random_normal(),
            "random_uniform" | "RandomUniform" | "uniform" => Initializer::random_uniform(),
            "truncated_normal" | "TruncatedNormal" => Initializer::truncated_normal(),
            "identity" | "Identity" | "IdentityInitializer" => Initializer::identity(),
            "stft" | "STFT" | "STFTInitializer" => {
                return Err(Error::Unsupported(format!(
                    "initializer '{name}' (keras.initializers.STFT) is not supported by rnnlab"
                )))
            }
            _ => return Err(Error::unknown("initializer", name, KNOWN_NAMES)),
        })
    }

    /// Reads an initializer from a Keras config: a name (see [`Initializer::from_name`]) or the Keras 3 serialized
    /// dict `{"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null, ...},
    /// "registered_name": null}`. Keras 2 dicts without `module` are accepted too; missing config keys take Keras'
    /// defaults. A `VarianceScaling` config is accepted when it equals one of the named variants (Glorot, He,
    /// Lecun).
    ///
    /// # Errors
    /// A value that is neither a string nor a dict, an unknown class name, an unexpected or mistyped config key,
    /// a negative seed; [`Error::Unsupported`] for custom initializers, `SeedGenerator` seeds and non-null
    /// `input_axes`/`output_axes`.
    pub fn from_config(v: &Value) -> Result<Initializer> {
        let obj = match v {
            Value::String(name) => return Initializer::from_name(name),
            Value::Object(obj) => obj,
            other => {
                return Err(Error::format(
                    "initializer config",
                    format!("expected an initializer name or a {{\"class_name\", \"config\"}} dict, received {other}"),
                ))
            }
        };
        let class_name = match obj.get("class_name") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(Error::format(
                    "initializer config",
                    format!("`class_name` must be a string, received {other}"),
                ))
            }
            None => {
                return Err(Error::format(
                    "initializer config",
                    format!("missing `class_name` in {v}"),
                ))
            }
        };
        match obj.get("module") {
            None | Some(Value::Null) => {}
            Some(Value::String(m)) if m == "keras" || m.starts_with("keras.") => {}
            Some(other) => {
                return Err(Error::Unsupported(format!(
                "custom initializer '{class_name}' from module {other} is not supported by rnnlab"
            )))
            }
        }
        match obj.get("registered_name") {
            None | Some(Value::Null) => {}
            Some(Value::String(r)) if r == class_name => {}
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "custom initializer '{class_name}' (registered as {other}) is not supported by rnnlab"
                )))
            }
        }
        let empty = Map::new();
        let config = match obj.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(c)) => c,
            Some(other) => {
                return Err(Error::format(
                    format!("initializer '{class_name}' config"),
                    format!("`config` must be a dict, received {other}"),
                ))
            }
        };
        let cfg = Cfg { class_name, config };
        // The class defaults, then the config's values over them.
        let base = match class_name {
            "VarianceScaling" | "variance_scaling" => return cfg.variance_scaling(),
            _ => Initializer::from_name(class_name)?,
        };
        Ok(match base {
            Initializer::Zeros | Initializer::Ones => {
                cfg.check_keys(&[])?;
                base
            }
            Initializer::Constant(_) => {
                cfg.check_keys(&["value"])?;
                Initializer::Constant(cfg.number("value", 0.0)?)
            }
            Initializer::Identity { .. } => {
                cfg.check_keys(&["gain"])?;
                Initializer::Identity {
                    gain: cfg.number("gain", 1.0)?,
                }
            }
            Initializer::GlorotUniform { .. }
            | Initializer::GlorotNormal { .. }
            | Initializer::HeNormal { .. }
            | Initializer::HeUniform { .. }
            | Initializer::LecunNormal { .. }
            | Initializer::LecunUniform { .. } => {
                cfg.check_keys(&["seed", "input_axes", "output_axes"])?;
                cfg.no_axes()?;
                match cfg.seed()? {
                    Some(seed) => base.with_seed(seed),
                    None => base,
                }
            }
            Initializer::Orthogonal { .. } => {
                cfg.check_keys(&["seed", "gain"])?;
                Initializer::Orthogonal {
                    gain: cfg.number("gain", 1.0)?,
                    seed: cfg.seed()?,
                }
            }
            Initializer::RandomNormal { .. } => {
                cfg.check_keys(&["seed", "mean", "stddev"])?;
                Initializer::RandomNormal {
                    mean: cfg.number("mean", 0.0)?,
                    stddev: cfg.number("stddev", 0.05)?,
                    seed: cfg.seed()?,
                }
            }
            Initializer::TruncatedNormal { .. } => {
                cfg.check_keys(&["seed", "mean", "stddev"])?;
                Initializer::TruncatedNormal {
                    mean: cfg.number("mean", 0.0)?,
                    stddev: cfg.number("stddev", 0.05)?,
                    seed: cfg.seed()?,
                }
            }
            Initializer::RandomUniform { .. } => {
                cfg.check_keys(&["seed", "minval", "maxval"])?;
                Initializer::RandomUniform {
                    minval: cfg.number("minval", -0.05)?,
                    maxval: cfg.number("maxval", 0.05)?,
                    seed: cfg.seed()?,
                }
            }
        })
    }

    /// The Keras 3 serialized dict, with the keys in the order Keras 3.15 writes them, e.g.
    /// `{"module": "keras.initializers", "class_name": "Orthogonal", "config": {"seed": null, "gain": 1.0},
    /// "registered_name": null}`.
    pub fn to_config(&self) -> Value {
        let config = match *self {
            Initializer::Zeros | Initializer::Ones => json!({}),
            Initializer::Constant(value) => json!({ "value": json_f32(value) }),
            Initializer::Identity { gain } => json!({ "gain": json_f32(gain) }),
            Initializer::GlorotUniform { seed }
            | Initializer::GlorotNormal { seed }
            | Initializer::HeNormal { seed }
            | Initializer::HeUniform { seed }
            | Initializer::LecunNormal { seed }
            | Initializer::LecunUniform { seed } => {
                json!({ "seed": json_seed(seed), "input_axes": null, "output_axes": null })
            }
            Initializer::Orthogonal { gain, seed } => {
                json!({ "seed": json_seed(seed), "gain": json_f32(gain) })
            }
            Initializer::RandomNormal { mean, stddev, seed }
            | Initializer::TruncatedNormal { mean, stddev, seed } => {
                json!({ "seed": json_seed(seed), "mean": json_f32(mean), "stddev": json_f32(stddev) })
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => {
                json!({ "seed": json_seed(seed), "minval": json_f32(minval), "maxval": json_f32(maxval) })
            }
        };
        json!({
            "module": KERAS_MODULE,
            "class_name": self.class_name(),
            "config": config,
            "registered_name": null,
        })
    }
}

/// One initializer's `config` dict, for reading its values with clear errors.
struct Cfg<'a> {
    class_name: &'a str,
    config: &'a Map<String, Value>,
}

impl Cfg<'_> {
    fn what(&self) -> String {
        format!("initializer '{}' config", self.class_name)
    }

    fn context(&self) -> String {
        format!("Initializer \"{}\"", self.class_name)
    }

    /// Rejects keys the Keras class would not accept as constructor arguments.
    fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        match self.config.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(Error::format(
                self.what(),
                if allowed.is_empty() {
                    format!("unexpected key `{key}`; this initializer takes no arguments")
                } else {
                    format!(
                        "unexpected key `{key}`; expected keys: {}",
                        allowed.join(", ")
                    )
                },
            )),
            None => Ok(()),
        }
    }

    /// A numeric value (also a serialized scalar tensor / numpy value), or `default` when absent.
    fn number(&self, key: &str, default: f32) -> Result<f32> {
        let Some(v) = self.config.get(key) else {
            return Ok(default);
        };
        // Keras writes a scalar tensor as {"class_name": "__tensor__", "config": {"value": 0.5, ...}}.
        let is_scalar_object = |o: &Map<String, Value>| {
            matches!(
                o.get("class_name").and_then(Value::as_str),
                Some("__tensor__" | "__numpy__")
            )
        };
        let scalar = match v {
            Value::Object(o) if is_scalar_object(o) => o.get("config").and_then(|c| c.get("value")),
            other => Some(other),
        };
        scalar
            .and_then(Value::as_f64)
            .map(|x| x as f32)
            .ok_or_else(|| {
                Error::format(
                    self.what(),
                    format!("`{key}` must be a number, received {v}"),
                )
            })
    }

    /// The `seed`: null/absent, or a non-negative integer.
    fn seed(&self) -> Result<Option<u64>> {
        match self.config.get("seed") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(s) = n.as_u64() {
                    Ok(Some(s))
                } else if n.is_i64() {
                    Err(Error::invalid(self.context(), "seed", "a non-negative integer or null", n))
                } else {
                    Err(Error::format(self.what(), format!("`seed` must be an integer or null, received {n}")))
                }
            }
            Some(Value::Object(_)) => Err(Error::Unsupported(format!(
                "{}: a `keras.random.SeedGenerator` seed is not supported by rnnlab; use an integer seed",
                self.what()
            ))),
            Some(other) => Err(Error::format(self.what(), format!("`seed` must be an integer or null, received {other}"))),
        }
    }

    /// `input_axes` / `output_axes` must be null: rnnlab computes fans from the shape only.
    fn no_axes(&self) -> Result<()> {
        for key in ["input_axes", "output_axes"] {
            match self.config.get(key) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    return Err(Error::Unsupported(format!(
                    "{}: `{key}` = {v} is not supported by rnnlab (only null, fans from the shape)",
                    self.what()
                )))
                }
            }
        }
        Ok(())
    }

    /// A `VarianceScaling` config, mapped onto the named variant it equals.
    fn variance_scaling(&self) -> Result<Initializer> {
        self.check_keys(&[
            "scale",
            "mode",
            "distribution",
            "seed",
            "input_axes",
            "output_axes",
        ])?;
        self.no_axes()?;
        let scale = self.number("scale", 1.0)?;
        if scale.is_nan() || scale <= 0.0 {
            return Err(Error::invalid(
                self.context(),
                "scale",
                "a positive number",
                scale,
            ));
        }
        let text = |key: &str, default: &'static str| -> Result<String> {
            match self.config.get(key) {
                None => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(Error::format(
                    self.what(),
                    format!("`{key}` must be a string, received {other}"),
                )),
            }
        };
        let mode = text("mode", "fan_in")?;
        let mode = match mode.as_str() {
            "fan_in" => Some(FanMode::In),
            "fan_avg" => Some(FanMode::Avg),
            "fan_out" => None,
            _ => {
                return Err(Error::invalid(
                    self.context(),
                    "mode",
                    "one of fan_in, fan_out, fan_avg",
                    mode,
                ))
            }
        };
        let distribution = text("distribution", "truncated_normal")?.to_lowercase();
        let distribution = match distribution.as_str() {
            "truncated_normal" | "normal" => Some(Distribution::TruncatedNormal),
            "uniform" => Some(Distribution::Uniform),
            "untruncated_normal" => None,
            _ => {
                return Err(Error::invalid(
                    self.context(),
                    "distribution",
                    "one of uniform, truncated_normal, untruncated_normal",
                    distribution,
                ))
            }
        };
        use Distribution::{TruncatedNormal as Tn, Uniform as Un};
        use FanMode::{Avg, In};
        let named = match (scale, mode, distribution) {
            (1.0, Some(Avg), Some(Un)) => Initializer::glorot_uniform(),
            (1.0, Some(Avg), Some(Tn)) => Initializer::glorot_normal(),
            (2.0, Some(In), Some(Tn)) => Initializer::he_normal(),
            (2.0, Some(In), Some(Un)) => Initializer::he_uniform(),
            (1.0, Some(In), Some(Tn)) => Initializer::lecun_normal(),
            (1.0, Some(In), Some(Un)) => Initializer::lecun_uniform(),
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: VarianceScaling(scale={scale}, mode={:?}, distribution={:?}) is not supported by rnnlab; \
                     only the combinations of GlorotUniform/GlorotNormal/HeNormal/HeUniform/LecunNormal/LecunUniform are",
                    self.what(),
                    text("mode", "fan_in")?,
                    text("distribution", "truncated_normal")?,
                )))
            }
        };
        Ok(match self.seed()? {
            Some(seed) => named.with_seed(seed),
            None => named,
        })
    }
}

/// A standard normal value redrawn until it lies within two standard deviations.
fn truncated_standard_normal(rng: &mut StdRng) -> f64 {
    loop {
        let z: f64 = rng.sample(StandardNormal);
        if z.abs() <= 2.0 {
            return z;
        }
    }
}

/// Applies the Householder reflection `I - 2 v vᵀ` (unit `v`) to `x` in place.
fn reflect(v: &[f64], x: &mut [f64]) {
    let dot: f64 = v.iter().zip(x.iter()).map(|(a, b)| a * b).sum();
    for (xi, vi) in x.iter_mut().zip(v) {
        *xi -= 2.0 * dot * vi;
    }
}

/// Columns per panel of the blocked Householder QR.
const QR_PANEL: usize = 32;

/// The reduced `Q` (m×n, column-major) of the Householder QR of `a` (m×n, column-major, m ≥ n), with each column
/// multiplied by the sign of the matching diagonal entry of `R`, so that `R` has a positive diagonal (the unique
/// QR; what Keras gets from `q * sign(diag(r))`). `a` is overwritten by the partly reduced matrix.
///
/// Blocked (LAPACK's `dgeqrf` + `dorgqr` scheme): each panel of [`QR_PANEL`] columns is reduced column by column,
/// its reflectors are gathered as `H_1 ⋯ H_b = I - V T Vᵀ` (compact WY, `dlarft`), and the trailing columns and the
/// formation of `Q` use matrix products, which keeps a (512, 2048) recurrent kernel fast even in debug builds.
fn householder_q(a: &mut [f64], m: usize, n: usize) -> Vec<f64> {
    debug_assert!(m >= n && a.len() == m * n);
    // Column-major m×n is row-major n×m: row k of `at` is column k of A.
    let mut diag = vec![0.0f64; n];
    let mut blocks: Vec<(usize, Array2<f64>, Array2<f64>)> = Vec::new();
    for p in (0..n).step_by(QR_PANEL) {
        let b = QR_PANEL.min(n - p);
        let mp = m - p;
        let mut v_block = Array2::<f64>::zeros((mp, b));
        let mut taus = vec![0.0f64; b];
        // Unblocked reduction of the panel (columns p..p+b, rows p..m).
        for (j, tau) in taus.iter_mut().enumerate() {
            let k = p + j;
            let col = &a[k * m + k..(k + 1) * m];
            let norm = col.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                continue; // H = I: a zero column of V and tau 0.
            }
            let alpha = if col[0] >= 0.0 { -norm } else { norm };
            let mut v = col.to_vec();
            v[0] -= alpha;
            let v_norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= v_norm);
            for c in k..p + b {
                reflect(&v, &mut a[c * m + k..(c + 1) * m]);
            }
            diag[k] = alpha;
            *tau = 2.0;
            for (dst, &x) in v_block.column_mut(j).iter_mut().skip(j).zip(&v) {
                *dst = x;
            }
        }
        // T (b×b, upper triangular) with H_1 ⋯ H_b = I - V T Vᵀ:
        // T[..j, j] = -tau_j T[..j, ..j] (V[:, ..j]ᵀ v_j).
        let vtv = v_block.t().dot(&v_block);
        let mut t = Array2::<f64>::zeros((b, b));
        for j in 0..b {
            t[[j, j]] = taus[j];
            for i in 0..j {
                let s: f64 = (i..j).map(|l| t[[i, l]] * vtv[[l, j]]).sum();
                t[[i, j]] = -taus[j] * s;
            }
        }
        // Trailing columns: C ← (I - V Tᵀ Vᵀ) C, i.e. Cᵀ ← Cᵀ - (Cᵀ V) T Vᵀ on the row-major transpose.
        if p + b < n {
            let mut at = ArrayViewMut2::from_shape((n, m), &mut *a).expect("n*m buffer");
            let mut ct = at.slice_mut(s![p + b.., p..]);
            let y = ct.dot(&v_block).dot(&t);
            general_mat_mul(-1.0, &y, &v_block.t(), 1.0, &mut ct);
        }
        blocks.push((p, v_block, t));
    }
    // Q = H_0 ⋯ H_{n-1} I[:, ..n], applying the blocks last to first. When block p is applied, columns j < p of Q
    // are still e_j (zero in rows ≥ p), so it only touches Q[p.., p..]; on the transpose:
    // Qᵀ[p.., p..] ← Qᵀ[p.., p..] - (Qᵀ[p.., p..] V) Tᵀ Vᵀ.
    let mut qt = Array2::<f64>::zeros((n, m));
    for j in 0..n {
        qt[[j, j]] = 1.0;
    }
    for (p, v_block, t) in blocks.iter().rev() {
        let mut sub = qt.slice_mut(s![*p.., *p..]);
        let y = sub.dot(v_block).dot(&t.t());
        general_mat_mul(-1.0, &y, &v_block.t(), 1.0, &mut sub);
    }
    for (mut row, d) in qt.rows_mut().into_iter().zip(&diag) {
        if *d < 0.0 {
            row.mapv_inplace(|x| -x);
        }
    }
    qt.into_raw_vec_and_offset().0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes the tests that use the global generator (tests run in parallel threads).
    static GLOBAL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn lock_global() -> std::sync::MutexGuard<'static, ()> {
        GLOBAL_LOCK.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mean_std(a: &ArrayD<f32>) -> (f64, f64) {
        let n = a.len() as f64;
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = a
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, want {want} ± {tol}"
        );
    }

    /// Every variant, with non-default parameters and seeds where they have them.
    fn all_variants() -> Vec<Initializer> {
        vec![
            Initializer::Zeros,
            Initializer::Ones,
            Initializer::Constant(0.1),
            Initializer::GlorotUniform { seed: Some(1) },
            Initializer::GlorotNormal { seed: None },
            Initializer::HeNormal { seed: Some(2) },
            Initializer::HeUniform { seed: None },
            Initializer::LecunNormal { seed: Some(3) },
            Initializer::LecunUniform {
                seed: Some(u64::MAX),
            },
            Initializer::Orthogonal {
                gain: 0.5,
                seed: Some(4),
            },
            Initializer::RandomNormal {
                mean: 1.5,
                stddev: 0.25,
                seed: Some(5),
            },
            Initializer::RandomUniform {
                minval: -1.0,
                maxval: 3.0,
                seed: None,
            },
            Initializer::TruncatedNormal {
                mean: -2.0,
                stddev: 0.3,
                seed: Some(6),
            },
            Initializer::Identity { gain: 2.5 },
        ]
    }

    #[test]
    fn shapes() {
        let shapes: &[&[usize]] = &[
            &[],
            &[5],
            &[3, 4],
            &[2, 3, 4],
            &[2, 2, 3, 5],
            &[0, 4],
            &[4, 0],
            &[0],
        ];
        for init in all_variants() {
            let init = init.with_seed(7);
            for &shape in shapes {
                let rank_ok = match init {
                    Initializer::Identity { .. } => shape.len() == 2,
                    Initializer::Orthogonal { .. } => shape.len() >= 2,
                    _ => true,
                };
                let got = init.sample(shape);
                if rank_ok {
                    let a = got.unwrap_or_else(|e| panic!("{init:?} {shape:?}: {e}"));
                    assert_eq!(a.shape(), shape, "{init:?}");
                    assert!(a.iter().all(|x| x.is_finite()));
                } else {
                    assert!(got.is_err(), "{init:?} should reject {shape:?}");
                }
            }
        }
    }

    #[test]
    fn constant_values() {
        assert!(Initializer::zeros()
            .sample(&[3, 2])
            .unwrap()
            .iter()
            .all(|&x| x == 0.0));
        assert!(Initializer::ones()
            .sample(&[3, 2, 2])
            .unwrap()
            .iter()
            .all(|&x| x == 1.0));
        assert!(Initializer::constant(0.1)
            .sample(&[7])
            .unwrap()
            .iter()
            .all(|&x| x == 0.1));
        assert_eq!(
            Initializer::constant(-3.0)
                .sample(&[])
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            vec![-3.0]
        );
        // Seeds do not apply to the non-random ones.
        assert_eq!(
            Initializer::constant(2.0).with_seed(3),
            Initializer::Constant(2.0)
        );
        assert_eq!(
            Initializer::identity().with_seed(3),
            Initializer::Identity { gain: 1.0 }
        );
    }

    #[test]
    fn identity_values() {
        let a = Initializer::Identity { gain: 2.0 }.sample(&[2, 3]).unwrap();
        let want = ndarray::array![[2.0f32, 0.0, 0.0], [0.0, 2.0, 0.0]].into_dyn();
        assert_eq!(a, want);
        let b = Initializer::identity().sample(&[3, 2]).unwrap();
        assert_eq!(
            b,
            ndarray::array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0]].into_dyn()
        );
        let err = Initializer::identity()
            .sample(&[2, 3, 4])
            .unwrap_err()
            .to_string();
        assert!(err.contains("(2, 3, 4)") && err.contains("rank 3"), "{err}");
        let err = Initializer::identity()
            .sample(&[4])
            .unwrap_err()
            .to_string();
        assert!(err.contains("(4,)"), "{err}");
    }

    /// Max |WᵀW − I| (or |WWᵀ − I| when rows < cols) of a 2-D sample, after dividing by `gain`.
    fn orthogonality_error(w: &ArrayD<f32>, gain: f32) -> f32 {
        let w = w
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .mapv(|x| x / gain);
        let g = if w.nrows() >= w.ncols() {
            w.t().dot(&w)
        } else {
            w.dot(&w.t())
        };
        let mut worst = 0.0f32;
        for ((i, j), &x) in g.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((x - want).abs());
        }
        worst
    }

    #[test]
    fn orthogonal_is_orthogonal() {
        for shape in [[4usize, 16], [16, 4], [3, 3], [1, 5], [5, 1], [64, 256]] {
            for seed in 0..5 {
                let w = Initializer::orthogonal()
                    .with_seed(seed)
                    .sample(&shape)
                    .unwrap();
                let err = orthogonality_error(&w, 1.0);
                assert!(err < 1e-5, "{shape:?} seed {seed}: |QᵀQ - I| = {err}");
            }
        }
        // Gain scales the matrix: same seed, values times gain.
        let base = Initializer::Orthogonal {
            gain: 1.0,
            seed: Some(9),
        }
        .sample(&[6, 4])
        .unwrap();
        let scaled = Initializer::Orthogonal {
            gain: 3.0,
            seed: Some(9),
        }
        .sample(&[6, 4])
        .unwrap();
        for (a, b) in base.iter().zip(scaled.iter()) {
            assert!((a * 3.0 - b).abs() < 1e-6);
        }
        assert!(orthogonality_error(&scaled, 3.0) < 1e-5);
        // Rank > 2: a (2*3, 4) matrix reshaped.
        let w = Initializer::orthogonal()
            .with_seed(1)
            .sample(&[2, 3, 4])
            .unwrap();
        let flat = w.into_shape_with_order(IxDyn(&[6, 4])).unwrap();
        assert!(orthogonality_error(&flat, 1.0) < 1e-5);
        let err = Initializer::orthogonal()
            .sample(&[4])
            .unwrap_err()
            .to_string();
        assert!(err.contains("(4,)") && err.contains("rank 1"), "{err}");
    }

    #[test]
    fn orthogonal_is_uniform_over_signs() {
        // With the sign fix, Q has no bias toward positive entries on its diagonal (Haar distribution).
        let mut positive = 0;
        for seed in 0..400 {
            let w = Initializer::orthogonal()
                .with_seed(seed)
                .sample(&[3, 3])
                .unwrap();
            positive += usize::from(w[[0, 0]] > 0.0);
        }
        assert!((150..250).contains(&positive), "{positive} of 400 positive");
    }

    #[test]
    fn householder_matches_definition() {
        // QᵀQ = I and R = QᵀA upper triangular with a positive diagonal, for one panel, several panels, a
        // partial last panel, square and tall matrices, and a rank-deficient one (zero column).
        for (m, n) in [
            (5usize, 3usize),
            (1, 1),
            (7, 7),
            (40, 32),
            (100, 70),
            (65, 65),
            (90, 33),
        ] {
            let mut rng = StdRng::seed_from_u64((m * 1000 + n) as u64);
            let mut a: Vec<f64> = (0..m * n).map(|_| rng.sample(StandardNormal)).collect();
            if n == 33 {
                a[5 * m..6 * m].iter_mut().for_each(|x| *x = 0.0);
            }
            let q = householder_q(&mut a.clone(), m, n);
            let col = |buf: &[f64], j: usize| buf[j * m..(j + 1) * m].to_vec();
            let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
            for j in 0..n {
                for k in 0..n {
                    let qq = dot(&col(&q, k), &col(&q, j));
                    let want = if j == k { 1.0 } else { 0.0 };
                    assert!(
                        (qq - want).abs() < 1e-12,
                        "({m}, {n}): (QᵀQ)[{k},{j}] = {qq}"
                    );
                    let r = dot(&col(&q, k), &col(&a, j));
                    if k > j {
                        assert!(r.abs() < 1e-10, "({m}, {n}): R[{k},{j}] = {r}");
                    }
                    if k == j && !(n == 33 && j == 5) {
                        assert!(r > 0.0, "({m}, {n}): R[{k},{k}] = {r}");
                    }
                }
                // Q R reproduces A.
                if n != 33 {
                    for i in 0..m {
                        let qr: f64 = (0..=j)
                            .map(|k| q[k * m + i] * dot(&col(&q, k), &col(&a, j)))
                            .sum();
                        assert!(
                            (qr - a[j * m + i]).abs() < 1e-10,
                            "({m}, {n}): (QR)[{i},{j}]"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn glorot_uniform_bounds() {
        let limit = (6.0f64 / 19.0).sqrt() as f32;
        let w = Initializer::glorot_uniform()
            .with_seed(3)
            .sample(&[3, 16])
            .unwrap();
        assert!(w.iter().all(|x| x.abs() <= limit));
        let big = Initializer::glorot_uniform()
            .with_seed(4)
            .sample(&[3, 16, 1000])
            .unwrap();
        let max = big.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // fans of (3, 16, 1000): rf 3, fan_in 48, fan_out 3000.
        let limit = (6.0f64 / (48.0 + 3000.0)).sqrt() as f32;
        assert!(
            max <= limit && max > 0.99 * limit,
            "max {max}, limit {limit}"
        );
    }

    #[test]
    fn fans() {
        assert_eq!(compute_fans(&[]), (1.0, 1.0));
        assert_eq!(compute_fans(&[7]), (7.0, 7.0));
        assert_eq!(compute_fans(&[3, 5]), (3.0, 5.0));
        assert_eq!(compute_fans(&[3, 3, 16, 32]), (144.0, 288.0));
    }

    #[test]
    fn distribution_statistics() {
        let shape = [400usize, 500];
        let (fan_in, fan_out) = (400.0f64, 500.0f64);
        let cases: Vec<(Initializer, f64, f64)> = vec![
            (
                Initializer::glorot_uniform(),
                0.0,
                (2.0 / (fan_in + fan_out)).sqrt(),
            ),
            (
                Initializer::glorot_normal(),
                0.0,
                (2.0 / (fan_in + fan_out)).sqrt(),
            ),
            (Initializer::he_normal(), 0.0, (2.0 / fan_in).sqrt()),
            (Initializer::he_uniform(), 0.0, (2.0 / fan_in).sqrt()),
            (Initializer::lecun_normal(), 0.0, (1.0 / fan_in).sqrt()),
            (Initializer::lecun_uniform(), 0.0, (1.0 / fan_in).sqrt()),
            (Initializer::random_normal(), 0.0, 0.05),
            (
                Initializer::RandomNormal {
                    mean: 2.0,
                    stddev: 0.5,
                    seed: None,
                },
                2.0,
                0.5,
            ),
            (Initializer::random_uniform(), 0.0, 0.1 / 12f64.sqrt()),
            (
                Initializer::RandomUniform {
                    minval: 1.0,
                    maxval: 5.0,
                    seed: None,
                },
                3.0,
                4.0 / 12f64.sqrt(),
            ),
            (
                Initializer::truncated_normal(),
                0.0,
                0.05 * TRUNCATION_STDDEV,
            ),
            (
                Initializer::TruncatedNormal {
                    mean: -1.0,
                    stddev: 2.0,
                    seed: None,
                },
                -1.0,
                2.0 * TRUNCATION_STDDEV,
            ),
            // Orthogonal (400, 500): orthonormal rows of length 500, entries of variance 1/500.
            (Initializer::orthogonal(), 0.0, (1.0 / 500.0f64).sqrt()),
        ];
        for (i, (init, want_mean, want_std)) in cases.into_iter().enumerate() {
            let a = init
                .clone()
                .with_seed(100 + i as u64)
                .sample(&shape)
                .unwrap();
            let (mean, std) = mean_std(&a);
            // 200k samples: the mean's standard error is std/447.
            assert_close(
                &format!("{init:?} mean"),
                mean,
                want_mean,
                5.0 * want_std / 447.0,
            );
            assert_close(&format!("{init:?} std"), std, want_std, 0.01 * want_std);
        }
    }

    #[test]
    fn variance_scaling_on_higher_ranks() {
        // (3, 3, 16, 32): fan_in 144, fan_out 288.
        let a = Initializer::he_normal()
            .with_seed(1)
            .sample(&[3, 3, 16, 32])
            .unwrap();
        assert_close(
            "he_normal std",
            mean_std(&a).1,
            (2.0f64 / 144.0).sqrt(),
            0.05 * (2.0f64 / 144.0).sqrt(),
        );
        let a = Initializer::lecun_uniform()
            .with_seed(2)
            .sample(&[3, 3, 16, 32])
            .unwrap();
        let limit = (3.0f64 / 144.0).sqrt() as f32;
        assert!(a.iter().all(|x| x.abs() <= limit));
        // Zero fans count as 1, as in Keras (max(1, fan)).
        assert_eq!(
            Initializer::glorot_uniform()
                .with_seed(1)
                .sample(&[0, 3])
                .unwrap()
                .len(),
            0
        );
        let s = Initializer::lecun_uniform()
            .with_seed(1)
            .sample(&[])
            .unwrap();
        assert!(s.iter().all(|x| x.abs() <= 3f32.sqrt()));
    }

    #[test]
    fn truncated_within_two_stddev() {
        let a = Initializer::TruncatedNormal {
            mean: 1.0,
            stddev: 0.5,
            seed: Some(1),
        }
        .sample(&[100_000])
        .unwrap();
        assert!(a.iter().all(|&x| (x - 1.0).abs() <= 1.0 + 1e-6));
        let max = a.iter().fold(0.0f32, |m, &x| m.max((x - 1.0).abs()));
        assert!(
            max > 0.99,
            "truncation should reach close to 2 stddev, max {max}"
        );
        for init in [
            Initializer::glorot_normal(),
            Initializer::he_normal(),
            Initializer::lecun_normal(),
        ] {
            let a = init.clone().with_seed(5).sample(&[100, 200]).unwrap();
            let n = match init {
                Initializer::GlorotNormal { .. } => 150.0,
                Initializer::HeNormal { .. } => 50.0,
                _ => 100.0,
            };
            let bound = 2.0 * (1.0f64 / n).sqrt() / TRUNCATION_STDDEV;
            assert!(
                a.iter()
                    .all(|&x| f64::from(x).abs() <= bound * (1.0 + 1e-6)),
                "{init:?}"
            );
        }
    }

    #[test]
    fn seeded_repeatability() {
        for init in all_variants() {
            let init = init.with_seed(42);
            let shape: &[usize] = if matches!(init, Initializer::Identity { .. }) {
                &[4, 4]
            } else {
                &[8, 5]
            };
            assert_eq!(
                init.sample(shape).unwrap(),
                init.sample(shape).unwrap(),
                "{init:?}"
            );
        }
        let a = Initializer::glorot_uniform()
            .with_seed(1)
            .sample(&[10, 10])
            .unwrap();
        let b = Initializer::glorot_uniform()
            .with_seed(2)
            .sample(&[10, 10])
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn global_seed_repeatability() {
        let _guard = lock_global();
        let init = Initializer::glorot_uniform();
        let orth = Initializer::orthogonal();
        set_random_seed(1234);
        let a1 = init.sample(&[5, 6]).unwrap();
        let a2 = init.sample(&[5, 6]).unwrap();
        let o1 = orth.sample(&[4, 4]).unwrap();
        set_random_seed(1234);
        let b1 = init.sample(&[5, 6]).unwrap();
        let b2 = init.sample(&[5, 6]).unwrap();
        let o2 = orth.sample(&[4, 4]).unwrap();
        assert_eq!(a1, b1);
        assert_eq!(a2, b2);
        assert_eq!(o1, o2);
        // Unseeded calls draw fresh values.
        assert_ne!(a1, a2);
        set_random_seed(4321);
        assert_ne!(init.sample(&[5, 6]).unwrap(), a1);
        // A seeded initializer does not depend on the global seed.
        set_random_seed(1);
        let s1 = init.clone().with_seed(5).sample(&[3, 3]).unwrap();
        set_random_seed(2);
        let s2 = init.clone().with_seed(5).sample(&[3, 3]).unwrap();
        assert_eq!(s1, s2);
    }

    #[test]
    fn names() {
        let names = [
            ("zeros", "Zeros"),
            ("ones", "Ones"),
            ("constant", "Constant"),
            ("glorot_uniform", "GlorotUniform"),
            ("glorot_normal", "GlorotNormal"),
            ("he_normal", "HeNormal"),
            ("he_uniform", "HeUniform"),
            ("lecun_normal", "LecunNormal"),
            ("lecun_uniform", "LecunUniform"),
            ("orthogonal", "Orthogonal"),
            ("random_normal", "RandomNormal"),
            ("random_uniform", "RandomUniform"),
            ("truncated_normal", "TruncatedNormal"),
            ("identity", "Identity"),
        ];
        for (snake, class) in names {
            let a = Initializer::from_name(snake).unwrap();
            assert_eq!(a, Initializer::from_name(class).unwrap());
            assert_eq!(a.class_name(), class);
            assert_eq!(Initializer::from_config(&Value::from(snake)).unwrap(), a);
        }
        assert_eq!(
            Initializer::from_name("orthogonal").unwrap(),
            Initializer::orthogonal()
        );
        assert_eq!(
            Initializer::from_name("random_normal").unwrap(),
            Initializer::random_normal()
        );
        assert_eq!(
            Initializer::from_name("constant").unwrap(),
            Initializer::constant(0.0)
        );
        assert_eq!(
            Initializer::from_name("normal").unwrap(),
            Initializer::random_normal()
        );
        assert_eq!(
            Initializer::from_name("uniform").unwrap(),
            Initializer::random_uniform()
        );
        assert_eq!(
            Initializer::from_name("zero").unwrap(),
            Initializer::zeros()
        );
        assert_eq!(Initializer::from_name("one").unwrap(), Initializer::ones());
        assert_eq!(
            Initializer::from_name("OrthogonalInitializer").unwrap(),
            Initializer::orthogonal()
        );
        assert_eq!(
            Initializer::from_name("IdentityInitializer").unwrap(),
            Initializer::identity()
        );
        assert_eq!(
            Initializer::from_name("variance_scaling").unwrap(),
            Initializer::lecun_normal()
        );
        for name in KNOWN_NAMES {
            assert!(Initializer::from_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let err = Initializer::from_name("glorot_uniformm").unwrap_err();
        assert!(matches!(err, Error::UnknownName { .. }));
        let msg = err.to_string();
        assert!(msg.contains("'glorot_uniformm'"), "{msg}");
        for name in [
            "zeros",
            "glorot_uniform",
            "orthogonal",
            "truncated_normal",
            "identity",
            "GlorotUniform",
        ] {
            assert!(msg.contains(name), "{msg}");
        }
        // Keras names are case-sensitive.
        assert!(Initializer::from_name("Glorot_Uniform").is_err());
        assert!(matches!(
            Initializer::from_name("stft"),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn config_round_trip() {
        for init in all_variants() {
            let config = init.to_config();
            assert_eq!(Initializer::from_config(&config).unwrap(), init, "{config}");
            assert_eq!(config["class_name"], init.class_name());
            assert_eq!(config["module"], "keras.initializers");
            assert!(config["registered_name"].is_null());
            // And through text.
            let text = serde_json::to_string(&config).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(Initializer::from_config(&back).unwrap(), init);
        }
        for init in [
            Initializer::orthogonal(),
            Initializer::random_normal(),
            Initializer::random_uniform(),
            Initializer::truncated_normal(),
            Initializer::identity(),
        ] {
            assert_eq!(Initializer::from_config(&init.to_config()).unwrap(), init);
        }
    }

    #[test]
    fn config_exact_keras_text() {
        let text = |i: Initializer| serde_json::to_string(&i.to_config()).unwrap();
        assert_eq!(
            text(Initializer::glorot_uniform()),
            r#"{"module":"keras.initializers","class_name":"GlorotUniform","config":{"seed":null,"input_axes":null,"output_axes":null},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::orthogonal()),
            r#"{"module":"keras.initializers","class_name":"Orthogonal","config":{"seed":null,"gain":1.0},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::zeros()),
            r#"{"module":"keras.initializers","class_name":"Zeros","config":{},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::constant(0.1)),
            r#"{"module":"keras.initializers","class_name":"Constant","config":{"value":0.1},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::random_normal().with_seed(7)),
            r#"{"module":"keras.initializers","class_name":"RandomNormal","config":{"seed":7,"mean":0.0,"stddev":0.05},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::random_uniform()),
            r#"{"module":"keras.initializers","class_name":"RandomUniform","config":{"seed":null,"minval":-0.05,"maxval":0.05},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::truncated_normal()),
            r#"{"module":"keras.initializers","class_name":"TruncatedNormal","config":{"seed":null,"mean":0.0,"stddev":0.05},"registered_name":null}"#
        );
        assert_eq!(
            text(Initializer::identity()),
            r#"{"module":"keras.initializers","class_name":"Identity","config":{"gain":1.0},"registered_name":null}"#
        );
    }

    #[test]
    fn config_from_keras_files() {
        // As Keras 3 writes them (key order differs from ours for Orthogonal in the brief; both are accepted).
        let v: Value = serde_json::from_str(
            r#"{"module": "keras.initializers", "class_name": "Orthogonal", "config": {"gain": 1.0, "seed": null}, "registered_name": null}"#,
        )
        .unwrap();
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::orthogonal()
        );
        // Keras 2 style: no module, old config keys.
        let v = json!({"class_name": "GlorotUniform", "config": {"seed": 3}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::glorot_uniform().with_seed(3)
        );
        let v = json!({"class_name": "Constant", "config": {"value": 1}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::constant(1.0)
        );
        let v = json!({"class_name": "Zeros"});
        assert_eq!(Initializer::from_config(&v).unwrap(), Initializer::zeros());
        let v = json!({"class_name": "RandomNormal", "config": {"stddev": 1}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::RandomNormal {
                mean: 0.0,
                stddev: 1.0,
                seed: None
            }
        );
        // VarianceScaling equal to a named variant.
        let v = json!({"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "uniform", "seed": 4}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::he_uniform().with_seed(4)
        );
        let v = json!({"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "normal"}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::glorot_normal()
        );
        let v = json!({"class_name": "VarianceScaling", "config": {"scale": 0.1, "mode": "fan_out", "distribution": "uniform"}});
        assert!(matches!(
            Initializer::from_config(&v),
            Err(Error::Unsupported(_))
        ));
        // Scalar tensor values.
        let v = json!({"class_name": "Constant", "config": {"value": {"class_name": "__tensor__", "config": {"value": 0.5, "dtype": "float32"}}}});
        assert_eq!(
            Initializer::from_config(&v).unwrap(),
            Initializer::constant(0.5)
        );
    }

    #[test]
    fn bad_configs() {
        let err = |v: Value| Initializer::from_config(&v).unwrap_err();
        let e = err(json!({"class_name": "RandomNormal", "config": {"mean": "zero"}}));
        assert!(
            matches!(e, Error::Format { .. }) && e.to_string().contains("`mean` must be a number"),
            "{e}"
        );
        let e = err(json!({"class_name": "RandomNormal", "config": {"mena": 0.0}}));
        assert!(
            e.to_string().contains("unexpected key `mena`")
                && e.to_string().contains("mean, stddev"),
            "{e}"
        );
        let e = err(json!({"class_name": "GlorotUniform", "config": {"seed": -1}}));
        assert!(
            matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("seed"),
            "{e}"
        );
        let e = err(json!({"class_name": "GlorotUniform", "config": {"seed": 1.5}}));
        assert!(matches!(e, Error::Format { .. }), "{e}");
        let e = err(
            json!({"class_name": "GlorotUniform", "config": {"seed": {"class_name": "SeedGenerator"}}}),
        );
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        let e = err(json!({"class_name": "GlorotUniform", "config": {"input_axes": [0]}}));
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        let e = err(json!({"class_name": "Zeros", "config": {"value": 1}}));
        assert!(e.to_string().contains("takes no arguments"), "{e}");
        let e = err(json!({"class_name": "Nope", "config": {}}));
        assert!(matches!(e, Error::UnknownName { .. }), "{e}");
        let e = err(json!({"config": {}}));
        assert!(e.to_string().contains("missing `class_name`"), "{e}");
        let e = err(json!({"class_name": "Ones", "config": [1]}));
        assert!(e.to_string().contains("`config` must be a dict"), "{e}");
        let e = err(json!(3));
        assert!(matches!(e, Error::Format { .. }), "{e}");
        let e = err(
            json!({"module": "my_package", "class_name": "GlorotUniform", "config": {}, "registered_name": "Custom>GlorotUniform"}),
        );
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        let e = err(json!({"class_name": "VarianceScaling", "config": {"mode": "fan_sideways"}}));
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }

    #[test]
    fn bad_parameters() {
        let e = Initializer::RandomNormal {
            mean: 0.0,
            stddev: f32::NAN,
            seed: None,
        }
        .sample(&[2])
        .unwrap_err();
        assert!(e.to_string().contains("stddev"), "{e}");
        let e = Initializer::glorot_uniform()
            .sample(&[usize::MAX, 2])
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }
}
