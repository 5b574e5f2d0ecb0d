//! Keras model files: load Keras 3 `.keras` archives and legacy tf.keras `.h5` files into a [`Model`], and save a
//! `Model` as a `.keras` archive that Keras 3 loads.
//!
//! The config JSON is turned into layers through one path ([`layer_from_config`]), used by both formats.
//!
//! ## `hard_sigmoid` in old files
//! Keras 2 (and tf.keras) computed `hard_sigmoid` as `clip(0.2x + 0.5, 0, 1)`; Keras 3 computes `relu6(x+3)/6`
//! under the same name. A file records the Keras version that wrote it, and rnnlab follows what that version
//! computed: in a file from Keras < 3 (a legacy `.h5`, or a `.keras` whose metadata says 2.x) `"hard_sigmoid"`
//! loads as [`Activation::HardSigmoidKeras2`]; in a Keras 3 file it is [`Activation::HardSigmoid`].
//! A model using `HardSigmoidKeras2` cannot be saved to `.keras` (Keras 3 has no name for it) and saving says so.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::ArrayD;
use serde_json::{json, Map, Value};

use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::io::{H5Group, KerasArchive, LegacyH5};
use crate::layers::rnn::{CellKind, RnnModule};
use crate::layers::{
    dtype_policy, Bidirectional, Dense, Dropout, Flatten, Layer, Masking, MergeMode, RepeatVector,
    SymShape, TimeDistributed,
};
use crate::model::graph::{Input, SymbolicTensor};
use crate::model::{Model, ModelKind};
use crate::tensor::Tensor;

/// The layer classes rnnlab can load, as Keras names them.
pub const SUPPORTED_LAYERS: &[&str] = &[
    "InputLayer",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Dense",
    "Bidirectional",
    "TimeDistributed",
    "RepeatVector",
    "Dropout",
    "Flatten",
    "Masking",
];

/// Keras 3 ops that appear in saved Functional graphs only to compute a mask (Masking + RNN); rnnlab carries masks
/// with the data, so these nodes are not needed.
const MASK_OPS: &[&str] = &["NotEqual", "Any"];

/// How names in a config are read: Keras 3 semantics, or those of the Keras 2 that wrote an old file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dialect {
    keras2: bool,
}

impl Dialect {
    fn from_version(v: Option<&str>) -> Dialect {
        let major = v
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        Dialect {
            keras2: matches!(major, Some(m) if m < 3),
        }
    }
    fn activation(
        &self,
        ctx: &str,
        arg: &str,
        v: Option<&Value>,
        default: Activation,
    ) -> Result<Activation> {
        match v {
            None | Some(Value::Null) => Ok(if v.is_some() {
                Activation::Linear
            } else {
                default
            }),
            Some(Value::String(s)) if s == "hard_sigmoid" && self.keras2 => {
                Ok(Activation::HardSigmoidKeras2)
            }
            Some(Value::String(s)) => {
                Activation::from_name(s).map_err(|e| Error::format(ctx, format!("`{arg}`: {e}")))
            }
            // A serialized function/activation object: {"class_name": "...", "config": ...}; only names are portable.
            Some(Value::Object(o)) => match o
                .get("config")
                .and_then(|c| c.as_str())
                .or_else(|| o.get("class_name").and_then(|c| c.as_str()))
            {
                Some(name) => {
                    self.activation(ctx, arg, Some(&Value::String(name.to_string())), default)
                }
                None => Err(Error::format(
                    ctx,
                    format!(
                        "`{arg}`: unsupported serialized activation {}",
                        Value::Object(o.clone())
                    ),
                )),
            },
            Some(other) => Err(Error::format(
                ctx,
                format!("`{arg}`: expected an activation name, found {other}"),
            )),
        }
    }
}

fn get_bool(ctx: &str, c: &Value, key: &str, default: bool) -> Result<bool> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(Error::format(
            ctx,
            format!("`{key}`: expected true or false, found {v}"),
        )),
    }
}

fn get_usize(ctx: &str, c: &Value, key: &str) -> Result<usize> {
    match c.get(key) {
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .and_then(|u| usize::try_from(u).ok())
            .ok_or_else(|| {
                Error::format(
                    ctx,
                    format!("`{key}`: expected a non-negative integer, found {v}"),
                )
            }),
        None => Err(Error::format(ctx, format!("missing `{key}`"))),
    }
}

fn get_f32(ctx: &str, c: &Value, key: &str, default: f32) -> Result<f32> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| Error::format(ctx, format!("`{key}`: expected a number, found {v}"))),
    }
}

fn get_init(ctx: &str, c: &Value, key: &str, default: Initializer) -> Result<Initializer> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            Initializer::from_config(v).map_err(|e| Error::format(ctx, format!("`{key}`: {e}")))
        }
    }
}

fn shape_of(ctx: &str, v: &Value) -> Result<SymShape> {
    let a = v
        .as_array()
        .ok_or_else(|| Error::format(ctx, format!("expected a shape list, found {v}")))?;
    a.iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            d => d
                .as_u64()
                .map(|u| Some(u as usize))
                .ok_or_else(|| Error::format(ctx, format!("bad dimension {d} in shape {v}"))),
        })
        .collect()
}

