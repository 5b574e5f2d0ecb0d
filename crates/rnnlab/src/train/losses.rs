//! Loss functions with Keras 3's formulas and its `sum_over_batch_size` reduction (see docs/training-semantics.md).
//!
//! Every loss makes one value per sample and step (the last axis is reduced: a mean for mse/mae/binary
//! crossentropy, a sum for the categorical ones), then averages those values over everything else. A mask carried
//! by the prediction (a sequence after `Masking`) restricts that average to the kept steps, as Keras does.

use std::fmt;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::layers::Mask;
use crate::tensor::Shape;

/// Keras' `backend.epsilon()`: probabilities are clipped to `[EPS, 1 - EPS]` before a logarithm.
const EPS: f32 = 1e-7;

/// A loss function (Keras `loss=`), by its Keras name.
///
/// ```
/// use rnnlab::Loss;
/// assert_eq!(Loss::from_name("mse").unwrap(), Loss::mse());
/// assert_eq!(Loss::sparse_categorical_crossentropy().from_logits(true).name(), "sparse_categorical_crossentropy");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    kind: LossKind,
    from_logits: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LossKind {
    MeanSquaredError,
    MeanAbsoluteError,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
}

/// Every name [`Loss::from_name`] accepts.
pub const LOSS_NAMES: &[&str] = &[
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
];

impl fmt::Debug for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from_logits {
            write!(f, "{}(from_logits=True)", self.name())
        } else {
            f.write_str(self.name())
        }
    }
}

impl Loss {
    /// Mean squared error over the last axis (`"mse"`).
    pub fn mse() -> Loss {
        Loss::of(LossKind::MeanSquaredError)
    }
    /// Mean absolute error over the last axis (`"mae"`).
    pub fn mae() -> Loss {
        Loss::of(LossKind::MeanAbsoluteError)
    }
    /// Binary crossentropy on probabilities (or logits with [`Loss::from_logits`]).
    pub fn binary_crossentropy() -> Loss {
        Loss::of(LossKind::BinaryCrossentropy)
    }
    /// Categorical crossentropy against one-hot (or soft) targets.
    pub fn categorical_crossentropy() -> Loss {
        Loss::of(LossKind::CategoricalCrossentropy)
    }
    /// Categorical crossentropy against integer class labels.
    pub fn sparse_categorical_crossentropy() -> Loss {
        Loss::of(LossKind::SparseCategoricalCrossentropy)
    }
    fn of(kind: LossKind) -> Loss {
        Loss {
            kind,
            from_logits: false,
        }
    }

    /// Whether predictions are logits (crossentropies only; ignored by mse and mae, as in Keras).
    pub fn from_logits(mut self, v: bool) -> Loss {
        self.from_logits = v;
        self
    }

    /// Whether the loss reads predictions as logits.
    pub fn is_from_logits(&self) -> bool {
        self.from_logits
    }

