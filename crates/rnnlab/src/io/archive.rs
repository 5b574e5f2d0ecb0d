//! The Keras 3 `.keras` file: a zip of `metadata.json`, `config.json` and `model.weights.h5`.
//!
//! [`H5Group`] is the weights file as a plain tree (attributes, groups, float datasets), read and written with
//! the pure-Rust `hdf5-pure` crate. [`KerasArchive`] is the whole zip. Mapping the tree onto the model's layers
//! in `model.get_weights()` order is [`KerasArchive::layer_weights`].
//!
//! # Where a layer's weights are
//! Keras 3 (`saving_lib._save_container_state`) names a layer's group by its **class**, not by its name:
//! `layers/<snake_case(class_name)>`, then `_1`, `_2`, ... for later layers of the same class, counting in
//! `model.layers` order (= the order of `config.json`'s `config.layers`, minus Sequential's leading InputLayer
//! and minus plain operations such as the `NotEqual` a Masking layer adds, whose module is `keras.src.ops.*`).
//! A layer's own variables are the datasets `vars/0`, `vars/1`, ... of its group, in `layer.weights` order; the
//! variables of its sub-layers live in child groups named after the Python attribute that holds them (`cell`,
//! `forward_layer`, `backward_layer`, `layer`).
//!
//! Walking the file depth-first in its group order does **not** give `get_weights()` order: HDF5 (and h5py)
//! list a group's members by name, so `backward_layer` comes before `forward_layer` and `layers/dense` before
//! `layers/lstm`. Verified on all 44 reference cases: the config-driven walk matches `weight_K.npy`, the
//! file-order walk does not (see the tests).

use std::collections::HashMap;
use std::fs;
use std::io::{Cursor, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use hdf5_pure::AttrValue;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::npy::read_member;

// Member names of a `.keras` zip, in the order Keras writes them.
const METADATA: &str = "metadata.json";
const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.weights.h5";

/// Groups nested deeper than this are refused: HDF5 hard links can form cycles, and a corrupt file must not
/// send the reader into unbounded recursion. Keras files are about 6 levels deep.
const MAX_DEPTH: usize = 64;

/// At most this many groups + datasets are read from one file, for the same reason (a cycle or a hostile file
/// with millions of objects). Keras models have a few hundred.
const MAX_OBJECTS: usize = 1_000_000;

/// An HDF5 group as a plain tree: what Keras' weight files contain.
///
/// Reading keeps every group, every attribute and every float dataset (float64 is rounded to float32). Members
/// are stored in name order (byte-wise), which is the order h5py and Keras see for files that do not track
/// creation order — i.e. every file Keras writes. Lookups are by name, so the order only matters for iteration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct H5Group {
    /// Attributes: strings as `Value::String`, numbers as numbers, string or number arrays as arrays.
    /// Attributes of other HDF5 types (compound, enum, reference) read as `Value::Null`.
    pub attrs: Vec<(String, Value)>,
    /// Child groups, in the file's (name) order, or the order they were inserted for a tree built in code.
    pub groups: Vec<(String, H5Group)>,
    /// Float datasets of this group, cast to f32, in C (row-major) order.
    pub datasets: Vec<(String, ArrayD<f32>)>,
    /// Integer datasets, kept only where the reader allows non-float data (the optimizer's int64 iteration
    /// counter in `.keras` files); written as int64.
    pub int_datasets: Vec<(String, ArrayD<i64>)>,
}

/// Splits `a/b/c` into its non-empty components (a leading `/` or doubled `//` is ignored).
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Splits `a/b/c` into (`a/b`, `c`).
fn split_last(path: &str) -> (&str, &str) {
    let p = path.trim_end_matches('/');
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

impl H5Group {
    /// The sub-group at a `/`-separated path relative to this group (`"layers/lstm/cell"`); `""` is `self`.
    pub fn group(&self, path: &str) -> Option<&H5Group> {
        let mut g = self;
        for c in components(path) {
            g = g.groups.iter().find(|(n, _)| n == c).map(|(_, g)| g)?;
        }
        Some(g)
    }

    /// Mutable access to the sub-group at `path`, if it exists.
    pub fn group_mut(&mut self, path: &str) -> Option<&mut H5Group> {
        let mut g = self;
        for c in components(path) {
            g = g.groups.iter_mut().find(|(n, _)| n == c).map(|(_, g)| g)?;
        }
        Some(g)
    }

    /// The dataset at a `/`-separated path relative to this group (`"layers/dense/vars/0"`).
    pub fn dataset(&self, path: &str) -> Option<&ArrayD<f32>> {
        let (dir, name) = split_last(path);
        self.group(dir)?
            .datasets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }

    /// The attribute `name` of this group.
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The attribute `name` of this group, if it is a string.
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attr(name)?.as_str()
    }

    /// Sets (or replaces) an attribute of this group.
    pub fn set_attr(&mut self, name: &str, value: Value) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// The Keras 3 variables of the object whose group this is: the datasets of the child group `vars`, in
    /// numeric order `vars/0, vars/1, ..., vars/9, vars/10` (not lexicographic).
    ///
    /// Call it on the layer's (or cell's) group — `weights.group("layers/lstm/cell").unwrap().vars()` — not on
    /// the `vars` group itself. Empty when there is no `vars` child. Dataset names that are not decimal
    /// integers are skipped (Keras never writes any).
    pub fn vars(&self) -> Vec<&ArrayD<f32>> {
        let Some(v) = self.group("vars") else {
            return Vec::new();
        };
        let mut numbered: Vec<(u64, &ArrayD<f32>)> = v
            .datasets
            .iter()
            .filter_map(|(n, a)| {
                let all_digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
                all_digits
                    .then(|| n.parse::<u64>().ok().map(|k| (k, a)))
                    .flatten()
            })
            .collect();
        numbered.sort_by_key(|(k, _)| *k);
        numbered.into_iter().map(|(_, a)| a).collect()
    }

    /// The sub-group at `path`, creating it (and any missing parents) at the end of each `groups` list.
    /// For building trees to write.
    pub fn group_mut_or_insert(&mut self, path: &str) -> &mut H5Group {
        let mut g = self;
        for c in components(path) {
            let i = match g.groups.iter().position(|(n, _)| n == c) {
                Some(i) => i,
                None => {
                    g.groups.push((c.to_string(), H5Group::default()));
                    g.groups.len() - 1
                }
            };
            g = &mut g.groups[i].1;
        }
        g
    }

    /// Stores `array` at `path` (`"layers/dense/vars/0"`), creating parent groups and replacing a dataset of
    /// the same name.
    pub fn insert_dataset(&mut self, path: &str, array: ArrayD<f32>) {
        let (dir, name) = split_last(path);
        let g = self.group_mut_or_insert(dir);
        match g.datasets.iter_mut().find(|(n, _)| n == name) {
            Some((_, a)) => *a = array,
            None => g.datasets.push((name.to_string(), array)),
        }
    }

    /// Every dataset below this group as (`path`, array), depth-first: a group's datasets, then its sub-groups,
    /// each in stored order. This is *not* `get_weights()` order for a Keras file; see the module docs.
    pub fn walk_datasets(&self) -> Vec<(String, &ArrayD<f32>)> {
        fn go<'a>(g: &'a H5Group, prefix: &str, out: &mut Vec<(String, &'a ArrayD<f32>)>) {
            for (n, a) in &g.datasets {
                out.push((format!("{prefix}{n}"), a));
            }
            for (n, c) in &g.groups {
                go(c, &format!("{prefix}{n}/"), out);
            }
        }
        let mut out = Vec::new();
        go(self, "", &mut out);
        out
    }

    /// Parses an HDF5 file held in memory; `what` names it in errors (`model.keras: model.weights.h5`).
    ///
    /// # Errors
    /// [`Error::Format`] when the bytes are not HDF5, when the file is corrupt, or when a dataset is not
    /// float32/float64 (the message gives its path and type).
    pub fn read_h5_bytes(bytes: &[u8], what: &str) -> Result<H5Group> {
        read_h5(bytes, what, &|_| false)
    }

    /// Serializes the tree as an HDF5 file (string attributes as variable-length UTF-8, as h5py writes them;
    /// datasets as contiguous little-endian float32).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a member name that is empty, `.`, contains `/` or is used twice in one
    /// group; [`Error::Unsupported`] for an attribute value with no HDF5 encoding here (bool, null, object,
    /// mixed array).
    pub fn to_h5_bytes(&self) -> Result<Vec<u8>> {
        let mut fb = hdf5_pure::FileBuilder::new();
        check_names(self, "/")?;
        for (n, v) in &self.attrs {
            fb.set_attr(n, json_to_attr(v, n, "/")?);
        }
        for (n, a) in &self.datasets {
            add_dataset(fb.create_dataset(n), a);
        }
        for (n, a) in &self.int_datasets {
            add_int_dataset(fb.create_dataset(n), a);
        }
        for (n, g) in &self.groups {
            let mut gb = fb.create_group(n);
            build_group(&mut gb, g, &format!("/{n}"))?;
            fb.add_group(gb.finish());
        }
        fb.finish().map_err(|e| {
            Error::format(
                "to_h5_bytes",
                format!("hdf5-pure could not write the file: {e}"),
            )
        })
    }
}