fn rnn_from_config(ctx: &str, kind: CellKind, c: &Value, d: Dialect) -> Result<RnnModule> {
    let units = get_usize(ctx, c, "units")?;
    let kind = match kind {
        CellKind::Gru { .. } => CellKind::Gru {
            reset_after: get_bool(ctx, c, "reset_after", !d.keras2)?,
        },
        k => k,
    };
    let mut m = RnnModule::new(kind, units);
    m.opts.return_sequences = get_bool(ctx, c, "return_sequences", false)?;
    m.opts.return_state = get_bool(ctx, c, "return_state", false)?;
    m.opts.go_backwards = get_bool(ctx, c, "go_backwards", false)?;
    m.opts.stateful = get_bool(ctx, c, "stateful", false)?;
    m.opts.unroll = get_bool(ctx, c, "unroll", false)?;
    m.opts.zero_output_for_mask = get_bool(ctx, c, "zero_output_for_mask", false)?;
    let cfg = &mut m.cell.cfg;
    cfg.activation = d.activation(ctx, "activation", c.get("activation"), Activation::Tanh)?;
    let default_ra = if d.keras2 {
        Activation::HardSigmoidKeras2
    } else {
        Activation::Sigmoid
    };
    cfg.recurrent_activation = d.activation(
        ctx,
        "recurrent_activation",
        c.get("recurrent_activation"),
        default_ra,
    )?;
    cfg.use_bias = get_bool(ctx, c, "use_bias", true)?;
    cfg.unit_forget_bias = get_bool(ctx, c, "unit_forget_bias", true)?;
    cfg.kernel_initializer = get_init(ctx, c, "kernel_initializer", Initializer::glorot_uniform())?;
    cfg.recurrent_initializer =
        get_init(ctx, c, "recurrent_initializer", Initializer::orthogonal())?;
    cfg.bias_initializer = get_init(ctx, c, "bias_initializer", Initializer::zeros())?;
    cfg.dropout = get_f32(ctx, c, "dropout", 0.0)?;
    cfg.recurrent_dropout = get_f32(ctx, c, "recurrent_dropout", 0.0)?;
    cfg.seed = c.get("seed").and_then(|s| s.as_u64());
    m.cell.validate(ctx)?;
    Ok(m)
}

/// A Bidirectional's stored `backward_layer` must agree with its forward layer: Keras refuses a different
/// `return_sequences`, `return_state` or `stateful`, or the same `go_backwards`; rnnlab also needs the same
/// class and `units` (its merge assumes two halves of one shape). Found by fuzzing: a mismatch used to panic
/// when the halves were merged.
fn check_backward_layer(ctx: &str, fwd: &RnnModule, bwd: &RnnModule) -> Result<()> {
    let (f, b) = (&fwd.opts, &bwd.opts);
    for (attr, fv, bv) in [
        ("return_sequences", f.return_sequences, b.return_sequences),
        ("return_state", f.return_state, b.return_state),
        ("stateful", f.stateful, b.stateful),
    ] {
        if fv != bv {
            return Err(Error::format(
                ctx,
                format!("the forward and backward layers must have the same `{attr}` (forward {fv}, backward {bv})"),
            ));
        }
    }
    if f.go_backwards == b.go_backwards {
        return Err(Error::format(
            ctx,
            format!(
                "the forward and backward layers must have different `go_backwards` (both {})",
                f.go_backwards
            ),
        ));
    }
    let (fc, bc) = (&fwd.cell, &bwd.cell);
    if fc.kind != bc.kind || fc.cfg.units != bc.cfg.units {
        return Err(Error::Unsupported(format!(
            "{ctx}: a backward_layer that differs from the forward layer in class or units ({} {} vs {} {}); \
             rnnlab supports backward layers of the same class and units",
            fc.class_name(),
            fc.cfg.units,
            bc.class_name(),
            bc.cfg.units
        )));
    }
    Ok(())
}

fn rnn_kind(class: &str) -> Option<CellKind> {
    match class {
        "LSTM" | "CuDNNLSTM" => Some(CellKind::Lstm),
        "GRU" | "CuDNNGRU" => Some(CellKind::Gru { reset_after: true }),
        "SimpleRNN" => Some(CellKind::Simple),
        _ => None,
    }
}

