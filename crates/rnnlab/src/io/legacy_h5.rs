//! The legacy tf.keras 2.x full-model `.h5` file (`model.save("m.h5")`).
//!
//! Layout (tf-keras `legacy/saving/hdf5_format.py`):
//! * root attributes `model_config` (the model as a JSON string), `keras_version`, `backend`, and, for a
//!   compiled model, `training_config`;
//! * group `model_weights` with attribute `layer_names` (the layers in `model.layers` order), and per layer a
//!   group `model_weights/<layer name>` with attribute `weight_names` (e.g. `lstm/lstm_cell/kernel:0`) giving
//!   the layer's weights in order; each weight is the dataset `model_weights/<layer name>/<weight name>`
//!   (the `/` in a weight name are real sub-groups);
//! * for a compiled model, `optimizer_weights` (not read: it holds an int64 iteration counter and is not needed
//!   for inference).
//!
//! `layer_names` and `weight_names` lists too long for one HDF5 attribute (64 KiB) are split by tf.keras into
//! `layer_names0`, `layer_names1`, ...; both forms are read.

use std::path::Path;

use ndarray::ArrayD;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::archive::{group_attrs, open_group, read_tree, with_h5_file, H5Group};

/// One layer's weights: (weight name as stored, e.g. `lstm/lstm_cell/kernel:0`, value), in `weight_names` order.
pub type NamedWeights = Vec<(String, ArrayD<f32>)>;

/// A tf.keras 2.x full-model `.h5` file: root attrs `model_config` (JSON string), `keras_version`, `backend`;
/// group `model_weights` with attr `layer_names`, per layer group attr `weight_names` (e.g.
/// `"lstm/lstm_cell/kernel:0"`) giving the weight order.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyH5 {
    /// The parsed `model_config` attribute: `{"class_name": "Functional", "config": {...}}`.
    pub model_config: Value,
    /// The `keras_version` attribute (e.g. `2.21.0`), if present.
    pub keras_version: Option<String>,
    /// The `backend` attribute (e.g. `tensorflow`), if present.
    pub backend: Option<String>,
    /// Layer name → its weights in `weight_names` order, names as stored; layers in `layer_names` order
    /// (including layers without weights, such as the InputLayer, with an empty list).
    pub layers: Vec<(String, NamedWeights)>,
}

impl LegacyH5 {
    /// Reads a legacy `.h5` model file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; otherwise as [`LegacyH5::from_bytes`].
    pub fn read(path: impl AsRef<Path>) -> Result<LegacyH5> {
        crate::io::read_with(path.as_ref(), Self::from_bytes)
    }

    /// Parses the bytes of a legacy `.h5` model file; `what` names it in error messages.
    ///
    /// # Errors
    /// [`Error::Format`] when the bytes are not HDF5, a required attribute or group is missing (a weights-only
    /// file from `save_weights` is reported as such), `model_config` is not valid JSON, or a weight is missing
    /// or not float.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<LegacyH5> {
        if bytes.starts_with(b"PK\x03\x04") {
            let msg = "this is a zip archive, not a legacy HDF5 model: \
                       a Keras 3 `.keras` file is read with KerasArchive";
            return Err(Error::format(what, msg));
        }
        with_h5_file(bytes, what, |file| parse(file, bytes.len(), what))
    }

    /// The weights of the layer named `name`, in `weight_names` order.
    pub fn layer(&self, name: &str) -> Option<&[(String, ArrayD<f32>)]> {
        self.layers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, w)| w.as_slice())
    }

    /// All weights, layer by layer, in the order tf.keras' `model.get_weights()` returns them.
    pub fn get_weights(&self) -> Vec<&ArrayD<f32>> {
        self.layers
            .iter()
            .flat_map(|(_, ws)| ws.iter().map(|(_, a)| a))
            .collect()
    }
}