/// Rejects names HDF5 cannot store and duplicates, before `hdf5-pure` does so less clearly.
fn check_names(g: &H5Group, path: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let names = g
        .groups
        .iter()
        .map(|(n, _)| n)
        .chain(g.datasets.iter().map(|(n, _)| n))
        .chain(g.int_datasets.iter().map(|(n, _)| n));
    for n in names {
        if n.is_empty() || n == "." || n.contains('/') || !seen.insert(n.as_str()) {
            return Err(Error::invalid(
                format!("H5Group::to_h5_bytes, group '{path}'"),
                "member name",
                "a non-empty name without '/', not '.', unique among the group's groups and datasets",
                format!("{n:?}"),
            ));
        }
    }
    let mut seen_attrs = std::collections::HashSet::new();
    for (n, _) in &g.attrs {
        if n.is_empty() || !seen_attrs.insert(n.as_str()) {
            return Err(Error::invalid(
                format!("H5Group::to_h5_bytes, group '{path}'"),
                "attribute name",
                "a non-empty name, unique in its group",
                format!("{n:?}"),
            ));
        }
    }
    Ok(())
}

fn build_group(gb: &mut hdf5_pure::GroupBuilder, g: &H5Group, path: &str) -> Result<()> {
    check_names(g, path)?;
    for (n, v) in &g.attrs {
        gb.set_attr(n, json_to_attr(v, n, path)?);
    }
    for (n, a) in &g.datasets {
        add_dataset(gb.create_dataset(n), a);
    }
    for (n, a) in &g.int_datasets {
        add_int_dataset(gb.create_dataset(n), a);
    }
    for (n, c) in &g.groups {
        let mut cb = gb.create_group(n);
        build_group(&mut cb, c, &format!("{path}/{n}"))?;
        gb.add_group(cb.finish());
    }
    Ok(())
}

fn add_dataset(db: &mut hdf5_pure::DatasetBuilder, a: &ArrayD<f32>) {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    if a.is_empty() {
        // hdf5-pure refuses data for a zero-element shape; a dtype alone declares the empty dataset.
        db.with_dtype(hdf5_pure::make_f32_type()).with_shape(&shape);
    } else {
        let c = a.as_standard_layout();
        match c.as_slice() {
            Some(s) => db.with_f32_data(s),
            // Unreachable for a standard-layout array, but copying is harmless and avoids an unwrap.
            None => db.with_f32_data(&c.iter().copied().collect::<Vec<_>>()),
        }
        .with_shape(&shape);
    }
}

fn add_int_dataset(db: &mut hdf5_pure::DatasetBuilder, a: &ArrayD<i64>) {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    let v: Vec<i64> = a.iter().copied().collect();
    if v.is_empty() {
        db.with_dtype(hdf5_pure::make_i64_type()).with_shape(&shape);
    } else {
        db.with_i64_data(&v).with_shape(&shape);
    }
}

/// The HDF5 encoding of a JSON attribute value: the inverse of [`attr_to_json`] for what Keras writes.
fn json_to_attr(v: &Value, name: &str, path: &str) -> Result<AttrValue> {
    let unsupported = || {
        Error::Unsupported(format!(
            "H5Group::to_h5_bytes: attribute '{name}' of group '{path}' is {v}, which has no HDF5 encoding here \
             (use a string, a number, or an array of strings or of numbers)"
        ))
    };
    Ok(match v {
        // h5py stores a Python str as a variable-length UTF-8 string, and so do we.
        Value::String(s) => AttrValue::VarLenString(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                AttrValue::I64(i)
            } else if let Some(u) = n.as_u64() {
                AttrValue::U64(u)
            } else {
                AttrValue::F64(n.as_f64().ok_or_else(unsupported)?)
            }
        }
        // h5py stores an empty Python list as an empty float64 array (tf.keras' `weight_names` of a layer
        // without weights), and so do we.
        Value::Array(items) if items.is_empty() => AttrValue::F64Array(Vec::new()),
        Value::Array(items) if items.iter().all(Value::is_string) => AttrValue::VarLenStringArray(
            items
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect(),
        ),
        Value::Array(items) if items.iter().all(Value::is_i64) => {
            AttrValue::I64Array(items.iter().filter_map(Value::as_i64).collect())
        }
        Value::Array(items) if items.iter().all(Value::is_number) => {
            AttrValue::F64Array(items.iter().filter_map(Value::as_f64).collect())
        }
        _ => return Err(unsupported()),
    })
}

/// JSON view of an HDF5 attribute; see [`H5Group::attrs`].
fn attr_to_json(a: &AttrValue) -> Value {
    fn num_f(x: f64) -> Value {
        // JSON has no NaN or infinity; such an attribute reads as null rather than failing the whole file.
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
    fn arr<T: Copy>(v: &[T], f: impl Fn(T) -> Value) -> Value {
        Value::Array(v.iter().copied().map(f).collect())
    }
    fn strs(v: &[String]) -> Value {
        Value::Array(v.iter().cloned().map(Value::String).collect())
    }
    match a {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s)
        | AttrValue::StringSized { value: s, .. }
        | AttrValue::AsciiStringSized { value: s, .. } => Value::String(s.clone()),
        AttrValue::StringArray(v)
        | AttrValue::AsciiStringArray(v)
        | AttrValue::VarLenStringArray(v)
        | AttrValue::VarLenAsciiStringArray(v)
        | AttrValue::VarLenAsciiCharArray(v)
        | AttrValue::StringArraySized { values: v, .. }
        | AttrValue::AsciiStringArraySized { values: v, .. } => strs(v),
        AttrValue::F32(x) => num_f(f64::from(*x)),
        AttrValue::F64(x) => num_f(*x),
        AttrValue::F32Array(v) => arr(v, |x| num_f(f64::from(x))),
        AttrValue::F64Array(v) => arr(v, num_f),
        AttrValue::I8(x) => Value::from(*x),
        AttrValue::I16(x) => Value::from(*x),
        AttrValue::I32(x) => Value::from(*x),
        AttrValue::I64(x) => Value::from(*x),
        AttrValue::U8(x) => Value::from(*x),
        AttrValue::U16(x) => Value::from(*x),
        AttrValue::U32(x) => Value::from(*x),
        AttrValue::U64(x) => Value::from(*x),
        AttrValue::I8Array(v) => arr(v, Value::from),
        AttrValue::I16Array(v) => arr(v, Value::from),
        AttrValue::I32Array(v) => arr(v, Value::from),
        AttrValue::I64Array(v) => arr(v, Value::from),
        AttrValue::U8Array(v) => arr(v, Value::from),
        AttrValue::U16Array(v) => arr(v, Value::from),
        AttrValue::U32Array(v) => arr(v, Value::from),
        AttrValue::U64Array(v) => arr(v, Value::from),
        // `AttrValue` is non-exhaustive; anything newer is not something a Keras file holds.
        _ => Value::Null,
    }
}