/// Builds one layer from its Keras class name and config (`{"name": ..., "units": ..., ...}`), as stored in
/// `.keras` and `.h5` files. Set `keras2` for configs written by Keras 2 (see the module docs on hard_sigmoid).
///
/// # Errors
/// An unsupported class (the message lists the supported ones) or a malformed config value.
pub fn layer_from_config(class: &str, config: &Value, keras2: bool) -> Result<Layer> {
    let d = Dialect { keras2 };
    let name = config
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    let ctx = format!("layer \"{name}\" ({class})");
    let c = config;
    let layer: Layer = if let Some(kind) = rnn_kind(class) {
        Layer::from_module(Box::new(rnn_from_config(&ctx, kind, c, d)?))
    } else {
        match class {
            "Dense" => {
                let units = get_usize(&ctx, c, "units")?;
                let l = Dense::new(units)
                    .activation_fn(d.activation(
                        &ctx,
                        "activation",
                        c.get("activation"),
                        Activation::Linear,
                    )?)
                    .use_bias(get_bool(&ctx, c, "use_bias", true)?)
                    .kernel_initializer(get_init(
                        &ctx,
                        c,
                        "kernel_initializer",
                        Initializer::glorot_uniform(),
                    )?)
                    .bias_initializer(get_init(&ctx, c, "bias_initializer", Initializer::zeros())?);
                l.into()
            }
            "Dropout" => Dropout::new(get_f32(&ctx, c, "rate", 0.0)?).into(),
            "Flatten" => Flatten::new().into(),
            "RepeatVector" => RepeatVector::new(get_usize(&ctx, c, "n")?).into(),
            "Masking" => Masking::new(get_f32(&ctx, c, "mask_value", 0.0)?).into(),
            "Bidirectional" => {
                let inner = c
                    .get("layer")
                    .ok_or_else(|| Error::format(&ctx, "missing `layer`"))?;
                let (icls, icfg) = class_and_config(&ctx, inner)?;
                let inner_layer = layer_from_config(icls, icfg, keras2)?;
                if rnn_kind(icls).is_none() {
                    return Err(Error::Unsupported(format!(
                        "{ctx}: wraps a {icls}; Bidirectional supports LSTM, GRU and SimpleRNN"
                    )));
                }
                let merge = match c.get("merge_mode") {
                    None => MergeMode::Concat,
                    Some(Value::Null) => MergeMode::None,
                    Some(Value::String(s)) => {
                        MergeMode::from_name(s).map_err(|e| Error::format(&ctx, e))?
                    }
                    Some(v) => {
                        return Err(Error::format(
                            &ctx,
                            format!("`merge_mode`: expected a string or null, found {v}"),
                        ))
                    }
                };
                let bi = Bidirectional::new(inner_layer).merge_mode(merge);
                if let Some(b) = c.get("backward_layer").filter(|b| !b.is_null()) {
                    // A custom backward layer: use its own configuration (go_backwards as stored).
                    let (bcls, bcfg) = class_and_config(&ctx, b)?;
                    let kind = rnn_kind(bcls).ok_or_else(|| {
                        Error::Unsupported(format!(
                            "{ctx}: backward_layer is a {bcls}; only LSTM, GRU, SimpleRNN"
                        ))
                    })?;
                    let bm = rnn_from_config(&ctx, kind, bcfg, d)?;
                    bi.0.with_module::<crate::layers::BidirectionalModule, _>(|m| {
                        check_backward_layer(&ctx, &m.fwd, &bm)?;
                        let zero = m.bwd.opts.zero_output_for_mask;
                        m.bwd = bm.fresh_copy();
                        m.bwd.opts.zero_output_for_mask = zero;
                        Ok::<(), Error>(())
                    })?;
                }
                bi.into()
            }
            "TimeDistributed" => {
                let inner = c
                    .get("layer")
                    .ok_or_else(|| Error::format(&ctx, "missing `layer`"))?;
                let (icls, icfg) = class_and_config(&ctx, inner)?;
                TimeDistributed::new(layer_from_config(icls, icfg, keras2)?).into()
            }
            _ => return Err(Error::unknown("layer class", class, SUPPORTED_LAYERS)),
        }
    };
    if !name.is_empty() {
        layer.set_name(&name);
    }
    Ok(layer)
}

fn class_and_config<'a>(ctx: &str, v: &'a Value) -> Result<(&'a str, &'a Value)> {
    let cls = v
        .get("class_name")
        .and_then(|c| c.as_str())
        .ok_or_else(|| Error::format(ctx, format!("missing `class_name` in {v}")))?;
    let cfg = v
        .get("config")
        .ok_or_else(|| Error::format(ctx, format!("missing `config` for {cls}")))?;
    Ok((cls, cfg))
}

/// A reference to a tensor in a saved graph: (layer name, node index, tensor index).
type TensorRef = (String, usize, usize);

fn parse_ref(ctx: &str, v: &Value) -> Result<TensorRef> {
    // Keras 3: {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}.
    let h = if let Some(h) = v.get("config").and_then(|c| c.get("keras_history")) {
        h
    } else {
        v
    };
    let a = h
        .as_array()
        .filter(|a| a.len() >= 3)
        .ok_or_else(|| Error::format(ctx, format!("expected a tensor reference, found {v}")))?;
    let name = a[0]
        .as_str()
        .ok_or_else(|| Error::format(ctx, format!("bad tensor reference {v}")))?;
    let n = a[1]
        .as_u64()
        .ok_or_else(|| Error::format(ctx, format!("bad node index in {v}")))? as usize;
    let t = a[2]
        .as_u64()
        .ok_or_else(|| Error::format(ctx, format!("bad tensor index in {v}")))?
        as usize;
    Ok((name.to_string(), n, t))
}

fn is_tensor(v: &Value) -> bool {
    v.get("class_name").and_then(|c| c.as_str()) == Some("__keras_tensor__")
}

/// One inbound node of a saved layer: its input tensors and initial-state tensors.
struct SavedNode {
    inputs: Vec<TensorRef>,
    initial_state: Vec<TensorRef>,
}