/// [`LegacyH5::from_bytes`] on an opened file of `len` bytes.
fn parse(file: &hdf5_pure::File, len: usize, what: &str) -> Result<LegacyH5> {
    let root = open_group(file, what, "")?;
    let attrs = group_attrs(&root, what, "")?;
    let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v);
    let config_what = format!("{what}: model_config attribute");
    let model_config = match get("model_config") {
        Some(Value::String(s)) => {
            let v: Value = serde_json::from_str(s)
                .map_err(|e| Error::format(&config_what, format!("malformed JSON: {e}")))?;
            if !v.is_object() {
                return Err(Error::format(&config_what, "expected a JSON object"));
            }
            v
        }
        Some(other) => {
            let msg = format!("the `model_config` attribute is not a string but {other}");
            return Err(Error::format(what, msg));
        }
        None if get("layer_names").is_some() => {
            let msg = "this is a weights-only file (from `save_weights`): \
                       it has `layer_names` but no `model_config`";
            return Err(Error::format(what, msg));
        }
        None => {
            let msg = "no `model_config` attribute at the root: not a tf.keras full-model .h5 file";
            return Err(Error::format(what, msg));
        }
    };
    let text = |n: &str| get(n).and_then(Value::as_str).map(str::to_string);

    // Only `model_weights` is read in full: `optimizer_weights` may hold non-float datasets.
    if file.group("model_weights").is_err() {
        let msg = "no `model_weights` group: not a tf.keras full-model .h5 file";
        return Err(Error::format(what, msg));
    }
    let mw = read_tree(file, len, what, "model_weights", &|_| false)?;
    // tf.keras writes `keras_version` and `backend` both at the root and on `model_weights`; prefer the root.
    let keras_version =
        text("keras_version").or_else(|| mw.attr_str("keras_version").map(str::to_string));
    let backend = text("backend").or_else(|| mw.attr_str("backend").map(str::to_string));
    let layer_names = name_list(&mw, "layer_names", what, "model_weights")?.ok_or_else(|| {
        Error::format(what, "group `model_weights` has no `layer_names` attribute")
    })?;
    let mut layers = Vec::with_capacity(layer_names.len());
    for lname in layer_names {
        let g = mw
            .group(&lname)
            .filter(|_| !lname.is_empty())
            .ok_or_else(|| {
                let msg = format!(
                    "`layer_names` lists '{lname}' but there is no group model_weights/{lname}"
                );
                Error::format(what, msg)
            })?;
        let wnames = name_list(g, "weight_names", what, &format!("model_weights/{lname}"))?;
        let mut weights = Vec::new();
        for w in wnames.unwrap_or_default() {
            let a = g.dataset(&w).ok_or_else(|| {
                let msg = format!(
                    "layer '{lname}' lists weight '{w}' but there is no dataset model_weights/{lname}/{w}"
                );
                Error::format(what, msg)
            })?;
            weights.push((w, a.clone()));
        }
        layers.push((lname, weights));
    }
    Ok(LegacyH5 {
        model_config,
        keras_version,
        backend,
        layers,
    })
}

