//! [`Tensor`], the owned float32 array every rnnlab call takes and returns, and [`Shape`].
//!
//! A `Tensor` is an `ndarray::ArrayD<f32>` (it derefs to one) that prints the way NumPy prints:
//! `{}` gives `str(a)` (`[[0.00767819]]`) and `{:?}` gives `repr(a)` (`array([[0.00767819]], dtype=float32)`),
//! so a `Vec<Tensor>` debug-prints like the list `model.predict` returns in Python.

use std::fmt;
use std::ops::{Deref, DerefMut};

use ndarray::{ArrayD, Dimension, IxDyn};

use crate::error::{Error, Result};

/// A concrete shape, printed as a Python tuple: `(1, 3, 1)`, `(4,)`, `()`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// The dimensions as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Product of the dimensions.
    pub fn size(&self) -> usize {
        self.0.iter().product()
    }
}

/// Writes a Python tuple: `(1, 3)`, `(4,)`, `()`, with `None` for unknown dimensions.
pub(crate) fn fmt_tuple<T, F>(f: &mut fmt::Formatter<'_>, items: &[T], mut item: F) -> fmt::Result
where
    F: FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
{
    f.write_str("(")?;
    for (i, d) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, d)?;
    }
    if items.len() == 1 {
        f.write_str(",")?;
    }
    f.write_str(")")
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_tuple(f, &self.0, |f, d| write!(f, "{d}"))
    }
}
impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl PartialEq<[usize]> for Shape {
    fn eq(&self, other: &[usize]) -> bool {
        self.0 == other
    }
}
impl<const N: usize> PartialEq<[usize; N]> for Shape {
    fn eq(&self, other: &[usize; N]) -> bool {
        self.0 == other
    }
}
impl PartialEq<Vec<usize>> for Shape {
    fn eq(&self, other: &Vec<usize>) -> bool {
        &self.0 == other
    }
}

/// Anything that names a concrete shape: `(1, 3, 2)`, `[1, 3, 2]`, `vec![1, 3, 2]`, `&[1, 3, 2][..]`, `5`.
pub trait IntoShape {
    /// The dimensions.
    fn into_dims(self) -> Vec<usize>;
}
impl IntoShape for usize {
    fn into_dims(self) -> Vec<usize> {
        vec![self]
    }
}
impl IntoShape for Vec<usize> {
    fn into_dims(self) -> Vec<usize> {
        self
    }
}
impl IntoShape for &[usize] {
    fn into_dims(self) -> Vec<usize> {
        self.to_vec()
    }
}
impl<const N: usize> IntoShape for [usize; N] {
    fn into_dims(self) -> Vec<usize> {
        self.to_vec()
    }
}
impl IntoShape for Shape {
    fn into_dims(self) -> Vec<usize> {
        self.0
    }
}
impl IntoShape for &Shape {
    fn into_dims(self) -> Vec<usize> {
        self.0.clone()
    }
}
macro_rules! tuple_into_shape {
    ($($name:ident),+) => {
        impl IntoShape for ($(tuple_into_shape!(@usize $name),)+) {
            #[allow(non_snake_case)]
            fn into_dims(self) -> Vec<usize> {
                let ($($name,)+) = self;
                vec![$($name),+]
            }
        }
    };
    (@usize $name:ident) => { usize };
}
tuple_into_shape!(A);
tuple_into_shape!(A, B);
tuple_into_shape!(A, B, C);
tuple_into_shape!(A, B, C, D);
tuple_into_shape!(A, B, C, D, E);

/// An owned float32 array of any rank that prints like NumPy.
///
/// ```
/// use rnnlab::Tensor;
/// let data = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).reshape((1, 3, 2)).unwrap();
/// assert_eq!(data.shape(), [1, 3, 2]);
/// assert_eq!(data.shape().to_string(), "(1, 3, 2)");
/// assert_eq!(format!("{data}"), "[[[0.1 0.2]\n  [0.3 0.1]\n  [0.2 0.3]]]");
/// ```
#[derive(Clone, PartialEq, Default)]
pub struct Tensor(pub ArrayD<f32>);

impl Tensor {
    /// A rank-1 tensor from a vector (NumPy `array([...])`).
    pub fn from_vec(values: Vec<f32>) -> Tensor {
        let n = values.len();
        Tensor(ArrayD::from_shape_vec(IxDyn(&[n]), values).expect("a vector fits its own length"))
    }

    /// A tensor of the given shape from row-major values.
    ///
    /// # Errors
    /// When `values.len()` is not the product of the shape.
    pub fn new(shape: impl IntoShape, values: Vec<f32>) -> Result<Tensor> {
        let dims = shape.into_dims();
        let n = values.len();
        ArrayD::from_shape_vec(IxDyn(&dims), values)
            .map(Tensor)
            .map_err(|_| {
                Error::invalid(
                    "Tensor::new",
                    "values",
                    format!(
                        "{} values for shape {}",
                        dims.iter().product::<usize>(),
                        Shape(dims.clone())
                    ),
                    format!("{n} values"),
                )
            })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl IntoShape) -> Tensor {
        Tensor(ArrayD::zeros(IxDyn(&shape.into_dims())))
    }