fn parse_nodes(ctx: &str, layer: &Value, is_rnn: bool) -> Result<Vec<SavedNode>> {
    let Some(nodes) = layer.get("inbound_nodes") else {
        return Ok(vec![]);
    };
    let nodes = nodes
        .as_array()
        .ok_or_else(|| Error::format(ctx, "`inbound_nodes` is not a list"))?;
    let mut out = Vec::new();
    for n in nodes {
        if let Some(args) = n.get("args") {
            // Keras 3 form.
            let args = args
                .as_array()
                .ok_or_else(|| Error::format(ctx, "`args` is not a list"))?;
            let mut inputs = Vec::new();
            for a in args {
                if is_tensor(a) {
                    inputs.push(parse_ref(ctx, a)?);
                } else if let Some(list) = a.as_array() {
                    for t in list.iter().filter(|t| is_tensor(t)) {
                        inputs.push(parse_ref(ctx, t)?);
                    }
                }
            }
            let mut initial_state = Vec::new();
            if let Some(st) = n.get("kwargs").and_then(|k| k.get("initial_state")) {
                match st {
                    Value::Array(list) => {
                        for t in list {
                            initial_state.push(parse_ref(ctx, t)?);
                        }
                    }
                    Value::Null => {}
                    t => initial_state.push(parse_ref(ctx, t)?),
                }
            }
            out.push(SavedNode {
                inputs,
                initial_state,
            });
        } else if let Some(entries) = n.as_array() {
            // tf.keras 2 form: [[name, node, tensor, kwargs], ...]; for an RNN, extra entries are initial states.
            let mut refs = Vec::new();
            let mut kw_states = Vec::new();
            for e in entries {
                refs.push(parse_ref(ctx, e)?);
                if let Some(st) = e
                    .get(3)
                    .and_then(|k| k.get("initial_state"))
                    .and_then(|s| s.as_array())
                {
                    for t in st {
                        kw_states.push(parse_ref(ctx, t)?);
                    }
                }
            }
            let (inputs, mut initial_state) = if is_rnn && refs.len() > 1 {
                let rest = refs.split_off(1);
                (refs, rest)
            } else {
                (refs, vec![])
            };
            initial_state.extend(kw_states);
            out.push(SavedNode {
                inputs,
                initial_state,
            });
        } else {
            return Err(Error::format(ctx, format!("unrecognised inbound node {n}")));
        }
    }
    Ok(out)
}

fn ref_list(ctx: &str, v: Option<&Value>) -> Result<Vec<TensorRef>> {
    let v = v.ok_or_else(|| Error::format(ctx, "missing `input_layers`/`output_layers`"))?;
    let a = v
        .as_array()
        .ok_or_else(|| Error::format(ctx, format!("expected a list, found {v}")))?;
    if a.first().is_some_and(|f| f.is_string()) {
        return Ok(vec![parse_ref(ctx, v)?]);
    }
    a.iter().map(|r| parse_ref(ctx, r)).collect()
}

