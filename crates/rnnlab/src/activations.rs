//! Activation functions by their Keras names, including both meanings of `hard_sigmoid`.
//!
//! Keras 3 redefined `"hard_sigmoid"` as `relu6(x + 3) / 6`; Keras 2 and tf.keras computed `clip(0.2x + 0.5, 0, 1)`.
//! Old tutorials (and their printed numbers) need the second one, so rnnlab keeps it under its own name,
//! [`Activation::HardSigmoidKeras2`] (`"hard_sigmoid_keras2"`), and `"hard_sigmoid"` means what Keras 3 means.

use crate::error::{Error, Result};

/// An element-wise (or, for softmax, last-axis) activation function.
///
/// ```
/// use rnnlab::Activation;
/// assert_eq!(Activation::from_name("hard_sigmoid").unwrap().apply_scalar(1.0), 2.0 / 3.0);
/// assert_eq!(Activation::HardSigmoidKeras2.apply_scalar(1.0), 0.7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Activation {
    /// Identity (`"linear"`, also Keras' `None`).
    #[default]
    Linear,
    /// Hyperbolic tangent (`"tanh"`).
    Tanh,
    /// Logistic sigmoid `1 / (1 + exp(-x))` (`"sigmoid"`).
    Sigmoid,
    /// Keras 3 hard sigmoid `relu6(x + 3) / 6` (`"hard_sigmoid"`), saturating at ±3.
    HardSigmoid,
    /// Keras 2 / tf.keras hard sigmoid `clip(0.2x + 0.5, 0, 1)` (`"hard_sigmoid_keras2"`), saturating at ±2.5.
    /// The default `recurrent_activation` of Keras ≤ 2.2, which old tutorial numbers depend on.
    HardSigmoidKeras2,
    /// `max(x, 0)` (`"relu"`).
    Relu,
    /// `min(max(x, 0), 6)` (`"relu6"`).
    Relu6,
    /// Softmax over the last axis (`"softmax"`).
    Softmax,
    /// `x / (1 + |x|)` (`"softsign"`).
    Softsign,
    /// `ln(1 + exp(x))` (`"softplus"`).
    Softplus,
    /// `x * sigmoid(x)` (`"silu"`, alias `"swish"`).
    Silu,
    /// `x` for x > 0 else `exp(x) - 1` (`"elu"`).
    Elu,
    /// `exp(x)` (`"exponential"`).
    Exponential,
}

/// Every name [`Activation::from_name`] accepts.
pub const ACTIVATION_NAMES: &[&str] = &[
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "hard_sigmoid_keras2",
    "relu",
    "relu6",
    "softmax",
    "softsign",
    "softplus",
    "silu",
    "swish",
    "elu",
    "exponential",
];

use crate::vmath::{exp32, sigmoid32 as sigmoid, tanh32};

impl Activation {
    /// Looks an activation up by its Keras name (`"tanh"`, `"hard_sigmoid"`, `"linear"`, ...).
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn from_name(name: &str) -> Result<Activation> {
        Ok(match name {
            "linear" | "None" | "none" | "" => Activation::Linear,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "hard_sigmoid_keras2" => Activation::HardSigmoidKeras2,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "softmax" => Activation::Softmax,
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            "silu" | "swish" => Activation::Silu,
            "elu" => Activation::Elu,
            "exponential" => Activation::Exponential,
            _ => return Err(Error::unknown("activation", name, ACTIVATION_NAMES)),
        })
    }

    /// The Keras name, as stored in a config.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::HardSigmoidKeras2 => "hard_sigmoid_keras2",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Softmax => "softmax",
            Activation::Softsign => "softsign",
            Activation::Softplus => "softplus",
            Activation::Silu => "silu",
            Activation::Elu => "elu",
            Activation::Exponential => "exponential",
        }
    }

    /// Applies an element-wise activation to one value. Softmax of a single value is 1.
    #[inline]
    pub fn apply_scalar(&self, x: f32) -> f32 {
        match self {
            Activation::Linear => x,
            Activation::Tanh => tanh32(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::HardSigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::HardSigmoidKeras2 => (0.2 * x + 0.5).clamp(0.0, 1.0),
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Softmax => 1.0,
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Softplus => {
                // ln(1 + e^x) without overflow for large x.
                if x > 20.0 {
                    x
                } else {
                    (f64::from(x).exp().ln_1p()) as f32
                }
            }
            Activation::Silu => x * sigmoid(x),
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    f64::from(x).exp_m1() as f32
                }
            }
            Activation::Exponential => exp32(x),
        }
    }

    /// Applies the activation in place to one row (the last axis): element-wise, or softmax over the row.
    #[inline]
    pub fn apply_row(&self, row: &mut [f32]) {
        match self {
            Activation::Linear => {}
            // The hot ones (every LSTM/GRU gate) run vectorised; the bits equal `apply_scalar`'s.
            Activation::Tanh => crate::vmath::tanh_slice(row),
            Activation::Sigmoid => crate::vmath::sigmoid_slice(row),
            Activation::Exponential => crate::vmath::exp_slice(row),
            Activation::Softmax => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for v in row.iter_mut() {
                    *v -= max;
                }
                crate::vmath::exp_slice(row);
                let mut sum = 0.0;
                for v in row.iter() {
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
            act => {
                for v in row.iter_mut() {
                    *v = act.apply_scalar(*v);
                }
            }
        }
    }

    /// Applies the activation in place to a contiguous buffer made of rows of `row_len` values.
    pub fn apply_rows(&self, data: &mut [f32], row_len: usize) {
        match self {
            _ if row_len == 0 => {}
            // Only softmax looks across a row; the element-wise ones take the buffer in one call.
            Activation::Softmax => data.chunks_mut(row_len).for_each(|row| self.apply_row(row)),
            _ => self.apply_row(data),
        }
    }
}