/// Opens an HDF5 file held in memory and runs `f` on it, turning every failure into an error naming `what`.
pub(crate) fn with_h5_file<T>(
    bytes: &[u8],
    what: &str,
    f: impl FnOnce(&hdf5_pure::File) -> Result<T>,
) -> Result<T> {
    if !hdf5_pure::is_hdf5_bytes(bytes) {
        return Err(Error::format(what, "not an HDF5 file (no HDF5 signature)"));
    }
    // hdf5-pure is a large parser of untrusted input; a panic on some corrupt file we have not tried is
    // possible, and a corrupt file must give an error, not take the caller's process down. So, as a last
    // resort, a panic inside it is caught and reported as a format error. (The panic message still reaches
    // stderr through the default hook; we do not swap the hook because it is process-global.)
    let result = panic::catch_unwind(AssertUnwindSafe(|| -> Result<T> {
        let file = hdf5_pure::File::from_bytes(bytes.to_vec()).map_err(|e| {
            Error::format(
                what,
                format!("cannot parse the HDF5 file (corrupt or truncated?): {e}"),
            )
        })?;
        f(&file)
    }));
    result.unwrap_or_else(|_| {
        Err(Error::format(
            what,
            "the HDF5 reader failed on this file (corrupt or truncated HDF5)",
        ))
    })
}

/// The group at `path` (`""` = root) of an open file.
pub(crate) fn open_group(
    file: &hdf5_pure::File,
    what: &str,
    path: &str,
) -> Result<hdf5_pure::Group> {
    if components(path).next().is_none() {
        Ok(file.root())
    } else {
        file.group(path)
            .map_err(|e| Error::format(what, format!("no group '{path}': {e}")))
    }
}

/// Reads the tree below `root` (`""` for the whole file) of an open HDF5 file.
///
/// `skip_non_float(path)` says whether a non-float dataset at `path` is dropped instead of being an error
/// (the `.keras` reader drops the optimizer's int64 iteration counter this way).
pub(crate) fn read_tree(
    file: &hdf5_pure::File,
    file_len: usize,
    what: &str,
    root: &str,
    skip_non_float: &dyn Fn(&str) -> bool,
) -> Result<H5Group> {
    let group = open_group(file, what, root)?;
    let mut ctx = ReadCtx {
        what,
        file_len: file_len as u64,
        objects: 0,
        skip_non_float,
    };
    ctx.group(&group, root.trim_matches('/'), 0)
}

/// [`read_tree`] of the whole file, from bytes.
fn read_h5(bytes: &[u8], what: &str, skip_non_float: &dyn Fn(&str) -> bool) -> Result<H5Group> {
    with_h5_file(bytes, what, |file| {
        read_tree(file, bytes.len(), what, "", skip_non_float)
    })
}

/// The attributes of an open group, in name order.
pub(crate) fn group_attrs(
    g: &hdf5_pure::Group,
    what: &str,
    path: &str,
) -> Result<Vec<(String, Value)>> {
    let shown = if path.is_empty() { "/" } else { path };
    let map = g.attrs().map_err(|e| {
        Error::format(
            what,
            format!("cannot read the attributes of group '{shown}': {e}"),
        )
    })?;
    let mut attrs: Vec<(String, Value)> = map
        .iter()
        .map(|(k, v)| (k.clone(), attr_to_json(v)))
        .collect();
    // `attrs()` is a HashMap; name order is what h5py shows and keeps reads deterministic.
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(attrs)
}

struct ReadCtx<'a> {
    what: &'a str,
    file_len: u64,
    objects: usize,
    skip_non_float: &'a dyn Fn(&str) -> bool,
}

impl ReadCtx<'_> {
    fn bad(&self, msg: impl std::fmt::Display) -> Error {
        Error::format(self.what, msg)
    }

    fn count(&mut self) -> Result<()> {
        self.objects += 1;
        if self.objects > MAX_OBJECTS {
            return Err(self.bad(format!(
                "more than {MAX_OBJECTS} groups and datasets (corrupt file or link cycle?)"
            )));
        }
        Ok(())
    }

    fn group(&mut self, g: &hdf5_pure::Group, path: &str, depth: usize) -> Result<H5Group> {
        if depth > MAX_DEPTH {
            return Err(self.bad(format!(
                "groups nested deeper than {MAX_DEPTH} at '{path}' (link cycle?)"
            )));
        }
        let join = |n: &str| {
            if path.is_empty() {
                n.to_string()
            } else {
                format!("{path}/{n}")
            }
        };
        let mut out = H5Group {
            attrs: group_attrs(g, self.what, path)?,
            ..H5Group::default()
        };

        let mut datasets: Vec<(String, hdf5_pure::Dataset)> = g
            .iter_datasets()
            .map_err(|e| {
                self.bad(format!(
                    "cannot list the datasets of '{}': {e}",
                    display(path)
                ))
            })?
            .collect();
        // hdf5-pure does not promise an order; name order is h5py's.
        datasets.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ds) in datasets {
            self.count()?;
            let p = join(&name);
            match self.dataset(&ds, &p)? {
                Some(Data::Float(a)) => out.datasets.push((name, a)),
                Some(Data::Int(a)) => out.int_datasets.push((name, a)),
                None => {}
            }
        }

        let mut groups: Vec<(String, hdf5_pure::Group)> = g
            .iter_groups()
            .map_err(|e| {
                self.bad(format!(
                    "cannot list the groups of '{}': {e}",
                    display(path)
                ))
            })?
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, child) in groups {
            self.count()?;
            let p = join(&name);
            let c = self.group(&child, &p, depth + 1)?;
            out.groups.push((name, c));
        }
        Ok(out)
    }

    /// One dataset as f32; where `skip_non_float` allows non-float data, a small integer dataset as i64 and
    /// anything else dropped (`None`).
    fn dataset(&mut self, ds: &hdf5_pure::Dataset, path: &str) -> Result<Option<Data>> {
        use hdf5_pure::DType;
        let dtype = ds
            .dtype()
            .map_err(|e| self.bad(format!("cannot read the type of dataset '{path}': {e}")))?;
        match dtype {
            DType::F32 | DType::F64 => {}
            other => {
                if (self.skip_non_float)(path) {
                    let int = matches!(
                        other,
                        DType::I8
                            | DType::I16
                            | DType::I32
                            | DType::I64
                            | DType::U8
                            | DType::U16
                            | DType::U32
                    );
                    let shape = ds.shape().unwrap_or_default();
                    let small = shape.iter().product::<u64>() <= 1024;
                    if int && small {
                        if let Ok(v) = ds.read_i64() {
                            let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
                            if let Ok(a) = ArrayD::from_shape_vec(IxDyn(&dims), v) {
                                return Ok(Some(Data::Int(a)));
                            }
                        }
                    }
                    return Ok(None);
                }
                return Err(self.bad(format!(
                    "dataset '{path}' has type {other}: expected float32 or float64 (weights are floats)"
                )));
            }
        }
        let shape = ds
            .shape()
            .map_err(|e| self.bad(format!("cannot read the shape of dataset '{path}': {e}")))?;
        let elem = ds.element_size().unwrap_or(4).max(1);
        let count = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let bytes = count.and_then(|c| c.checked_mul(elem));
        // Guard against a corrupt shape before the reader allocates for it. Unfiltered data must fit in the
        // file; filtered (compressed) data may expand, but deflate cannot beat ~1032:1.
        let limit = if ds.filters().is_empty() {
            self.file_len
        } else {
            self.file_len.saturating_mul(1032)
        };
        match bytes {
            Some(b) if b <= limit => {}
            _ => {
                return Err(self.bad(format!(
                    "dataset '{path}' claims shape {shape:?}, more data than the file can hold (corrupt file?)"
                )))
            }
        }
        let data = ds
            .read_f32()
            .map_err(|e| self.bad(format!("cannot read dataset '{path}': {e}")))?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(&dims), data)
            .map(|a| Some(Data::Float(a)))
            .map_err(|_| {
                self.bad(format!(
                    "dataset '{path}' has shape {shape:?} but {n} values"
                ))
            })
    }
}