/// Builds a model (with fresh weights) from a full Keras model config: `{"class_name": "Functional" |
/// "Sequential" | "Model", "config": {...}}`, Keras 3 or tf.keras 2 layout.
///
/// # Errors
/// Unsupported layers, malformed configs, or a graph that does not connect.
pub fn model_from_config(model_config: &Value, keras_version: Option<&str>) -> Result<Model> {
    let keras2 = Dialect::from_version(keras_version).keras2;
    let what = "model config";
    let (class, config) = class_and_config(what, model_config)?;
    let name = config
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("model")
        .to_string();
    let layers = config
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| Error::format(what, "missing `layers` list"))?;
    match class {
        "Sequential" => {
            let mut shape: Option<SymShape> = None;
            let mut stack = Vec::new();
            for (i, l) in layers.iter().enumerate() {
                let (cls, cfg) = class_and_config(what, l)?;
                if cls == "InputLayer" {
                    let s = cfg
                        .get("batch_shape")
                        .or_else(|| cfg.get("batch_input_shape"));
                    shape = Some(shape_of(
                        what,
                        s.ok_or_else(|| Error::format(what, "InputLayer without batch_shape"))?,
                    )?);
                    continue;
                }
                if i == 0 || shape.is_none() {
                    if let Some(s) = cfg
                        .get("batch_input_shape")
                        .or_else(|| cfg.get("batch_shape"))
                    {
                        shape = Some(shape_of(what, s)?);
                    }
                }
                stack.push(layer_from_config(cls, cfg, keras2)?);
            }
            let shape = match shape {
                Some(s) => s,
                None => shape_of(
                    what,
                    config
                        .get("build_input_shape")
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| Error::Unsupported(format!("Sequential \"{name}\": no input shape in the file (the model was never built)")))?,
                )?,
            };
            let input = Input::with_batch_shape(shape);
            let mut x = input.clone();
            for l in &stack {
                x = l.call(&x)?;
            }
            Model::build(name, ModelKind::Sequential, vec![input], vec![x])
        }
        "Functional" | "Model" => {
            let mut by_name: HashMap<String, Layer> = HashMap::new();
            let mut outputs: HashMap<(String, usize), Vec<SymbolicTensor>> = HashMap::new();
            let mut pending: Vec<(String, usize, SavedNode)> = Vec::new();
            let mut mask_ops: HashSet<String> = HashSet::new();
            for l in layers {
                let (cls, cfg) = class_and_config(what, l)?;
                let lname = l
                    .get("name")
                    .or_else(|| cfg.get("name"))
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| Error::format(what, format!("a {cls} layer has no name")))?
                    .to_string();
                let ctx = format!("layer \"{lname}\" ({cls})");
                if MASK_OPS.contains(&cls) {
                    mask_ops.insert(lname);
                    continue;
                }
                if cls == "InputLayer" {
                    let s = cfg
                        .get("batch_shape")
                        .or_else(|| cfg.get("batch_input_shape"));
                    let shape = shape_of(
                        &ctx,
                        s.ok_or_else(|| Error::format(&ctx, "missing batch_shape"))?,
                    )?;
                    let t = Input::with_batch_shape(shape);
                    t.node.layer.set_name(&lname);
                    by_name.insert(lname.clone(), t.node.layer.clone());
                    outputs.insert((lname, 0), vec![t]);
                    continue;
                }
                let layer = layer_from_config(cls, cfg, keras2)?;
                layer.set_name(&lname);
                for (i, n) in
                    parse_nodes(&ctx, l, rnn_kind(cls).is_some() || cls == "Bidirectional")?
                        .into_iter()
                        .enumerate()
                {
                    pending.push((lname.clone(), i, n));
                }
                by_name.insert(lname, layer);
            }
            // Create the nodes as their inputs become available; a layer's nodes in their saved order.
            let mut made: HashMap<String, usize> = HashMap::new();
            while !pending.is_empty() {
                let before = pending.len();
                let mut rest = Vec::new();
                for (lname, idx, node) in pending {
                    let next = made.get(&lname).copied().unwrap_or(0);
                    let resolve = |r: &TensorRef| {
                        outputs
                            .get(&(r.0.clone(), r.1))
                            .and_then(|v| v.get(r.2))
                            .cloned()
                    };
                    let ins: Option<Vec<SymbolicTensor>> =
                        node.inputs.iter().map(resolve).collect();
                    let sts: Option<Vec<SymbolicTensor>> =
                        node.initial_state.iter().map(resolve).collect();
                    match (next == idx, ins, sts) {
                        (true, Some(ins), Some(sts)) => {
                            if let Some(r) = node
                                .inputs
                                .iter()
                                .chain(&node.initial_state)
                                .find(|r| mask_ops.contains(&r.0))
                            {
                                return Err(Error::Unsupported(format!(
                                    "layer \"{lname}\": consumes the output of the op layer \"{}\", which rnnlab only supports as a mask",
                                    r.0
                                )));
                            }
                            let layer = &by_name[&lname];
                            let in_refs: Vec<&SymbolicTensor> = ins.iter().collect();
                            let st_refs: Vec<&SymbolicTensor> = sts.iter().collect();
                            let outs = layer.call_impl(&in_refs, &st_refs)?;
                            outputs.insert((lname.clone(), idx), outs);
                            made.insert(lname, idx + 1);
                        }
                        _ => rest.push((lname, idx, node)),
                    }
                }
                if rest.len() == before {
                    let (lname, idx, node) = &rest[0];
                    let missing: Vec<String> = node
                        .inputs
                        .iter()
                        .chain(&node.initial_state)
                        .filter(|r| !outputs.contains_key(&(r.0.clone(), r.1)))
                        .map(|r| format!("{}[{}][{}]", r.0, r.1, r.2))
                        .collect();
                    return Err(Error::format(
                        what,
                        format!("cannot connect layer \"{lname}\" (node {idx}): its inputs [{}] are never produced", missing.join(", ")),
                    ));
                }
                pending = rest;
            }
            let get = |r: &TensorRef| {
                outputs
                    .get(&(r.0.clone(), r.1))
                    .and_then(|v| v.get(r.2))
                    .cloned()
                    .ok_or_else(|| {
                        Error::format(
                            what,
                            format!(
                                "model input/output {}[{}][{}] does not exist",
                                r.0, r.1, r.2
                            ),
                        )
                    })
            };
            let ins = ref_list(what, config.get("input_layers"))?
                .iter()
                .map(get)
                .collect::<Result<Vec<_>>>()?;
            let outs = ref_list(what, config.get("output_layers"))?
                .iter()
                .map(get)
                .collect::<Result<Vec<_>>>()?;
            Model::build(name, ModelKind::Functional, ins, outs)
        }
        other => Err(Error::Unsupported(format!(
            "model class \"{other}\": rnnlab loads Functional and Sequential models"
        ))),
    }
}

/// Numbered datasets `0, 1, 2, ...` of a Keras 3 `vars` group, in numeric order.
fn numbered(g: Option<&H5Group>) -> Vec<ArrayD<f32>> {
    let Some(g) = g else { return vec![] };
    let mut v: Vec<(usize, &ArrayD<f32>)> = g
        .datasets
        .iter()
        .filter_map(|(k, a)| k.parse::<usize>().ok().map(|i| (i, a)))
        .collect();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, a)| a.clone()).collect()
}

/// The weights Keras 3 stored for one layer under `group`, in `get_weights()` order.
fn keras3_layer_weights(class: &str, inner: Option<&str>, group: &H5Group) -> Vec<ArrayD<f32>> {
    let vars = |path: &str| numbered(group.group(path));
    match class {
        "LSTM" | "GRU" | "SimpleRNN" => vars("cell/vars"),
        "Bidirectional" => {
            let mut w = vars("forward_layer/cell/vars");
            w.extend(vars("backward_layer/cell/vars"));
            w
        }
        "TimeDistributed" => match inner {
            Some("LSTM" | "GRU" | "SimpleRNN") => vars("layer/cell/vars"),
            _ => vars("layer/vars"),
        },
        _ => vars("vars"),
    }
}

fn inner_class(layer: &Layer) -> Option<&'static str> {
    let m = layer.module();
    m.as_any()
        .downcast_ref::<crate::layers::TimeDistributedModule>()
        .map(|td| td.inner.class_name())
}

/// Keras' `to_snake_case` of a class name (`SimpleRNN` -> `simple_rnn`), as used for weight-file groups.
fn snake(class: &str) -> String {
    let chars: Vec<char> = class.chars().collect();
    let mut s = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                s.push('_');
            }
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// The `layers/<snake>[_N]` group names Keras gives a model's layers, in `model.layers` order.
fn group_names(layers: &[Layer]) -> Vec<String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    layers
        .iter()
        .map(|l| {
            let base = snake(l.class_name());
            let n = used.entry(base.clone()).or_insert(0);
            let name = if *n == 0 {
                base.clone()
            } else {
                format!("{base}_{n}")
            };
            *n += 1;
            name
        })
        .collect()
}