impl Activation {
    /// The derivative `dy/dx` of an element-wise activation at `x`, given `y = f(x)` (the forward output, reused
    /// where the derivative is cheaper from it, as TensorFlow's gradients do: `y(1-y)` for sigmoid, `1-y²` for tanh).
    /// Softmax is not element-wise: use [`Activation::backprop_row`].
    #[inline]
    pub(crate) fn grad_scalar(&self, x: f32, y: f32) -> f32 {
        match self {
            Activation::Linear | Activation::Softmax => 1.0,
            Activation::Tanh => 1.0 - y * y,
            Activation::Sigmoid => y * (1.0 - y),
            // relu6(x + 3) / 6: TF's relu6 gradient is 1 strictly inside (0, 6).
            Activation::HardSigmoid => {
                if x > -3.0 && x < 3.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }
            Activation::HardSigmoidKeras2 => {
                if x > -2.5 && x < 2.5 {
                    0.2
                } else {
                    0.0
                }
            }
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Relu6 => {
                if x > 0.0 && x < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Softsign => {
                let d = 1.0 + x.abs();
                1.0 / (d * d)
            }
            Activation::Softplus => sigmoid(x),
            Activation::Silu => {
                let s = sigmoid(x);
                s + x * s * (1.0 - s)
            }
            Activation::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    y + 1.0
                }
            }
            Activation::Exponential => y,
        }
    }

    /// Back-propagates through the activation of one row: `dx = dy · f'(x)`, with softmax's Jacobian
    /// `dx = y ⊙ (dy − Σ dy⊙y)` over the row.
    pub(crate) fn backprop_row(&self, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        match self {
            Activation::Linear => dx.copy_from_slice(dy),
            Activation::Softmax => {
                let dot: f32 = dy.iter().zip(y).map(|(a, b)| a * b).sum();
                for ((d, &yy), &g) in dx.iter_mut().zip(y).zip(dy) {
                    *d = yy * (g - dot);
                }
            }
            act => {
                for (((d, &xx), &yy), &g) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                    *d = g * act.grad_scalar(xx, yy);
                }
            }
        }
    }

    /// [`Activation::backprop_row`] over a buffer of rows of `row_len` values.
    pub(crate) fn backprop_rows(
        &self,
        x: &[f32],
        y: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        row_len: usize,
    ) {
        if row_len == 0 {
            return;
        }
        for (((xr, yr), gr), dr) in x
            .chunks(row_len)
            .zip(y.chunks(row_len))
            .zip(dy.chunks(row_len))
            .zip(dx.chunks_mut(row_len))
        {
            self.backprop_row(xr, yr, gr, dr);
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Activation> {
        Activation::from_name(s)
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_sigmoid_values_match_the_spec_table() {
        // keras-spec.md §1.5, values verified with Keras 3.15 and tf_keras.
        let k3 = [
            (-2.0, 0.16666667),
            (-1.0, 0.33333334),
            (1.0, 0.6666667),
            (2.0, 0.8333333),
        ];
        for (x, y) in k3 {
            assert!((Activation::HardSigmoid.apply_scalar(x) - y).abs() < 1e-6);
        }
        let k2 = [(-2.0, 0.1), (-1.0, 0.3), (1.0, 0.7), (2.0, 0.9)];
        for (x, y) in k2 {
            assert!((Activation::HardSigmoidKeras2.apply_scalar(x) - y).abs() < 1e-6);
        }
        assert_eq!(Activation::HardSigmoid.apply_scalar(3.5), 1.0);
        assert_eq!(Activation::HardSigmoidKeras2.apply_scalar(-2.6), 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut v = vec![1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0];
        Activation::Softmax.apply_rows(&mut v, 3);
        assert!((v[0..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((v[3] - 1.0 / 3.0).abs() < 1e-6);
        assert!((v[2] - 0.66524096).abs() < 1e-6); // numpy: softmax([1,2,3])[2]
    }

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for n in ACTIVATION_NAMES {
            let a = Activation::from_name(n).unwrap();
            assert_eq!(Activation::from_name(a.name()).unwrap(), a);
        }
        let e = Activation::from_name("tanhh").unwrap_err().to_string();
        assert!(
            e.contains("Unknown activation: 'tanhh'") && e.contains("sigmoid"),
            "{e}"
        );
    }
}