    /// A tensor filled with one value.
    pub fn full(shape: impl IntoShape, value: f32) -> Tensor {
        Tensor(ArrayD::from_elem(IxDyn(&shape.into_dims()), value))
    }

    /// The same values in a new shape (row-major, like NumPy's `reshape`).
    ///
    /// # Errors
    /// When the sizes differ.
    pub fn reshape(&self, shape: impl IntoShape) -> Result<Tensor> {
        let dims = shape.into_dims();
        let size: usize = dims.iter().product();
        if size != self.0.len() {
            return Err(Error::invalid(
                "Tensor::reshape",
                "shape",
                format!("a shape with {} elements", self.0.len()),
                format!("{} ({} elements)", Shape(dims), size),
            ));
        }
        let values: Vec<f32> = self.0.iter().copied().collect();
        Tensor::new(dims, values)
    }

    /// Joins tensors along an existing axis, like NumPy's `np.concatenate(tensors, axis)` (and Keras'
    /// `Concatenate` layer on concrete values): all shapes must agree except along `axis`.
    ///
    /// ```
    /// use rnnlab::Tensor;
    /// let a = Tensor::zeros((1, 1, 3));
    /// let b = Tensor::full((1, 2, 3), 1.0);
    /// let joined = Tensor::concatenate(&[&a, &b], 1).unwrap();
    /// assert_eq!(joined.shape(), [1, 3, 3]);
    /// assert!(Tensor::concatenate(&[&a, &b], 2).is_err()); // axis 1 differs: 1 vs 2
    /// ```
    ///
    /// # Errors
    /// No tensors, an axis outside the rank, or shapes that differ off `axis`.
    pub fn concatenate(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
        const CTX: &str = "Tensor::concatenate";
        let Some(first) = tensors.first() else {
            return Err(Error::invalid(
                CTX,
                "tensors",
                "at least one tensor",
                "an empty list",
            ));
        };
        if axis >= first.rank() {
            return Err(Error::invalid(
                CTX,
                "axis",
                format!("an axis below the rank {}", first.rank()),
                axis.to_string(),
            ));
        }
        for (i, t) in tensors.iter().enumerate() {
            let same_rank = t.rank() == first.rank();
            let same_off_axis = same_rank
                && t.0
                    .shape()
                    .iter()
                    .zip(first.0.shape())
                    .enumerate()
                    .all(|(d, (a, b))| d == axis || a == b);
            if !same_off_axis {
                return Err(Error::invalid(
                    CTX,
                    format!("tensors[{i}]"),
                    format!("a shape matching {} except on axis {axis}", first.shape()),
                    t.shape().to_string(),
                ));
            }
        }
        let views: Vec<_> = tensors.iter().map(|t| t.0.view()).collect();
        ndarray::concatenate(ndarray::Axis(axis), &views)
            .map(Tensor)
            .map_err(|e| Error::invalid(CTX, "tensors", "compatible shapes", e.to_string()))
    }

    /// The shape, printed as a Python tuple.
    pub fn shape(&self) -> Shape {
        Shape(self.0.shape().to_vec())
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.ndim()
    }

    /// The underlying array.
    pub fn array(&self) -> &ArrayD<f32> {
        &self.0
    }

    /// Consumes the tensor and returns the underlying array.
    pub fn into_array(self) -> ArrayD<f32> {
        self.0
    }

    /// The values in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        self.0.iter().copied().collect()
    }

    /// Element-wise closeness in NumPy's `allclose` sense: `|a - b| <= atol + rtol * |b|`, same shape.
    pub fn allclose(&self, other: &Tensor, rtol: f32, atol: f32) -> bool {
        self.0.shape() == other.0.shape()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .all(|(a, b)| (a - b).abs() <= atol + rtol * b.abs() || (a.is_nan() && b.is_nan()))
    }

    /// The largest absolute element-wise difference (infinite when the shapes differ).
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        if self.0.shape() != other.0.shape() {
            return f32::INFINITY;
        }
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// Renders this tensor for Jupyter (evcxr): a `text/plain` block with the NumPy repr.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self:?}\nEVCXR_END_CONTENT");
    }
}

impl Deref for Tensor {
    type Target = ArrayD<f32>;
    fn deref(&self) -> &ArrayD<f32> {
        &self.0
    }
}
impl DerefMut for Tensor {
    fn deref_mut(&mut self) -> &mut ArrayD<f32> {
        &mut self.0
    }
}
impl<D: Dimension> From<ndarray::Array<f32, D>> for Tensor {
    fn from(a: ndarray::Array<f32, D>) -> Tensor {
        Tensor(a.into_dyn())
    }
}
impl From<Tensor> for ArrayD<f32> {
    fn from(t: Tensor) -> ArrayD<f32> {
        t.0
    }
}
impl From<Vec<f32>> for Tensor {
    fn from(v: Vec<f32>) -> Tensor {
        Tensor::from_vec(v)
    }
}

impl fmt::Display for Tensor {
    /// NumPy `str(a)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::numpy_fmt::array_str(&self.0.view()))
    }
}
impl fmt::Debug for Tensor {
    /// NumPy `repr(a)` with `dtype=float32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::numpy_fmt::array_repr(&self.0.view()))
    }
}