fn set_layer_weights(what: &str, layer: &Layer, weights: Vec<ArrayD<f32>>) -> Result<()> {
    let expected = layer.weight_shapes().len();
    if expected == 0 && weights.is_empty() {
        return Ok(());
    }
    let tensors: Vec<Tensor> = weights.into_iter().map(Tensor).collect();
    layer
        .set_weights(&tensors)
        .map_err(|e| Error::format(what, format!("weights do not match the config: {e}")))
}

/// Loads a Keras 3 archive's config and weights.
///
/// # Errors
/// As [`model_from_config`], or weights that disagree with the config.
pub fn model_from_archive(archive: &KerasArchive, what: &str) -> Result<Model> {
    let version = archive
        .metadata
        .get("keras_version")
        .and_then(|v| v.as_str());
    let model = model_from_config(&archive.config, version)?;
    // A compiled Keras model trains in rnnlab with its own settings; one rnnlab cannot use stays loadable for
    // inference, and training reports why.
    if let Some(cc) = archive.config.get("compile_config") {
        match crate::train::Compile::from_keras_config(cc, &model.output_names()) {
            Ok(Some(c)) => {
                if let Err(e) = model.compile_with(c) {
                    *model
                        .compile_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                }
            }
            Ok(None) => {}
            Err(e) => {
                *model
                    .compile_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string())
            }
        }
    }
    let layers = model.layers();
    for (layer, gname) in layers.iter().zip(group_names(&layers)) {
        let path = format!("layers/{gname}");
        let group = archive.weights.group(&path);
        let w = match group {
            Some(g) => keras3_layer_weights(layer.class_name(), inner_class(layer), g),
            None => vec![],
        };
        if w.is_empty() && !layer.weight_shapes().is_empty() {
            return Err(Error::format(
                what,
                format!(
                    "model.weights.h5 has no weights for layer \"{}\" (expected group {path})",
                    layer.name()
                ),
            ));
        }
        set_layer_weights(what, layer, w)?;
    }
    restore_optimizer_state(&model, &archive.weights);
    Ok(model)
}

/// Puts a trained model's saved optimizer variables (`optimizer/vars/N`) into its compiled optimizer. Like Keras,
/// a state that does not fit (another optimizer, other weights) is skipped and training starts fresh.
fn restore_optimizer_state(model: &Model, weights: &H5Group) {
    let Some(vars) = weights.group("optimizer/vars") else {
        return;
    };
    let mut guard = model.compiled.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = guard.as_mut() else { return };
    let index = |n: &str| n.parse::<usize>().ok();
    let iterations = vars
        .int_datasets
        .iter()
        .find(|(n, _)| index(n) == Some(0))
        .and_then(|(_, a)| a.iter().next().copied())
        .unwrap_or(0);
    let mut floats: Vec<(usize, ArrayD<f32>)> = vars
        .datasets
        .iter()
        .filter_map(|(n, a)| index(n).filter(|&i| i >= 2).map(|i| (i, a.clone())))
        .collect();
    floats.sort_by_key(|(i, _)| *i);
    let shapes: Vec<Vec<usize>> = model
        .layers
        .iter()
        .flat_map(|l| l.weight_shapes())
        .map(|s| s.0)
        .collect();
    let opt = &mut c.compile.optimizer;
    if opt
        .set_keras_vars(
            iterations,
            floats.into_iter().map(|(_, a)| a).collect(),
            &shapes,
        )
        .is_err()
    {
        opt.reset();
    }
}

/// Loads a legacy tf.keras `.h5` full model.
///
/// # Errors
/// As [`model_from_config`], or weights that disagree with the config.
pub fn model_from_legacy(h5: &LegacyH5, what: &str) -> Result<Model> {
    // A legacy file without a version was written by Keras 2 (the format predates Keras 3).
    let version = h5.keras_version.clone().unwrap_or_else(|| "2".into());
    let model = model_from_config(&h5.model_config, Some(&version))?;
    let by_name: HashMap<&str, &Vec<(String, ArrayD<f32>)>> =
        h5.layers.iter().map(|(n, w)| (n.as_str(), w)).collect();
    for layer in model.layers() {
        let name = layer.name();
        let w: Vec<ArrayD<f32>> = by_name
            .get(name.as_str())
            .map(|v| v.iter().map(|(_, a)| a.clone()).collect())
            .unwrap_or_default();
        if w.is_empty() && !layer.weight_shapes().is_empty() {
            return Err(Error::format(
                what,
                format!("model_weights has no weights for layer \"{name}\""),
            ));
        }
        set_layer_weights(what, &layer, w)?;
    }
    Ok(model)
}

/// Loads a Keras model file: a Keras 3 `.keras` archive, or a legacy tf.keras `.h5` (told apart by content).
///
/// # Errors
/// A missing or unreadable file, a corrupt archive, an unsupported layer, or weights that disagree with the config.
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    crate::io::read_with(path.as_ref(), load_model_bytes)
}