/// A list-of-names attribute (`layer_names`, `weight_names`), whole or split into `name0`, `name1`, ...
/// `Ok(None)` when absent. An empty list is stored by h5py as an empty float array, so any empty array is
/// accepted.
fn name_list(g: &H5Group, attr: &str, what: &str, path: &str) -> Result<Option<Vec<String>>> {
    let strings = |v: &Value, n: &str| -> Result<Vec<String>> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        Error::format(
                            what,
                            format!("attribute `{n}` of {path} holds a non-string: {i}"),
                        )
                    })
                })
                .collect(),
            Value::String(s) => Ok(vec![s.clone()]),
            other => Err(Error::format(
                what,
                format!("attribute `{n}` of {path} is not a list of names: {other}"),
            )),
        }
    };
    if let Some(v) = g.attr(attr) {
        return strings(v, attr).map(Some);
    }
    // tf.keras' save_attributes_to_hdf5_group chunking.
    let mut out = Vec::new();
    let mut k = 0usize;
    while let Some(v) = g.attr(&format!("{attr}{k}")) {
        out.extend(strings(v, &format!("{attr}{k}"))?);
        k += 1;
    }
    Ok((k > 0).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::read_npy;
    use ndarray::{array, IxDyn};

    const LEGACY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/legacy");
    const CASES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/keras-cases"
    );

    #[test]
    fn reads_the_tf_keras_tutorial_model() {
        let m = LegacyH5::read(format!("{LEGACY}/tutorial_lstm_tf2.h5")).unwrap();
        assert_eq!(m.keras_version.as_deref(), Some("2.21.0"));
        assert_eq!(m.backend.as_deref(), Some("tensorflow"));
        assert_eq!(m.model_config["class_name"], "Functional");
        let layers = m.model_config["config"]["layers"].as_array().unwrap();
        assert_eq!(layers[1]["class_name"], "LSTM");
        assert_eq!(layers[1]["config"]["units"], 1);
        assert_eq!(layers[1]["config"]["return_sequences"], true);

        let names: Vec<&str> = m.layers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["input_1", "lstm"]);
        assert!(m.layer("input_1").unwrap().is_empty());
        let lstm = m.layer("lstm").unwrap();
        let wnames: Vec<&str> = lstm.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            wnames,
            [
                "lstm/lstm_cell/kernel:0",
                "lstm/lstm_cell/recurrent_kernel:0",
                "lstm/lstm_cell/bias:0"
            ]
        );
        assert_eq!(lstm[0].1, ArrayD::from_elem(IxDyn(&[2, 4]), 0.1f32));
        assert_eq!(lstm[1].1, ArrayD::from_elem(IxDyn(&[1, 4]), 0.1f32));
        // unit_forget_bias: the f block is 1.
        assert_eq!(lstm[2].1, array![0f32, 1., 0., 0.].into_dyn());
        assert_eq!(m.get_weights().len(), 3);

        let x = read_npy(format!("{LEGACY}/tutorial_lstm_tf2_input_0.npy")).unwrap();
        assert_eq!(
            x.0,
            array![[[0.1f32, 0.2], [0.3, 0.1], [0.2, 0.3]]].into_dyn()
        );
        let y = read_npy(format!("{LEGACY}/tutorial_lstm_tf2_output_0.npy")).unwrap();
        assert_eq!(y.0.shape(), &[1, 3, 1]);
        for (got, want) in y.0.iter().zip([0.00772376f32, 0.01633997, 0.02572775]) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
        assert!(LegacyH5::from_bytes(
            &std::fs::read(format!("{LEGACY}/tutorial_lstm_tf2.h5")).unwrap(),
            "x"
        )
        .is_ok());
    }

    /// A legacy-layout file built with our own writer.
    fn legacy_tree(config: &str) -> H5Group {
        let mut g = H5Group::default();
        g.set_attr("model_config", Value::from(config));
        g.set_attr("keras_version", Value::from("2.8.0"));
        g.set_attr("backend", Value::from("tensorflow"));
        let mw = g.group_mut_or_insert("model_weights");
        // `layer_names` split the way tf.keras splits lists over 64 KiB.
        mw.set_attr(
            "layer_names0",
            serde_json::json!(["input_1", "bidirectional"]),
        );
        mw.set_attr("layer_names1", serde_json::json!(["dense"]));
        mw.group_mut_or_insert("input_1")
            .set_attr("weight_names", serde_json::json!([]));
        let names = [
            "bidirectional/forward_gru/gru_cell/kernel:0",
            "bidirectional/backward_gru/gru_cell/kernel:0",
        ];
        let bi = mw.group_mut_or_insert("bidirectional");
        bi.set_attr("weight_names", serde_json::json!(names));
        bi.insert_dataset(names[0], array![1f32].into_dyn());
        bi.insert_dataset(names[1], array![2f32].into_dyn());
        let d = mw.group_mut_or_insert("dense");
        d.set_attr("weight_names", serde_json::json!(["dense/kernel:0"]));
        d.insert_dataset("dense/kernel:0", array![[3f32]].into_dyn());
        g
    }

    #[test]
    fn chunked_name_lists_and_weight_name_order() {
        let bytes = legacy_tree(r#"{"class_name": "Functional", "config": {}}"#)
            .to_h5_bytes()
            .unwrap();
        let m = LegacyH5::from_bytes(&bytes, "built.h5").unwrap();
        let names: Vec<&str> = m.layers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["input_1", "bidirectional", "dense"]);
        // weight_names order (forward before backward), not the file's name order.
        let flat: Vec<f32> = m
            .get_weights()
            .iter()
            .map(|a| a.iter().copied().next().unwrap())
            .collect();
        assert_eq!(flat, [1., 2., 3.]);
        assert_eq!(m.keras_version.as_deref(), Some("2.8.0"));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        // A Keras 3 zip handed to the legacy reader.
        let keras = std::fs::read(format!("{CASES}/lstm_seq0_state0/model.keras")).unwrap();
        let err = LegacyH5::from_bytes(&keras, "m.h5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("KerasArchive"), "{err}");
        // Garbage and truncation.
        assert!(LegacyH5::from_bytes(b"garbage", "g.h5")
            .unwrap_err()
            .to_string()
            .contains("g.h5: not an HDF5 file"));
        let good = std::fs::read(format!("{LEGACY}/tutorial_lstm_tf2.h5")).unwrap();
        for n in (0..good.len()).step_by(101) {
            assert!(
                LegacyH5::from_bytes(&good[..n], "cut.h5").is_err(),
                "prefix {n}"
            );
        }
        // A Keras 3 weights file is HDF5 but not a legacy model.
        let w = KerasArchive_weights();
        let err = LegacyH5::from_bytes(&w, "w.h5").unwrap_err().to_string();
        assert!(err.contains("no `model_config`"), "{err}");
        // A weights-only file.
        let mut g = H5Group::default();
        g.set_attr("layer_names", serde_json::json!(["dense"]));
        let err = LegacyH5::from_bytes(&g.to_h5_bytes().unwrap(), "wo.h5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights-only"), "{err}");
        // Malformed model_config.
        let err = LegacyH5::from_bytes(&legacy_tree("{\"a\": ").to_h5_bytes().unwrap(), "bad.h5")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bad.h5: model_config attribute: malformed JSON")
                && err.contains("line 1 column"),
            "{err}"
        );
        // A listed weight that is missing.
        let mut t = legacy_tree("{}");
        t.group_mut("model_weights/dense").unwrap().groups.clear();
        let err = LegacyH5::from_bytes(&t.to_h5_bytes().unwrap(), "m.h5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dense/kernel:0"), "{err}");
        // A listed layer that is missing.
        let mut t = legacy_tree("{}");
        t.group_mut("model_weights")
            .unwrap()
            .groups
            .retain(|(n, _)| n != "dense");
        let err = LegacyH5::from_bytes(&t.to_h5_bytes().unwrap(), "m.h5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("model_weights/dense"), "{err}");
        assert!(matches!(
            LegacyH5::read("/nonexistent/m.h5").unwrap_err(),
            Error::Io { .. }
        ));
    }

    #[allow(non_snake_case)]
    fn KerasArchive_weights() -> Vec<u8> {
        let a =
            crate::io::KerasArchive::read(format!("{CASES}/lstm_seq0_state0/model.keras")).unwrap();
        a.weights.to_h5_bytes().unwrap()
    }
}