/// A dataset as read: float data as f32, or (where allowed) integers.
enum Data {
    Float(ArrayD<f32>),
    Int(ArrayD<i64>),
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The three members of a Keras 3 `.keras` zip.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasArchive {
    /// `metadata.json`: `{"keras_version": "3.15.1", "date_saved": "..."}`.
    pub metadata: Value,
    /// `config.json`: the serialized model (`class_name`, `config.layers`, ...).
    pub config: Value,
    /// `model.weights.h5` as a tree. Non-float datasets under the top-level `optimizer` group (the int64
    /// iteration counter of a compiled, trained model) are dropped: inference does not need them and the tree
    /// holds floats only. Any other non-float dataset is an error.
    pub weights: H5Group,
}

/// One layer of the model with its weights in `layer.get_weights()` order.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights<'a> {
    /// The layer's name in `config.json` (e.g. `lstm_16`).
    pub name: String,
    /// Its class name (e.g. `LSTM`).
    pub class_name: String,
    /// Its group in `model.weights.h5` (e.g. `layers/lstm`); `None` for an entry without one (Sequential's
    /// InputLayer, a non-layer operation, a Functional InputLayer whose group is absent).
    pub path: Option<String>,
    /// Its weights: own `vars` first, then those of its sub-layers (for a nested model: of all its layers).
    pub weights: Vec<&'a ArrayD<f32>>,
}

impl KerasArchive {
    /// Reads a `.keras` file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; otherwise as [`KerasArchive::from_bytes`].
    pub fn read(path: impl AsRef<Path>) -> Result<KerasArchive> {
        crate::io::read_with(path.as_ref(), Self::from_bytes)
    }

    /// Parses the bytes of a `.keras` file; `what` names it in error messages.
    ///
    /// # Errors
    /// [`Error::Format`] when the bytes are not a zip, a member is missing (the message lists those present),
    /// a JSON member is malformed (with line and column), or the weights file is not valid HDF5 of floats;
    /// [`Error::Unsupported`] for weights saved as `model.weights.npz` or sharded.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<KerasArchive> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            Error::format(
                what,
                format!(
                    "not a valid .keras file: it must be a zip archive of {METADATA}, {CONFIG} \
                     and {WEIGHTS} ({e})"
                ),
            )
        })?;
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        let mut member = |name: &str| -> Result<Vec<u8>> {
            if !names.iter().any(|n| n == name) {
                if name == WEIGHTS
                    && names
                        .iter()
                        .any(|n| n.starts_with("model.weights") || n.ends_with(".weights.json"))
                {
                    return Err(Error::Unsupported(format!(
                        "{what}: the weights are stored as {:?}; only a single {WEIGHTS} is supported",
                        names.iter().filter(|n| n.contains("weights")).collect::<Vec<_>>()
                    )));
                }
                return Err(Error::format(
                    what,
                    format!(
                        "the archive has no member '{name}'; it contains: {}",
                        list(&names)
                    ),
                ));
            }
            let mut f = zip.by_name(name).map_err(|e| {
                Error::format(
                    what,
                    format!("cannot open member '{name}' (corrupt archive?): {e}"),
                )
            })?;
            read_member(&mut f, name, what)
        };
        let metadata = parse_json(&member(METADATA)?, &format!("{what}: {METADATA}"))?;
        let config = parse_json(&member(CONFIG)?, &format!("{what}: {CONFIG}"))?;
        let h5 = member(WEIGHTS)?;
        let weights = read_h5(&h5, &format!("{what}: {WEIGHTS}"), &|p| {
            p == "optimizer" || p.starts_with("optimizer/")
        })?;
        Ok(KerasArchive {
            metadata,
            config,
            weights,
        })
    }

    /// Writes the archive as Keras does: members `metadata.json`, `config.json`, `model.weights.h5` in that
    /// order, all stored uncompressed (ZIP_STORED).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written; otherwise as [`KerasArchive::to_bytes`].
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        fs::write(path, bytes).map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// The bytes of the `.keras` zip; see [`KerasArchive::write`]. JSON is written the way Python's
    /// `json.dumps` writes it (`", "` and `": "` separators, non-ASCII escaped).
    ///
    /// # Errors
    /// As [`H5Group::to_h5_bytes`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let h5 = self.weights.to_h5_bytes()?;
        let members: [(&str, Vec<u8>); 3] = [
            (METADATA, python_json(&self.metadata)),
            (CONFIG, python_json(&self.config)),
            (WEIGHTS, h5),
        ];
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let zerr = |e: &dyn std::fmt::Display| {
            Error::format("KerasArchive::to_bytes", format!("zip writer: {e}"))
        };
        for (name, data) in &members {
            w.start_file(*name, options).map_err(|e| zerr(&e))?;
            w.write_all(data).map_err(|e| zerr(&e))?;
        }
        Ok(w.finish().map_err(|e| zerr(&e))?.into_inner())
    }

    /// `metadata.json`'s `keras_version`, if present.
    pub fn keras_version(&self) -> Option<&str> {
        self.metadata.get("keras_version")?.as_str()
    }

    /// The entries of `config.json`'s `config.layers`, one for one and in order, each with its weights in
    /// `get_weights()` order. Entries outside `model.layers` (Sequential's InputLayer, and plain operations
    /// such as `NotEqual` with module `keras.src.ops.*`) get `path: None` and no weights. See the module docs
    /// for how groups are found.
    ///
    /// Per layer: the `vars` of its group, then the sub-layer groups in the order Keras tracks them —
    /// `forward_layer` before `backward_layer` (Bidirectional), `cell` (RNN), `layer` (TimeDistributed), then
    /// any other child group in file (name) order. A nested Functional/Sequential model is walked recursively
    /// and its weights flattened into one entry.
    ///
    /// # Errors
    /// [`Error::Format`] when `config.json` has no `config.layers` list, or a weighted layer's group is
    /// missing or belongs to a different layer (its `vars` attribute `name` differs from the config name).
    pub fn layer_weights(&self) -> Result<Vec<LayerWeights<'_>>> {
        model_layers(&self.config, &self.weights, "", "config.json")
    }

    /// The flat weight list in `model.get_weights()` order: [`KerasArchive::layer_weights`] concatenated.
    ///
    /// # Errors
    /// As [`KerasArchive::layer_weights`].
    pub fn get_weights(&self) -> Result<Vec<&ArrayD<f32>>> {
        Ok(self
            .layer_weights()?
            .into_iter()
            .flat_map(|l| l.weights)
            .collect())
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing (an empty zip)".into()
    } else {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses a JSON member; serde_json's message carries the line and column.
pub(crate) fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::format(what, format!("malformed JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::format(
            what,
            "expected a JSON object at the top level",
        ));
    }
    Ok(v)
}