    /// Looks a loss up by its Keras name (`"mse"`, `"categorical_crossentropy"`, ...).
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn from_name(name: &str) -> Result<Loss> {
        let kind = match name {
            "mse" | "mean_squared_error" | "MeanSquaredError" => LossKind::MeanSquaredError,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => LossKind::MeanAbsoluteError,
            "binary_crossentropy" | "BinaryCrossentropy" => LossKind::BinaryCrossentropy,
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                LossKind::CategoricalCrossentropy
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                LossKind::SparseCategoricalCrossentropy
            }
            _ => return Err(Error::unknown("loss", name, LOSS_NAMES)),
        };
        Ok(Loss::of(kind))
    }

    /// The Keras function name (`"mean_squared_error"` is reported as `"mse"`, as it was given).
    pub fn name(&self) -> &'static str {
        match self.kind {
            LossKind::MeanSquaredError => "mse",
            LossKind::MeanAbsoluteError => "mae",
            LossKind::BinaryCrossentropy => "binary_crossentropy",
            LossKind::CategoricalCrossentropy => "categorical_crossentropy",
            LossKind::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        }
    }

    fn class_name(&self) -> &'static str {
        match self.kind {
            LossKind::MeanSquaredError => "MeanSquaredError",
            LossKind::MeanAbsoluteError => "MeanAbsoluteError",
            LossKind::BinaryCrossentropy => "BinaryCrossentropy",
            LossKind::CategoricalCrossentropy => "CategoricalCrossentropy",
            LossKind::SparseCategoricalCrossentropy => "SparseCategoricalCrossentropy",
        }
    }

    /// Whether this loss reads the logits of a softmax/sigmoid output instead of its probabilities, as Keras'
    /// TensorFlow backend does when the prediction comes straight from such an activation (`_keras_logits`).
    pub(crate) fn logits_activation(&self) -> Option<crate::Activation> {
        match self.kind {
            LossKind::BinaryCrossentropy => Some(crate::Activation::Sigmoid),
            LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
                Some(crate::Activation::Softmax)
            }
            _ => None,
        }
    }

    /// The loss as it appears in a compile_config: a plain name unless it has arguments, then a serialized object.
    pub(crate) fn to_config(&self) -> Value {
        if !self.from_logits {
            return json!(self.name());
        }
        let mut cfg = json!({
            "name": match self.kind {
                LossKind::BinaryCrossentropy => "binary_crossentropy",
                LossKind::CategoricalCrossentropy => "categorical_crossentropy",
                _ => "sparse_categorical_crossentropy",
            },
            "reduction": "sum_over_batch_size",
            "from_logits": true,
        });
        let o = cfg.as_object_mut().expect("object");
        match self.kind {
            LossKind::BinaryCrossentropy => {
                o.insert("label_smoothing".into(), json!(0.0));
                o.insert("axis".into(), json!(-1));
            }
            LossKind::CategoricalCrossentropy => {
                o.insert("label_smoothing".into(), json!(0.0));
                o.insert("axis".into(), json!(-1));
            }
            _ => {
                o.insert("ignore_class".into(), Value::Null);
            }
        }
        json!({"module": "keras.losses", "class_name": self.class_name(), "config": cfg, "registered_name": null})
    }

    /// Reads a loss from a compile_config entry: a name or a serialized Keras loss object.
    pub(crate) fn from_config(v: &Value) -> Result<Loss> {
        match v {
            Value::String(s) => Loss::from_name(s),
            Value::Object(o) => {
                let class = o.get("class_name").and_then(Value::as_str).unwrap_or("");
                let cfg = o.get("config").cloned().unwrap_or(Value::Null);
                let loss = Loss::from_name(class)?;
                for (k, val) in cfg.as_object().into_iter().flatten() {
                    let unsupported = match k.as_str() {
                        "label_smoothing" => val.as_f64().unwrap_or(0.0) != 0.0,
                        "ignore_class" => !val.is_null(),
                        "axis" => val.as_i64().unwrap_or(-1) != -1,
                        "reduction" => {
                            val.as_str().unwrap_or("sum_over_batch_size") != "sum_over_batch_size"
                        }
                        _ => false,
                    };
                    if unsupported {
                        return Err(Error::Unsupported(format!(
                            "loss {class}: {k}={val} is not supported (only the default is)"
                        )));
                    }
                }
                let logits = cfg
                    .get("from_logits")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Ok(loss.from_logits(logits))
            }
            other => Err(Error::format(
                "compile_config",
                format!("a loss must be a name or a serialized loss object, found {other}"),
            )),
        }
    }

    /// Checks a target against a prediction's shape before training starts.
    pub(crate) fn check_target(&self, ctx: &str, pred: &[usize], target: &[usize]) -> Result<()> {
        let ok = match self.kind {
            LossKind::SparseCategoricalCrossentropy => {
                target == &pred[..pred.len() - 1]
                    || (target.len() == pred.len()
                        && target.last() == Some(&1)
                        && target[..target.len() - 1] == pred[..pred.len() - 1])
            }
            _ => target == pred,
        };
        if ok {
            Ok(())
        } else {
            let expected = if self.kind == LossKind::SparseCategoricalCrossentropy {
                format!(
                    "{} (integer class labels for the prediction {})",
                    Shape(pred[..pred.len() - 1].to_vec()),
                    Shape(pred.to_vec())
                )
            } else {
                format!("{} (the prediction's shape)", Shape(pred.to_vec()))
            };
            Err(Error::shape(
                ctx,
                format!("target for loss {}", self.name()),
                expected,
                Shape(target.to_vec()),
            ))
        }
    }

    /// The reduced loss and its gradient with respect to the prediction, or to the logits when `logits` is given
    /// (the prediction came from a softmax/sigmoid whose input Keras uses instead).
    pub(crate) fn value_and_grad(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        logits: Option<ArrayViewD<'_, f32>>,
        mask: Option<&Mask>,
    ) -> Result<(f32, ArrayD<f32>)> {
        let shape = y_pred.shape().to_vec();
        let c = *shape.last().unwrap_or(&1);
        let rows = if c == 0 { 0 } else { y_pred.len() / c };
        let y_true = y_true.as_standard_layout();
        let y_pred = y_pred.as_standard_layout();
        let t = y_true.as_slice().expect("standard layout");
        let p = y_pred.as_slice().expect("standard layout");
        let logits = logits.map(|l| l.as_standard_layout().into_owned());
        let from_logits = self.from_logits || logits.is_some();
        let x: &[f32] = match &logits {
            Some(l) => l.as_slice().expect("standard layout"),
            None => p,
        };
        // Per-row loss values and the gradient of each row's value with respect to the row.
        let mut per_row = vec![0.0f32; rows];
        let mut grad = vec![0.0f32; rows * c];
        let cf = c as f32;
        match self.kind {
            LossKind::MeanSquaredError => {
                for r in 0..rows {
                    let mut s = 0.0f32;
                    for j in r * c..(r + 1) * c {
                        let d = p[j] - t[j];
                        s += d * d;
                        grad[j] = 2.0 * d / cf;
                    }
                    per_row[r] = s / cf;
                }
            }
            LossKind::MeanAbsoluteError => {
                for r in 0..rows {
                    let mut s = 0.0f32;
                    for j in r * c..(r + 1) * c {
                        let d = p[j] - t[j];
                        s += d.abs();
                        grad[j] = if d > 0.0 {
                            1.0
                        } else if d < 0.0 {
                            -1.0
                        } else {
                            0.0
                        } / cf;
                    }
                    per_row[r] = s / cf;
                }
            }
            LossKind::BinaryCrossentropy => {
                for r in 0..rows {
                    let mut s = 0.0f32;
                    for j in r * c..(r + 1) * c {
                        let z = t[j];
                        if from_logits {
                            // tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x z + log(1 + exp(-|x|)).
                            let xv = x[j];
                            let l =
                                xv.max(0.0) - xv * z + (f64::from(-xv.abs()).exp().ln_1p()) as f32;
                            s += l;
                            grad[j] = (crate::Activation::Sigmoid.apply_scalar(xv) - z) / cf;
                        } else {
                            let o = p[j].clamp(EPS, 1.0 - EPS);
                            let inside = p[j] >= EPS && p[j] <= 1.0 - EPS;
                            let l = -(z * ln(o) + (1.0 - z) * ln(1.0 - o));
                            s += l;
                            grad[j] = if inside {
                                (-z / o + (1.0 - z) / (1.0 - o)) / cf
                            } else {
                                0.0
                            };
                        }
                    }
                    per_row[r] = s / cf;
                }
            }
            LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
                let sparse = self.kind == LossKind::SparseCategoricalCrossentropy;
                let mut onehot = vec![0.0f32; c];
                let mut dq = vec![0.0f32; c];
                for r in 0..rows {
                    let row = r * c..(r + 1) * c;
                    let target: &[f32] = if sparse {
                        let label = t[r];
                        if label < 0.0 || label.fract() != 0.0 || label as usize >= c {
                            return Err(Error::invalid(
                                "sparse_categorical_crossentropy",
                                "target",
                                format!("integer class labels in [0, {c})"),
                                label,
                            ));
                        }
                        onehot.fill(0.0);
                        onehot[label as usize] = 1.0;
                        &onehot
                    } else {
                        &t[row.clone()]
                    };
                    let g = &mut grad[row.clone()];
                    if from_logits {
                        // softmax_cross_entropy_with_logits: logsumexp(x) Σt - Σ t x; gradient softmax(x) Σt - t.
                        let xr = &x[row.clone()];
                        let m = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let sum: f64 = xr.iter().map(|&v| f64::from(v - m).exp()).sum();
                        let lse = m as f64 + sum.ln();
                        let tsum: f32 = target.iter().sum();
                        let mut l = 0.0f64;
                        for j in 0..c {
                            l += f64::from(target[j]) * (lse - f64::from(xr[j]));
                            let sm = (f64::from(xr[j] - m).exp() / sum) as f32;
                            g[j] = sm * tsum - target[j];
                        }
                        per_row[r] = l as f32;
                    } else if sparse {
                        // Keras' sparse path: log(clip(p)) goes through the sparse softmax crossentropy, i.e.
                        // -log(q_y / Σ q) with q = clip(p): renormalised over the clipped probabilities.
                        let pr = &p[row.clone()];
                        let label = t[r] as usize;
                        let mut qs = 0.0f32;
                        for j in 0..c {
                            qs += pr[j].clamp(EPS, 1.0 - EPS);
                        }
                        let ql = pr[label].clamp(EPS, 1.0 - EPS);
                        per_row[r] = ln(qs) - ln(ql);
                        for j in 0..c {
                            let inside = (EPS..=1.0 - EPS).contains(&pr[j]);
                            let q = pr[j].clamp(EPS, 1.0 - EPS);
                            let d = 1.0 / qs - if j == label { 1.0 / q } else { 0.0 };
                            g[j] = if inside { d } else { 0.0 };
                        }
                    } else {
                        // Probabilities: renormalised over the row, clipped, then -Σ t log p.
                        let pr = &p[row.clone()];
                        let s: f32 = pr.iter().sum();
                        let mut l = 0.0f32;
                        for j in 0..c {
                            let q = pr[j] / s;
                            let qc = q.clamp(EPS, 1.0 - EPS);
                            l -= target[j] * ln(qc);
                            dq[j] = if (EPS..=1.0 - EPS).contains(&q) {
                                -target[j] / qc
                            } else {
                                0.0
                            };
                        }
                        // Through the normalisation q = p / Σp.
                        let dot: f32 = (0..c).map(|j| dq[j] * pr[j]).sum::<f32>() / s;
                        for j in 0..c {
                            g[j] = (dq[j] - dot) / s;
                        }
                        per_row[r] = l;
                    }
                }
            }
        }
        // Reduction: mean over the per-row values, or over the kept steps when the prediction carries a mask.
        let weights: Option<Vec<f32>> = match mask {
            Some(m) if m.len() == rows => {
                Some(m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect())
            }
            _ => None,
        };
        let denom = match &weights {
            Some(w) => w.iter().sum::<f32>(),
            None => rows as f32,
        };
        if denom == 0.0 {
            // Keras' divide_no_nan: an all-masked batch contributes 0.
            return Ok((0.0, ArrayD::zeros(IxDyn(&shape))));
        }
        let mut total = 0.0f32;
        for r in 0..rows {
            let w = weights.as_ref().map_or(1.0, |w| w[r]);
            total += per_row[r] * w;
            for v in &mut grad[r * c..(r + 1) * c] {
                *v *= w / denom;
            }
        }
        let grad = ArrayD::from_shape_vec(IxDyn(&shape), grad).expect("same size");
        Ok((total / denom, grad))
    }
}

/// Natural log rounded once to float32.
fn ln(x: f32) -> f32 {
    f64::from(x).ln() as f32
}