/// [`load_model`] from bytes; `what` names the source in errors.
///
/// # Errors
/// As [`load_model`].
pub fn load_model_bytes(bytes: &[u8], what: &str) -> Result<Model> {
    if bytes.starts_with(b"PK") {
        model_from_archive(&KerasArchive::from_bytes(bytes, what)?, what)
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        model_from_legacy(&LegacyH5::from_bytes(bytes, what)?, what)
    } else {
        Err(Error::format(
            what,
            "not a Keras model file: expected a .keras zip archive or a legacy .h5 (HDF5) file",
        ))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Saving

fn tensor_json(t: &SymbolicTensor, index_of: &HashMap<u64, usize>) -> Value {
    let (name, _, ti) = t.keras_history();
    let ni = index_of.get(&t.node.id).copied().unwrap_or(0);
    json!({"class_name": "__keras_tensor__", "config": {"shape": t.sym_shape(), "dtype": "float32", "keras_history": [name, ni, ti]}})
}

fn check_saveable(layer: &Layer, cfg: &Value) -> Result<()> {
    let mut bad = None;
    fn walk(v: &Value, bad: &mut Option<String>) {
        match v {
            Value::String(s) if s == "hard_sigmoid_keras2" => *bad = Some(s.clone()),
            Value::Object(o) => o.values().for_each(|x| walk(x, bad)),
            Value::Array(a) => a.iter().for_each(|x| walk(x, bad)),
            _ => {}
        }
    }
    walk(cfg, &mut bad);
    match bad {
        Some(_) => Err(Error::Unsupported(format!(
            "{}: uses the Keras 2 hard_sigmoid (clip(0.2x+0.5, 0, 1)), which Keras 3 files cannot name; \
             a Keras 3 loader would compute relu6(x+3)/6 instead. Use another activation to save this model as .keras",
            layer.ctx()
        ))),
        None => Ok(()),
    }
}

fn layer_entry(layer: &Layer) -> Result<Map<String, Value>> {
    let cfg = if layer.class_name() == "InputLayer" {
        let mut c = layer.module().config();
        if let Some(o) = c.as_object_mut() {
            o.insert("name".into(), json!(layer.name()));
        }
        c
    } else {
        layer.get_config()
    };
    check_saveable(layer, &cfg)?;
    let mut e = Map::new();
    e.insert("module".into(), json!("keras.layers"));
    e.insert("class_name".into(), json!(layer.class_name()));
    e.insert("config".into(), cfg);
    e.insert("registered_name".into(), Value::Null);
    Ok(e)
}

fn build_config(node: &crate::model::graph::Node) -> Value {
    let x = node.inputs.first().map(|t| t.sym_shape().to_vec());
    if node.initial_state.is_empty() {
        json!({"input_shape": x})
    } else {
        let st: Vec<Vec<Option<usize>>> = node
            .initial_state
            .iter()
            .map(|t| t.sym_shape().to_vec())
            .collect();
        json!({"shapes_dict": {"sequences_shape": x, "initial_state_shape": st}})
    }
}

/// The weights tree Keras 3 writes for one layer (`vars` groups with `name` attributes).
fn layer_weights_group(layer: &Layer, g: &mut H5Group) {
    fn vars(g: &mut H5Group, path: &str, name: &str, arrays: Vec<ArrayD<f32>>) {
        let v = g.group_mut_or_insert(path);
        v.attrs.push(("name".into(), json!(name)));
        for (i, a) in arrays.into_iter().enumerate() {
            v.datasets.push((i.to_string(), a));
        }
    }
    let w: Vec<ArrayD<f32>> = layer.get_weights().into_iter().map(|t| t.0).collect();
    let cls = layer.class_name();
    let name = layer.name();
    match cls {
        "LSTM" | "GRU" | "SimpleRNN" => {
            vars(g, "vars", &name, vec![]);
            vars(g, "cell/vars", &format!("{}_cell", snake(cls)), w);
        }
        "Bidirectional" => {
            let half = w.len() / 2;
            let mut w = w;
            let bwd = w.split_off(half);
            let inner = {
                let m = layer.module();
                m.as_any()
                    .downcast_ref::<crate::layers::BidirectionalModule>()
                    .map(|b| (b.fwd.cell.class_name(), b.inner_name.clone()))
                    .unwrap_or(("LSTM", String::new()))
            };
            vars(g, "vars", &name, vec![]);
            vars(
                g,
                "forward_layer/vars",
                &format!("forward_{}", inner.1),
                vec![],
            );
            vars(
                g,
                "forward_layer/cell/vars",
                &format!("{}_cell", snake(inner.0)),
                w,
            );
            vars(
                g,
                "backward_layer/vars",
                &format!("backward_{}", inner.1),
                vec![],
            );
            vars(
                g,
                "backward_layer/cell/vars",
                &format!("{}_cell", snake(inner.0)),
                bwd,
            );
        }
        "TimeDistributed" => {
            vars(g, "vars", &name, vec![]);
            match inner_class(layer) {
                Some(c @ ("LSTM" | "GRU" | "SimpleRNN")) => {
                    vars(g, "layer/vars", "", vec![]);
                    vars(g, "layer/cell/vars", &format!("{}_cell", snake(c)), w);
                }
                _ => vars(g, "layer/vars", "", w),
            }
        }
        _ => vars(g, "vars", &name, w),
    }
}

/// The three members of the `.keras` archive for a model.
///
/// # Errors
/// A layer whose configuration Keras 3 cannot express (the Keras 2 hard_sigmoid).
pub fn model_to_archive(model: &Model) -> Result<KerasArchive> {
    let node_ids: HashSet<u64> = model.order.iter().map(|n| n.id).collect();
    // Keras renumbers each layer's nodes to those inside the model.
    let mut index_of: HashMap<u64, usize> = HashMap::new();
    for l in &model.layers {
        let nodes = l.nodes();
        for (i, n) in nodes
            .iter()
            .filter(|n| node_ids.contains(&n.id))
            .enumerate()
        {
            index_of.insert(n.id, i);
        }
    }
    let mut layer_entries = Vec::new();
    for l in &model.layers {
        let mut e = layer_entry(l)?;
        let nodes: Vec<_> = l
            .nodes()
            .iter()
            .filter(|n| node_ids.contains(&n.id))
            .cloned()
            .collect();
        if l.class_name() != "InputLayer" {
            if let Some(n) = nodes.first() {
                e.insert("build_config".into(), build_config(n));
            }
        }
        if model.kind == ModelKind::Functional {
            e.insert("name".into(), json!(l.name()));
            let inbound: Vec<Value> = nodes
                .iter()
                .filter(|n| !n.is_input)
                .map(|n| {
                    let args: Vec<Value> = n.inputs.iter().map(|t| tensor_json(t, &index_of)).collect();
                    let kwargs = if n.initial_state.is_empty() {
                        json!({})
                    } else {
                        json!({"initial_state": n.initial_state.iter().map(|t| tensor_json(t, &index_of)).collect::<Vec<_>>()})
                    };
                    json!({"args": args, "kwargs": kwargs})
                })
                .collect();
            e.insert("inbound_nodes".into(), Value::Array(inbound));
        }
        layer_entries.push(Value::Object(e));
    }
    let refs = |ts: &[SymbolicTensor]| -> Value {
        let v: Vec<Value> = ts
            .iter()
            .map(|t| {
                let (n, _, ti) = t.keras_history();
                json!([n, index_of.get(&t.node.id).copied().unwrap_or(0), ti])
            })
            .collect();
        if v.len() == 1 {
            v[0].clone()
        } else {
            Value::Array(v)
        }
    };
    let compile_config = model
        .compile_config()
        .map_or_else(|| json!({}), |c| c.to_keras_config());
    let config = match model.kind {
        ModelKind::Functional => json!({
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {
                "name": model.name, "trainable": true, "layers": layer_entries,
                "input_layers": refs(&model.inputs), "output_layers": refs(&model.outputs),
            },
            "registered_name": "Functional",
            "build_config": {"input_shape": null},
            "compile_config": compile_config,
        }),
        ModelKind::Sequential => {
            let shape = model.inputs[0].sym_shape().to_vec();
            json!({
                "module": "keras",
                "class_name": "Sequential",
                "config": {"name": model.name, "trainable": true, "dtype": dtype_policy(), "layers": layer_entries, "build_input_shape": shape},
                "registered_name": null,
                "build_config": {"input_shape": shape},
                "compile_config": compile_config,
            })
        }
    };
    let mut weights = H5Group::default();
    weights
        .group_mut_or_insert("vars")
        .attrs
        .push(("name".into(), json!(model.name)));
    let listed = model.layers();
    for (l, g) in listed.iter().zip(group_names(&listed)) {
        layer_weights_group(l, weights.group_mut_or_insert(&format!("layers/{g}")));
    }
    // A compiled model carries its optimizer's variables, as Keras saves them (so training can resume).
    if let Some(c) = model
        .compiled
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        let opt = &c.compile.optimizer;
        let (iterations, lr, vars) = opt.keras_vars();
        weights.group_mut_or_insert("optimizer");
        let g = weights.group_mut_or_insert("optimizer/vars");
        g.attrs.push(("name".into(), json!(opt.name())));
        g.int_datasets.push((
            "0".into(),
            ArrayD::from_elem(ndarray::IxDyn(&[]), iterations),
        ));
        g.datasets
            .push(("1".into(), ArrayD::from_elem(ndarray::IxDyn(&[]), lr)));
        for (i, v) in vars.into_iter().enumerate() {
            g.datasets.push(((i + 2).to_string(), v));
        }
    }
    let metadata = json!({"keras_version": "3.15.1", "date_saved": date_saved(), "saved_by": format!("rnnlab {}", env!("CARGO_PKG_VERSION"))});
    Ok(KerasArchive {
        metadata,
        config,
        weights,
    })
}

/// `YYYY-MM-DD@HH:MM:SS` in UTC, the format of Keras' `date_saved`.
fn date_saved() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date-time dependency for one string.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Saves a model as a Keras 3 `.keras` archive.
///
/// # Errors
/// An unwritable path, or a layer Keras 3 cannot express.
pub fn save_model(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    model_to_archive(model)?.write(path)
}

impl Model {
    /// Loads a `.keras` or legacy `.h5` Keras model (see [`load_model`]).
    ///
    /// # Errors
    /// As [`load_model`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        load_model(path)
    }

    /// Saves the model as a Keras 3 `.keras` file (see [`save_model`]).
    ///
    /// # Errors
    /// As [`save_model`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        for (c, s) in [
            ("SimpleRNN", "simple_rnn"),
            ("LSTM", "lstm"),
            ("TimeDistributed", "time_distributed"),
            ("InputLayer", "input_layer"),
            ("GRU", "gru"),
            ("RepeatVector", "repeat_vector"),
        ] {
            assert_eq!(snake(c), s);
        }
    }

    #[test]
    fn date_saved_has_keras_format() {
        let d = date_saved();
        assert_eq!(d.len(), 19, "{d}");
        assert_eq!(&d[10..11], "@");
    }
}