/// Keras' `naming.to_snake_case`: drop non-word characters, then split CamelCase with underscores.
/// `LSTM` → `lstm`, `SimpleRNN` → `simple_rnn`, `InputLayer` → `input_layer`, `TimeDistributed` →
/// `time_distributed`, `GRUCell` → `gru_cell`.
pub fn to_snake_case(name: &str) -> String {
    // re.sub(r"\W+", "", name): \W is "not a word character" (Unicode letters, digits, underscore).
    let s: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", s): insert '_' before each uppercase letter that starts a run of
    // lowercase letters, if it is not the first character. Non-overlapping left-to-right matching: a match
    // consumes the preceding char plus the capitalised word, so the next match starts after the word.
    let mut a: Vec<char> = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        // Try a match starting at i: s[i] any char, s[i+1] in A-Z, s[i+2..] one or more a-z.
        if i + 2 < s.len() && s[i + 1].is_ascii_uppercase() && s[i + 2].is_ascii_lowercase() {
            let mut j = i + 2;
            while j < s.len() && s[j].is_ascii_lowercase() {
                j += 1;
            }
            a.push(s[i]);
            a.push('_');
            a.extend_from_slice(&s[i + 1..j]);
            i = j;
        } else {
            a.push(s[i]);
            i += 1;
        }
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", a).lower(): matches are two chars and do not overlap.
    let mut b = String::with_capacity(a.len() + 8);
    let mut i = 0;
    while i < a.len() {
        if i + 1 < a.len() && a[i].is_ascii_lowercase() && a[i + 1].is_ascii_uppercase() {
            b.push(a[i]);
            b.push('_');
            b.push(a[i + 1]);
            i += 2;
        } else {
            b.push(a[i]);
            i += 1;
        }
    }
    b.to_lowercase()
}

/// The sub-layer groups whose order Keras' `layer.weights` is known for (attribute assignment order in the
/// layer's `__init__`), ahead of any other child, which comes in file order.
const SUBLAYER_ORDER: &[&str] = &["forward_layer", "backward_layer", "cell", "layer"];

/// Weights of a (non-model) layer's group: own vars, then sub-layers; see [`KerasArchive::layer_weights`].
fn layer_group_weights<'a>(g: &'a H5Group, out: &mut Vec<&'a ArrayD<f32>>) {
    out.extend(g.vars());
    let known = SUBLAYER_ORDER
        .iter()
        .filter_map(|k| g.groups.iter().find(|(n, _)| n == k));
    let rest = g
        .groups
        .iter()
        .filter(|(n, _)| n != "vars" && !SUBLAYER_ORDER.contains(&n.as_str()));
    for (_, c) in known.chain(rest) {
        layer_group_weights(c, out);
    }
}

fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key)?.as_str()
}

/// The layers of the serialized model `model` whose state is in `group` (the file root, or a nested model's
/// group), with `prefix` the group's path for messages.
fn model_layers<'a>(
    model: &Value,
    group: &'a H5Group,
    prefix: &str,
    what: &str,
) -> Result<Vec<LayerWeights<'a>>> {
    let class = str_at(model, "class_name").unwrap_or("?");
    let layers = model
        .get("config")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            let msg = format!(
                "the model ({class}) has no `config.layers` list; only Functional and Sequential \
                 models can be mapped to their weights"
            );
            Error::format(what, msg)
        })?;
    let sequential = class == "Sequential";
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(layers.len());
    for (k, entry) in layers.iter().enumerate() {
        let lclass = str_at(entry, "class_name").ok_or_else(|| {
            Error::format(what, format!("layer #{k} of the model has no class_name"))
        })?;
        let name = entry
            .get("config")
            .and_then(|c| str_at(c, "name"))
            .or_else(|| str_at(entry, "name"))
            .unwrap_or("")
            .to_string();
        // Sequential.layers leaves out the InputLayer, and Functional.layers leaves out plain operations
        // (`keras.src.ops.*`, e.g. the NotEqual/Any a Masking layer's mask computation adds to the graph): they
        // have no group and take no counter.
        let module = str_at(entry, "module").unwrap_or("");
        let is_operation = module.starts_with("keras.src.ops") || module.starts_with("keras.ops");
        if (sequential && lclass == "InputLayer") || is_operation {
            out.push(LayerWeights {
                name,
                class_name: lclass.into(),
                path: None,
                weights: Vec::new(),
            });
            continue;
        }
        // saving_lib._get_unique_name: `name`, then `name_1`, `name_2`, ...
        let base = to_snake_case(lclass);
        let unique = match used.get_mut(&base) {
            Some(n) => {
                *n += 1;
                format!("{base}_{n}")
            }
            None => {
                used.insert(base.clone(), 0);
                base
            }
        };
        let rel = format!("layers/{unique}");
        let full = format!("{prefix}{rel}");
        let Some(g) = group.group(&rel) else {
            if lclass == "InputLayer" {
                out.push(LayerWeights {
                    name,
                    class_name: lclass.into(),
                    path: None,
                    weights: Vec::new(),
                });
                continue;
            }
            let present: Vec<String> = group.group("layers").map_or_else(Vec::new, |l| {
                l.groups.iter().map(|(n, _)| n.clone()).collect()
            });
            return Err(Error::format(
                what,
                format!(
                    "layer '{name}' ({lclass}) should have its weights in group '{full}' of \
                     model.weights.h5, which does not exist; '{prefix}layers' has: {}",
                    list(&present)
                ),
            ));
        };
        // The `vars` group records the layer's name: a cheap check that the class-counter mapping is right.
        if let Some(stored) = g.group("vars").and_then(|v| v.attr_str("name")) {
            if !name.is_empty() && stored != name {
                return Err(Error::format(
                    what,
                    format!(
                        "group '{full}' of model.weights.h5 holds layer '{stored}', but \
                         config.json's layer #{k} ({lclass}) is '{name}'"
                    ),
                ));
            }
        }
        let mut weights = Vec::new();
        if entry
            .get("config")
            .and_then(|c| c.get("layers"))
            .is_some_and(Value::is_array)
        {
            // A nested model: its own layers, in its own order, flattened into this one entry.
            for l in model_layers(entry, g, &format!("{full}/"), what)? {
                weights.extend(l.weights);
            }
        } else {
            layer_group_weights(g, &mut weights);
        }
        out.push(LayerWeights {
            name,
            class_name: lclass.into(),
            path: Some(full),
            weights,
        });
    }
    Ok(out)
}

/// Serializes JSON the way Python's `json.dumps` does by default, which is how Keras writes its members.
pub(crate) fn python_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    // Serializing a `Value` into a Vec cannot fail: keys are strings and there are no I/O errors.
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return serde_json::to_vec(v).unwrap_or_default();
    }
    out
}

/// `json.dumps` defaults: `", "` between items, `": "` after keys, `ensure_ascii=True`.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::read_npy;
    use ndarray::array;
    use std::io::Read;
    use std::path::PathBuf;

    const CASES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/keras-cases"
    );

    fn case_dirs() -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(CASES)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("model.keras").exists())
            .collect();
        v.sort();
        assert_eq!(v.len(), 44);
        v
    }

    fn case_json(dir: &Path) -> Value {
        serde_json::from_slice(&fs::read(dir.join("case.json")).unwrap()).unwrap()
    }

    /// `weight_K.npy`: `model.get_weights()` as Keras saved it.
    fn expected_weights(dir: &Path) -> Vec<ArrayD<f32>> {
        let n = case_json(dir)["weights"].as_array().unwrap().len();
        (0..n)
            .map(|k| read_npy(dir.join(format!("weight_{k}.npy"))).unwrap().0)
            .collect()
    }

    fn member_bytes(path: &Path, name: &str) -> Vec<u8> {
        let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
        let mut v = Vec::new();
        z.by_name(name).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rnnlab-io-archive-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, d) in members {
            w.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(d).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn every_case_gives_get_weights_in_order_exactly() {
        for dir in case_dirs() {
            let a = KerasArchive::read(dir.join("model.keras")).unwrap();
            let want = expected_weights(&dir);
            let got = a.get_weights().unwrap();
            assert_eq!(got.len(), want.len(), "{}", dir.display());
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                // Bitwise: same shape and the same f32 values.
                assert_eq!(*g, w, "{} weight {k}", dir.display());
            }
            // Layer names and classes agree with case.json ("lstm (LSTM)"), in order.
            let case = case_json(&dir);
            let layers = a.layer_weights().unwrap();
            let named: Vec<String> = layers
                .iter()
                .map(|l| format!("{} ({})", l.name, l.class_name))
                .collect();
            let listed: Vec<String> = case["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            // case.json lists model.layers; for Sequential that leaves out the InputLayer.
            let named: Vec<String> = named.into_iter().filter(|n| listed.contains(n)).collect();
            assert_eq!(named, listed, "{}", dir.display());
        }
    }

    #[test]
    fn file_order_depth_first_is_not_get_weights_order() {
        // The simple walk matches for single-layer cases but not in general: HDF5 lists members by name.
        let mut mismatched = Vec::new();
        for dir in case_dirs() {
            let a = KerasArchive::read(dir.join("model.keras")).unwrap();
            let walked: Vec<&ArrayD<f32>> = a
                .weights
                .walk_datasets()
                .into_iter()
                .map(|(_, d)| d)
                .collect();
            if walked != a.get_weights().unwrap() {
                mismatched.push(dir.file_name().unwrap().to_string_lossy().to_string());
            }
        }
        for name in [
            "bidirectional_lstm_concat",
            "bidirectional_gru_sum",
            "encoder_decoder_lstm_initial_state",
        ] {
            assert!(
                mismatched.iter().any(|m| m == name),
                "{name} unexpectedly matched; mismatched: {mismatched:?}"
            );
        }
    }

    #[test]
    fn every_case_has_metadata_and_config() {
        for dir in case_dirs() {
            let a = KerasArchive::read(dir.join("model.keras")).unwrap();
            assert_eq!(a.keras_version(), Some("3.15.1"));
            assert_eq!(a.metadata["keras_version"], "3.15.1");
            let class = a.config["class_name"].as_str().unwrap();
            assert!(class == "Functional" || class == "Sequential", "{class}");
            assert!(a.config["config"]["layers"].is_array());
            // `vars` groups carry the owner's name.
            assert!(a.weights.group("vars").unwrap().attr_str("name").is_some());
        }
    }

    #[test]
    fn json_is_written_byte_for_byte_as_keras_writes_it() {
        for dir in case_dirs() {
            let p = dir.join("model.keras");
            let a = KerasArchive::read(&p).unwrap();
            assert_eq!(
                python_json(&a.metadata),
                member_bytes(&p, METADATA),
                "{}",
                p.display()
            );
            assert_eq!(
                python_json(&a.config),
                member_bytes(&p, CONFIG),
                "{}",
                p.display()
            );
        }
        assert_eq!(
            python_json(&serde_json::json!({"a": ["é", 1, 2.5], "b": {}})),
            br#"{"a": ["\u00e9", 1, 2.5], "b": {}}"#
        );
    }

    #[test]
    fn archive_write_read_round_trip() {
        for dir in case_dirs() {
            let a = KerasArchive::read(dir.join("model.keras")).unwrap();
            let p = tmp(&format!(
                "{}.keras",
                dir.file_name().unwrap().to_string_lossy()
            ));
            a.write(&p).unwrap();
            let b = KerasArchive::read(&p).unwrap();
            assert_eq!(a, b, "{}", dir.display());
            // Members in Keras' order, all stored.
            let mut z = zip::ZipArchive::new(fs::File::open(&p).unwrap()).unwrap();
            let names: Vec<&str> = z.file_names().collect();
            assert_eq!(names, [METADATA, CONFIG, WEIGHTS]);
            for i in 0..3 {
                assert_eq!(
                    z.by_index(i).unwrap().compression(),
                    zip::CompressionMethod::Stored
                );
            }
        }
    }

    #[test]
    fn vars_are_in_numeric_order() {
        let mut g = H5Group::default();
        // Inserted in lexicographic order, as a name-ordered file lists them: 0, 1, 10, 11, 2, ...
        let mut names: Vec<String> = (0..12).map(|i| i.to_string()).collect();
        names.sort();
        for n in &names {
            g.insert_dataset(
                &format!("layer/vars/{n}"),
                array![n.parse::<f32>().unwrap()].into_dyn(),
            );
        }
        g.insert_dataset("layer/vars/not_a_number", array![-1f32].into_dyn());
        let order: Vec<f32> = g
            .group("layer")
            .unwrap()
            .vars()
            .iter()
            .map(|a| a[[0]])
            .collect();
        assert_eq!(order, (0..12).map(|i| i as f32).collect::<Vec<_>>());
        assert!(g.vars().is_empty());
        // And through HDF5 and back.
        let back = H5Group::read_h5_bytes(&g.to_h5_bytes().unwrap(), "v.h5").unwrap();
        let order2: Vec<f32> = back
            .group("layer")
            .unwrap()
            .vars()
            .iter()
            .map(|a| a[[0]])
            .collect();
        assert_eq!(order2, order);
    }

    #[test]
    fn tree_lookups_and_building() {
        let mut g = H5Group::default();
        g.group_mut_or_insert("layers/lstm/cell/vars")
            .set_attr("name", Value::from("lstm_cell"));
        g.insert_dataset("layers/lstm/cell/vars/0", array![[1f32, 2.]].into_dyn());
        g.group_mut_or_insert("/layers//lstm/"); // existing path: no new group
        assert_eq!(g.groups.len(), 1);
        assert_eq!(g.group("layers/lstm").unwrap().groups.len(), 1);
        assert_eq!(g.group("").unwrap(), &g);
        assert_eq!(
            g.group("layers/lstm/cell/vars").unwrap().attr_str("name"),
            Some("lstm_cell")
        );
        assert_eq!(
            g.dataset("layers/lstm/cell/vars/0").unwrap(),
            &array![[1f32, 2.]].into_dyn()
        );
        assert!(g.dataset("layers/lstm/cell/vars/1").is_none());
        assert!(g.group("layers/gru").is_none());
        g.insert_dataset("layers/lstm/cell/vars/0", array![3f32].into_dyn());
        assert_eq!(g.group("layers/lstm/cell/vars").unwrap().datasets.len(), 1);
    }

    #[test]
    fn h5_round_trip_of_attributes_and_shapes() {
        let mut g = H5Group::default();
        g.set_attr("s", Value::from("text é"));
        g.set_attr("i", Value::from(-3));
        g.set_attr("f", Value::from(0.5));
        g.set_attr("strs", serde_json::json!(["a", "bc"]));
        g.set_attr("ints", serde_json::json!([1, 2, 3]));
        g.set_attr("floats", serde_json::json!([1.5, 2]));
        g.set_attr("none", serde_json::json!([]));
        g.insert_dataset("scalar", ndarray::arr0(2.5f32).into_dyn());
        g.insert_dataset("empty", ArrayD::zeros(IxDyn(&[0, 4])));
        g.insert_dataset(
            "d/rank3",
            ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
                (i[0] * 100 + i[1] * 10 + i[2]) as f32
            }),
        );
        let t = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| (i[0] * 2 + i[1]) as f32);
        g.insert_dataset("d/transposed", t.clone().reversed_axes());
        g.group_mut_or_insert("empty_group");
        let back = H5Group::read_h5_bytes(&g.to_h5_bytes().unwrap(), "rt.h5").unwrap();
        assert_eq!(back.attr_str("s"), Some("text é"));
        assert_eq!(back.attr("i"), Some(&Value::from(-3)));
        assert_eq!(back.attr("f"), Some(&Value::from(0.5)));
        assert_eq!(back.attr("strs"), Some(&serde_json::json!(["a", "bc"])));
        assert_eq!(back.attr("ints"), Some(&serde_json::json!([1, 2, 3])));
        assert_eq!(back.attr("floats"), Some(&serde_json::json!([1.5, 2.0])));
        assert_eq!(back.attr("none"), Some(&serde_json::json!([])));
        for p in ["scalar", "empty", "d/rank3"] {
            assert_eq!(back.dataset(p), g.dataset(p), "{p}");
        }
        assert_eq!(back.dataset("d/transposed").unwrap(), &t.reversed_axes());
        assert!(back.group("empty_group").is_some());
        // Read back in name order.
        let names: Vec<&str> = back.datasets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["empty", "scalar"]);
    }

    #[test]
    fn writing_rejects_what_hdf5_cannot_hold() {
        let mut g = H5Group::default();
        g.insert_dataset("a", array![1f32].into_dyn());
        g.group_mut_or_insert("a");
        assert!(matches!(
            g.to_h5_bytes().unwrap_err(),
            Error::InvalidArgument { .. }
        ));
        let mut g = H5Group::default();
        g.groups.push(("x/y".into(), H5Group::default()));
        assert!(matches!(
            g.to_h5_bytes().unwrap_err(),
            Error::InvalidArgument { .. }
        ));
        for bad in [
            Value::Bool(true),
            Value::Null,
            serde_json::json!({"k": 1}),
            serde_json::json!([1, "a"]),
        ] {
            let mut g = H5Group::default();
            g.group_mut_or_insert("g").set_attr("flag", bad.clone());
            let err = g.to_h5_bytes().unwrap_err();
            assert!(matches!(err, Error::Unsupported(_)), "{bad}: {err}");
            assert!(
                err.to_string().contains("'flag'") && err.to_string().contains("/g"),
                "{err}"
            );
        }
    }

    #[test]
    fn snake_case_matches_keras() {
        for (class, snake) in [
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("SimpleRNN", "simple_rnn"),
            ("InputLayer", "input_layer"),
            ("TimeDistributed", "time_distributed"),
            ("RepeatVector", "repeat_vector"),
            ("Bidirectional", "bidirectional"),
            ("Dense", "dense"),
            ("LSTMCell", "lstm_cell"),
            ("GRUCell", "gru_cell"),
            ("ConvLSTM2D", "conv_lstm2d"),
            ("BatchNormalization", "batch_normalization"),
            ("Functional", "functional"),
            ("HTTPServerError", "http_server_error"),
            ("My-Layer", "my_layer"),
        ] {
            assert_eq!(to_snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn nested_models_and_name_checks() {
        // A Functional model whose second layer is a nested Sequential holding a Dense.
        let config = serde_json::json!({"class_name": "Functional", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "in"}},
            {"class_name": "Sequential", "config": {"name": "inner", "layers": [
                {"class_name": "InputLayer", "config": {"name": "inner_in"}},
                {"class_name": "Dense", "config": {"name": "d1"}},
                {"class_name": "Dense", "config": {"name": "d2"}}]}},
            {"class_name": "Dense", "config": {"name": "top"}}]}});
        let mut w = H5Group::default();
        w.group_mut_or_insert("layers/input_layer/vars")
            .set_attr("name", "in".into());
        w.group_mut_or_insert("layers/sequential/vars")
            .set_attr("name", "inner".into());
        w.insert_dataset(
            "layers/sequential/layers/dense/vars/0",
            array![1f32].into_dyn(),
        );
        w.insert_dataset(
            "layers/sequential/layers/dense_1/vars/0",
            array![2f32].into_dyn(),
        );
        w.insert_dataset("layers/dense/vars/0", array![3f32].into_dyn());
        w.insert_dataset("layers/dense/vars/1", array![4f32].into_dyn());
        let a = KerasArchive {
            metadata: serde_json::json!({}),
            config,
            weights: w,
        };
        let flat: Vec<f32> = a.get_weights().unwrap().iter().map(|x| x[[0]]).collect();
        assert_eq!(flat, [1., 2., 3., 4.]);
        let layers = a.layer_weights().unwrap();
        assert_eq!(layers.len(), 3);
        assert_eq!(layers[1].path.as_deref(), Some("layers/sequential"));
        // A group that records another layer's name is refused.
        let mut b = a.clone();
        b.weights
            .group_mut_or_insert("layers/dense/vars")
            .set_attr("name", "someone_else".into());
        let err = b.layer_weights().unwrap_err().to_string();
        assert!(err.contains("someone_else") && err.contains("top"), "{err}");
        // A missing group is named, with what is there.
        let mut c = a.clone();
        c.weights
            .group_mut("layers")
            .unwrap()
            .groups
            .retain(|(n, _)| n != "dense");
        let err = c.layer_weights().unwrap_err().to_string();
        assert!(
            err.contains("layers/dense") && err.contains("'sequential'"),
            "{err}"
        );
        // A config without layers.
        let d = KerasArchive {
            config: serde_json::json!({"class_name": "MyModel", "config": {}}),
            ..a
        };
        assert!(d
            .layer_weights()
            .unwrap_err()
            .to_string()
            .contains("MyModel"));
    }

    fn fixture_bytes() -> Vec<u8> {
        fs::read(format!(
            "{CASES}/encoder_decoder_lstm_initial_state/model.keras"
        ))
        .unwrap()
    }

    #[test]
    fn bad_zip_input_is_a_clear_error() {
        let good = fixture_bytes();
        for (bytes, label) in [
            (&good[..good.len() / 2], "truncated"),
            (&good[..100], "truncated"),
            (&b""[..], "empty"),
            (&b"garbage bytes, not a zip"[..], "garbage"),
            (&[0u8; 4096][..], "zeros"),
        ] {
            let err = KerasArchive::from_bytes(bytes, "m.keras").unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{label}: {err}");
            assert!(err.to_string().starts_with("m.keras: "), "{label}: {err}");
        }
        // Every truncation point: an error, never a panic.
        for n in (0..good.len()).step_by(97) {
            assert!(KerasArchive::from_bytes(&good[..n], "cut").is_err());
        }
    }

    #[test]
    fn a_missing_member_is_named_with_the_members_present() {
        let p = PathBuf::from(format!(
            "{CASES}/encoder_decoder_lstm_initial_state/model.keras"
        ));
        let meta = member_bytes(&p, METADATA);
        let cfg = member_bytes(&p, CONFIG);
        let bytes = zip_of(&[(METADATA, &meta), (CONFIG, &cfg), ("assets/x.txt", b"x")]);
        let err = KerasArchive::from_bytes(&bytes, "m.keras")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'model.weights.h5'")
                && err.contains("'metadata.json', 'config.json', 'assets/x.txt'"),
            "{err}"
        );
        let bytes = zip_of(&[(CONFIG, &cfg)]);
        assert!(KerasArchive::from_bytes(&bytes, "m.keras")
            .unwrap_err()
            .to_string()
            .contains("no member 'metadata.json'"));
        let bytes = zip_of(&[
            (METADATA, &meta),
            (CONFIG, &cfg),
            ("model.weights.npz", b"PK"),
        ]);
        assert!(matches!(
            KerasArchive::from_bytes(&bytes, "m.keras").unwrap_err(),
            Error::Unsupported(_)
        ));
    }

    #[test]
    fn malformed_json_reports_member_line_and_column() {
        let p = PathBuf::from(format!(
            "{CASES}/encoder_decoder_lstm_initial_state/model.keras"
        ));
        let meta = member_bytes(&p, METADATA);
        let h5 = member_bytes(&p, WEIGHTS);
        let bytes = zip_of(&[
            (METADATA, &meta),
            (
                CONFIG,
                b"{\n  \"class_name\": \"Functional\",\n  \"config\": }",
            ),
            (WEIGHTS, &h5),
        ]);
        let err = KerasArchive::from_bytes(&bytes, "m.keras")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.keras: config.json: malformed JSON"),
            "{err}"
        );
        assert!(err.contains("line 3 column"), "{err}");
        let bytes = zip_of(&[(METADATA, b"[1, 2]"), (CONFIG, b"{}"), (WEIGHTS, &h5)]);
        assert!(KerasArchive::from_bytes(&bytes, "m.keras")
            .unwrap_err()
            .to_string()
            .contains("metadata.json: expected a JSON object"));
    }

    #[test]
    fn bad_weights_files_are_clear_errors() {
        let p = PathBuf::from(format!(
            "{CASES}/encoder_decoder_lstm_initial_state/model.keras"
        ));
        let meta = member_bytes(&p, METADATA);
        let cfg = member_bytes(&p, CONFIG);
        let h5 = member_bytes(&p, WEIGHTS);
        let with = |w: &[u8]| zip_of(&[(METADATA, &meta), (CONFIG, &cfg), (WEIGHTS, w)]);
        let err = KerasArchive::from_bytes(&with(b"not hdf5 at all"), "m.keras")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.keras: model.weights.h5: not an HDF5 file"),
            "{err}"
        );
        let err = KerasArchive::from_bytes(&with(&h5[..h5.len() / 2]), "m.keras")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.keras: model.weights.h5: "), "{err}");
        // Every truncation and many single-byte corruptions: errors or (for harmless bytes) success, no panic
        // escapes and nothing hangs.
        for n in (0..h5.len()).step_by(211) {
            assert!(
                H5Group::read_h5_bytes(&h5[..n], "cut.h5").is_err(),
                "prefix {n}"
            );
        }
        for i in (0..h5.len()).step_by(37) {
            for b in [0x00, 0xff, 0x7f] {
                let mut bad = h5.clone();
                bad[i] ^= b;
                let _ = H5Group::read_h5_bytes(&bad, "flip.h5");
            }
        }
    }

    #[test]
    fn non_float_datasets_are_errors_except_optimizer_state() {
        let mut fb = hdf5_pure::FileBuilder::new();
        let mut layers = fb.create_group("layers");
        let mut dense = layers.create_group("dense");
        let mut vars = dense.create_group("vars");
        vars.create_dataset("0").with_i32_data(&[1, 2, 3]);
        dense.add_group(vars.finish());
        layers.add_group(dense.finish());
        fb.add_group(layers.finish());
        let bytes = fb.finish().unwrap();
        let err = H5Group::read_h5_bytes(&bytes, "w.h5")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("w.h5") && err.contains("layers/dense/vars/0") && err.contains("i32"),
            "{err}"
        );

        // float64 datasets are rounded to float32.
        let mut fb = hdf5_pure::FileBuilder::new();
        fb.create_dataset("d")
            .with_f64_data(&[0.1, 1.0 / 3.0, -2.5, 1e300])
            .with_shape(&[2, 2]);
        let g = H5Group::read_h5_bytes(&fb.finish().unwrap(), "f64.h5").unwrap();
        let want = array![
            [0.1f64 as f32, (1.0f64 / 3.0) as f32],
            [-2.5, f32::INFINITY]
        ]
        .into_dyn();
        assert_eq!(g.dataset("d").unwrap(), &want);

        // The optimizer's int64 iteration counter, as a compiled & trained model saves it, is kept apart as an
        // integer dataset (training resumes from it); outside the optimizer group it is an error.
        let mut fb = hdf5_pure::FileBuilder::new();
        let mut opt = fb.create_group("optimizer");
        let mut vars = opt.create_group("vars");
        vars.set_attr("name", AttrValue::VarLenString("adam".into()));
        vars.create_dataset("0")
            .with_i64_data(&[10])
            .with_shape(&[]);
        vars.create_dataset("1")
            .with_f32_data(&[0.001])
            .with_shape(&[]);
        opt.add_group(vars.finish());
        fb.add_group(opt.finish());
        let mut v = fb.create_group("vars");
        v.set_attr("name", AttrValue::VarLenString("functional".into()));
        fb.add_group(v.finish());
        let h5 = fb.finish().unwrap();
        let bytes = zip_of(&[
            (METADATA, b"{\"keras_version\": \"3.15.1\"}"),
            (
                CONFIG,
                b"{\"class_name\": \"Functional\", \"config\": {\"layers\": []}}",
            ),
            (WEIGHTS, &h5),
        ]);
        let a = KerasArchive::from_bytes(&bytes, "m.keras").unwrap();
        let opt = a.weights.group("optimizer/vars").unwrap();
        assert_eq!(opt.datasets.len(), 1);
        assert_eq!(opt.datasets[0].0, "1");
        assert_eq!(opt.int_datasets.len(), 1);
        assert_eq!(opt.int_datasets[0].0, "0");
        assert_eq!(
            opt.int_datasets[0].1.iter().copied().collect::<Vec<_>>(),
            [10]
        );
        // Written back as int64.
        let again = H5Group::read_h5_bytes(&a.weights.to_h5_bytes().unwrap(), "again.h5");
        assert!(again.unwrap_err().to_string().contains("optimizer/vars/0"));
        assert!(H5Group::read_h5_bytes(&h5, "strict.h5")
            .unwrap_err()
            .to_string()
            .contains("optimizer/vars/0"));
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = KerasArchive::read("/nonexistent/model.keras").unwrap_err();
        assert!(matches!(err, Error::Io { action: "read", .. }), "{err}");
        let a = KerasArchive {
            metadata: serde_json::json!({}),
            config: serde_json::json!({}),
            weights: H5Group::default(),
        };
        assert!(matches!(
            a.write("/nonexistent/dir/m.keras").unwrap_err(),
            Error::Io {
                action: "write",
                ..
            }
        ));
    }
}
