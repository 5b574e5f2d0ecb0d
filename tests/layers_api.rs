//! Unit tests of rnnlab's public layer and model API against the Keras semantics in keras-spec.md §1-§4.
//!
//! Sections:
//! 1. shapes (spec §2.1, §2.3, §3), weight shapes and names, parameter counts;
//! 2. semantics with deterministic non-trivial weights (set with `set_weights`, never initializers);
//! 3. bad input: every case is a plain `Err` (no `catch_unwind`) whose message names the layer, the argument,
//!    what was expected and what was received;
//! 4. printing: NumPy str/repr of tensors, Python tuples for shapes, the Keras summary tables.
//!
//! Numbers come from the spec or from the NumPy reference quoted next to them. The deterministic values are
//! `det(shape, seed)`, the same in Rust and in NumPy:
//!
//! ```python
//! import numpy as np
//! def det(shape, seed):
//!     i = np.arange(int(np.prod(shape)))
//!     return (((i*37 + seed*101) % 29 - 14) / 20).astype(np.float32).reshape(shape)
//! ```
//!
//! Automatic layer names come from process-global counters, and the test harness runs tests on parallel
//! threads. So every test takes the `NAMES` lock: shared for ordinary tests, exclusive for the one test that
//! asserts automatic names (`automatic_names_follow_keras_global_counters`).

// Reference values are written with the digits Keras (or the tutorial) printed, more than float32 keeps.
#![allow(clippy::excessive_precision)]

mod common;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use rnnlab::ndarray::{concatenate, s, Axis};
use rnnlab::prelude::*;
use rnnlab::Result;

// ------------------------------------------------------------------------------------------------------------
// Helpers

static NAMES: RwLock<()> = RwLock::new(());

/// Taken by every test that creates layers but does not assert automatic names.
fn shared() -> RwLockReadGuard<'static, ()> {
    NAMES.read().unwrap_or_else(|e| e.into_inner())
}

/// Taken by the test that resets and asserts the automatic names.
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    NAMES.write().unwrap_or_else(|e| e.into_inner())
}

/// The four recurrent flavours under test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Lstm,
    /// GRU, reset_after = true (Keras 3 default).
    Gru,
    /// GRU, reset_after = false (Keras 2 form).
    GruV1,
    Simple,
}

const KINDS: [Kind; 4] = [Kind::Lstm, Kind::Gru, Kind::GruV1, Kind::Simple];

impl Kind {
    fn n_states(self) -> usize {
        if self == Kind::Lstm {
            2
        } else {
            1
        }
    }
    /// Number of stacked gate blocks in the kernel.
    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru | Kind::GruV1 => 3,
            Kind::Simple => 1,
        }
    }
    fn class(self) -> &'static str {
        match self {
            Kind::Lstm => "LSTM",
            Kind::Gru | Kind::GruV1 => "GRU",
            Kind::Simple => "SimpleRNN",
        }
    }
}

/// The RNN options a test varies.
#[derive(Clone, Copy, Default)]
struct Opts {
    rs: bool,
    st: bool,
    back: bool,
    stateful: bool,
    dropout: f32,
    rdrop: f32,
}

fn opts(rs: bool, st: bool) -> Opts {
    Opts {
        rs,
        st,
        ..Opts::default()
    }
}

fn rnn(kind: Kind, units: usize, o: Opts) -> Layer {
    macro_rules! cfg {
        ($l:expr) => {
            $l.return_sequences(o.rs)
                .return_state(o.st)
                .go_backwards(o.back)
                .stateful(o.stateful)
                .dropout(o.dropout)
                .recurrent_dropout(o.rdrop)
                .layer()
        };
    }
    match kind {
        Kind::Lstm => cfg!(LSTM::new(units)),
        Kind::Gru => cfg!(GRU::new(units)),
        Kind::GruV1 => cfg!(GRU::new(units).reset_after(false)),
        Kind::Simple => cfg!(SimpleRNN::new(units)),
    }
}

/// Deterministic values in [-0.7, 0.7] (see the NumPy `det` in the module docs).
fn det(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| (((i * 37 + seed * 101) % 29) as f32 - 14.0) / 20.0)
        .collect();
    Tensor::new(shape.to_vec(), v).unwrap()
}

/// Gives a built layer the weights `det(shape_i, seed + i)` and returns them.
fn set_det(layer: &Layer, seed: usize) -> Vec<Tensor> {
    assert!(layer.built(), "{layer:?} must be built before set_det");
    let w: Vec<Tensor> = layer
        .weight_shapes()
        .iter()
        .enumerate()
        .map(|(i, s)| det(s.dims(), seed + i))
        .collect();
    layer.set_weights(&w).unwrap();
    w
}

fn shape_strs(v: &[Tensor]) -> Vec<String> {
    v.iter().map(|t| t.shape().to_string()).collect()
}

fn sym_strs(v: &[SymbolicTensor]) -> Vec<String> {
    v.iter().map(|t| t.shape().to_string()).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `a[:, k]` of a rank-3 tensor.
fn step(t: &Tensor, k: usize) -> Tensor {
    Tensor(t.slice(s![.., k, ..]).to_owned().into_dyn())
}

/// `a[:, from..to]` of a rank-3 tensor.
fn steps(t: &Tensor, from: usize, to: usize) -> Tensor {
    Tensor(t.slice(s![.., from..to, ..]).to_owned().into_dyn())
}

/// `a[b..b+1]` (one sample, batch axis kept).
fn sample(t: &Tensor, b: usize) -> Tensor {
    let mut v = t.0.clone();
    v.slice_axis_inplace(Axis(0), (b..b + 1).into());
    Tensor(v.as_standard_layout().into_owned())
}

/// `a[..., from..to]` on the last axis.
fn last_axis(t: &Tensor, from: usize, to: usize) -> Tensor {
    let mut v = t.0.clone();
    let ax = Axis(v.ndim() - 1);
    v.slice_axis_inplace(ax, (from..to).into());
    Tensor(v.as_standard_layout().into_owned())
}

/// `a[:, ::-1]`.
fn flip_time(t: &Tensor) -> Tensor {
    let mut v = t.0.clone();
    v.invert_axis(Axis(1));
    Tensor(v.as_standard_layout().into_owned())
}

fn cat(axis: usize, parts: &[&Tensor]) -> Tensor {
    let views: Vec<_> = parts.iter().map(|t| t.view()).collect();
    Tensor(concatenate(Axis(axis), &views).unwrap())
}

fn cat_last(parts: &[&Tensor]) -> Tensor {
    cat(parts[0].ndim() - 1, parts)
}

fn map2(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
    assert_eq!(a.shape(), b.shape());
    let v = a.iter().zip(b.iter()).map(|(x, y)| f(*x, *y)).collect();
    Tensor::new(a.shape(), v).unwrap()
}

/// NumPy `allclose(got, want, rtol=1e-5, atol)`, with a readable failure.
fn close(what: &str, got: &Tensor, want: &Tensor, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert!(
        got.allclose(want, 1e-5, atol),
        "{what}: max abs diff {} > {atol}\n got  {:?}\n want {:?}",
        got.max_abs_diff(want),
        got.to_vec(),
        want.to_vec()
    );
}

/// Element-wise identical (same shape, same bits up to -0 == 0).
fn same(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert!(
        got.to_vec() == want.to_vec(),
        "{what}: not identical\n got  {:?}\n want {:?}",
        got.to_vec(),
        want.to_vec()
    );
}

fn differs(what: &str, a: &Tensor, b: &Tensor) {
    assert!(
        a.max_abs_diff(b) > 1e-3,
        "{what}: expected a difference, got max abs diff {}",
        a.max_abs_diff(b)
    );
}

fn is_zero(t: &Tensor) -> bool {
    t.iter().all(|v| *v == 0.0)
}

/// The message of an expected error (a panic here means the call succeeded).
fn err<T>(what: &str, r: Result<T>) -> String {
    match r {
        Ok(_) => panic!("{what}: expected an Err, got Ok"),
        Err(e) => e.to_string(),
    }
}

/// The message contains every part.
fn has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message lacks {p:?}:\n  {msg}");
    }
}

/// `... expected <..exp..> ... received <..rec..>`: the expected part mentions `exp`, the received part `rec`.
fn exp_rec(msg: &str, exp: &str, rec: &str) {
    let lower = msg.to_lowercase();
    let i = lower
        .find("expected")
        .unwrap_or_else(|| panic!("no 'expected' in {msg:?}"));
    let j = lower[i..]
        .find("received")
        .map(|j| i + j)
        .unwrap_or_else(|| panic!("no 'received' after 'expected' in {msg:?}"));
    assert!(
        msg[i..j].contains(exp),
        "expected part of {msg:?} lacks {exp:?}"
    );
    assert!(
        msg[j..].contains(rec),
        "received part of {msg:?} lacks {rec:?}"
    );
}

/// `Layer::name()` (the typed builders' own `name(&str)` is the setter).
fn nm(layer: &Layer) -> String {
    layer.name()
}

/// Builds a layer eagerly on `(2, 5, d)` zeros.
fn build_on(layer: &Layer, d: usize) {
    layer.apply_all(&Tensor::zeros((2, 5, d))).unwrap();
}

// ============================================================================================================
// 1. Shapes, weights, parameter counts

#[test]
fn output_shapes_for_every_return_sequences_return_state_pair() {
    let _g = shared();
    // keras-spec §2.1 (U=4, T=5, D=3): output (B,T,U) or (B,U), then the states (B,U) each, [h, c] for LSTM.
    for kind in KINDS {
        for (rs, st) in [(false, false), (true, false), (false, true), (true, true)] {
            let expect = |b: &str| -> Vec<String> {
                let mut v = vec![if rs {
                    format!("({b}, 5, 4)")
                } else {
                    format!("({b}, 4)")
                }];
                if st {
                    v.extend(std::iter::repeat_n(format!("({b}, 4)"), kind.n_states()));
                }
                v
            };
            let layer = rnn(kind, 4, opts(rs, st));
            let outs = layer.call_all(&Input::new((5, 3))).unwrap();
            assert_eq!(
                sym_strs(&outs),
                expect("None"),
                "{kind:?} rs={rs} st={st} symbolic"
            );
            // The same layer object, eagerly.
            let eager = layer.apply_all(&Tensor::zeros((2, 5, 3))).unwrap();
            assert_eq!(
                shape_strs(&eager),
                expect("2"),
                "{kind:?} rs={rs} st={st} eager"
            );
            // A fresh layer built eagerly first.
            let fresh = rnn(kind, 4, opts(rs, st))
                .apply_all(&Tensor::zeros((2, 5, 3)))
                .unwrap();
            assert_eq!(
                shape_strs(&fresh),
                expect("2"),
                "{kind:?} rs={rs} st={st} eager fresh"
            );
            // Unknown time dimension stays None.
            let var = rnn(kind, 4, opts(rs, st))
                .call_all(&Input::new((None, 3)))
                .unwrap();
            assert_eq!(
                var[0].shape().to_string(),
                if rs { "(None, None, 4)" } else { "(None, 4)" }
            );
            // `call` works exactly when there is one output; `call_n::<N>` with the right N.
            let single = rnn(kind, 4, opts(rs, st)).call(&Input::new((5, 3)));
            assert_eq!(
                single.is_ok(),
                !st,
                "{kind:?} rs={rs} st={st}: call() with one output"
            );
        }
    }
    let [seq, h, c] = LSTM::new(4)
        .return_sequences(true)
        .return_state(true)
        .call_n(&Input::new((5, 3)))
        .unwrap();
    assert_eq!(
        sym_strs(&[seq, h, c]),
        strs(&["(None, 5, 4)", "(None, 4)", "(None, 4)"])
    );
    let [out, h] = GRU::new(4)
        .return_state(true)
        .call_n(&Input::new((5, 3)))
        .unwrap();
    assert_eq!(sym_strs(&[out, h]), strs(&["(None, 4)", "(None, 4)"]));
}

#[test]
fn bidirectional_output_shapes_follow_the_spec_table() {
    let _g = shared();
    // keras-spec §2.3, U=4, T=5 (D=3 here).
    let b4 = "(None, 4)";
    let cases: Vec<(Layer, MergeMode, Vec<&str>)> = vec![
        (
            LSTM::new(4).return_state(true).layer(),
            MergeMode::Concat,
            vec!["(None, 8)", b4, b4, b4, b4],
        ),
        (
            LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .layer(),
            MergeMode::Concat,
            vec!["(None, 5, 8)", b4, b4, b4, b4],
        ),
        (
            LSTM::new(4).return_state(true).layer(),
            MergeMode::Sum,
            vec![b4, b4, b4, b4, b4],
        ),
        (
            LSTM::new(4).return_state(true).layer(),
            MergeMode::Mul,
            vec![b4, b4, b4, b4, b4],
        ),
        (
            LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .layer(),
            MergeMode::Ave,
            vec!["(None, 5, 4)", b4, b4, b4, b4],
        ),
        (
            LSTM::new(4).return_state(true).layer(),
            MergeMode::None,
            vec![b4, b4, b4, b4, b4, b4],
        ),
        (
            LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .layer(),
            MergeMode::None,
            vec!["(None, 5, 4)", "(None, 5, 4)", b4, b4, b4, b4],
        ),
        (
            GRU::new(4).return_state(true).layer(),
            MergeMode::Concat,
            vec!["(None, 8)", b4, b4],
        ),
        (
            GRU::new(4)
                .return_sequences(true)
                .return_state(true)
                .layer(),
            MergeMode::Concat,
            vec!["(None, 5, 8)", b4, b4],
        ),
        (
            SimpleRNN::new(4).return_state(true).layer(),
            MergeMode::None,
            vec![b4, b4, b4, b4],
        ),
        (LSTM::new(4).layer(), MergeMode::None, vec![b4, b4]),
        (LSTM::new(4).layer(), MergeMode::Concat, vec!["(None, 8)"]),
    ];
    for (i, (inner, mode, want)) in cases.into_iter().enumerate() {
        let bi = Bidirectional::new(inner).merge_mode(mode);
        let outs = bi.call_all(&Input::new((5, 3))).unwrap();
        assert_eq!(sym_strs(&outs), strs(&want), "case {i} ({mode:?}) symbolic");
        let eager = bi.apply_all(&Tensor::zeros((2, 5, 3))).unwrap();
        let want2: Vec<String> = want.iter().map(|s| s.replace("None", "2")).collect();
        assert_eq!(shape_strs(&eager), want2, "case {i} ({mode:?}) eager");
    }
}

#[test]
fn recurrent_weight_shapes_and_names() {
    let _g = shared();
    // keras-spec §1: K (D, gU), R (U, gU), bias (gU,), GRU reset_after bias (2, 3U). D=3, U=4.
    let want = |k: Kind| -> Vec<String> {
        let g = k.gates() * 4;
        let bias = if k == Kind::Gru {
            format!("(2, {g})")
        } else {
            format!("({g},)")
        };
        vec![format!("(3, {g})"), format!("(4, {g})"), bias]
    };
    for kind in KINDS {
        let layer = rnn(kind, 4, Opts::default());
        assert!(!layer.built(), "{kind:?}: built before the first call");
        assert!(layer.weight_shapes().is_empty() && layer.get_weights().is_empty());
        assert_eq!(layer.count_params(), 0);
        assert_eq!(layer.class_name(), kind.class());
        layer.call(&Input::new((5, 3))).unwrap();
        assert!(layer.built());
        let shapes: Vec<String> = layer
            .weight_shapes()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shapes, want(kind), "{kind:?} weight_shapes");
        assert_eq!(
            layer.weight_names(),
            strs(&["kernel", "recurrent_kernel", "bias"]),
            "{kind:?} weight_names"
        );
        assert_eq!(
            shape_strs(&layer.get_weights()),
            want(kind),
            "{kind:?} get_weights shapes"
        );
    }
    // use_bias=False drops the bias.
    let l = LSTM::new(4).use_bias(false);
    build_on(&l, 3);
    assert_eq!(l.weight_names(), strs(&["kernel", "recurrent_kernel"]));
    assert_eq!(l.count_params(), 4 * 4 * (3 + 4)); // 4U(D+U) = 112
    let g = GRU::new(4).use_bias(false);
    build_on(&g, 3);
    assert_eq!(g.count_params(), 3 * 4 * (3 + 4)); // 3U(D+U) = 84

    // Dense: kernel (D, U), bias (U,).
    let d = Dense::new(4);
    d.apply(&Tensor::zeros((2, 3))).unwrap();
    assert_eq!(
        d.weight_shapes()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        strs(&["(3, 4)", "(4,)"])
    );
    assert_eq!(d.weight_names(), strs(&["kernel", "bias"]));

    // Bidirectional: forward [K, R, b] then backward [K, R, b], named after forward_<name> / backward_<name>.
    let bi = Bidirectional::new(LSTM::new(4).name("enc"));
    build_on(&bi, 3);
    let shapes: Vec<String> = bi.weight_shapes().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        shapes,
        strs(&["(3, 16)", "(4, 16)", "(16,)", "(3, 16)", "(4, 16)", "(16,)"])
    );
    let names = bi.weight_names();
    assert_eq!(names.len(), 6);
    for (i, n) in names.iter().enumerate() {
        let dir = if i < 3 { "forward_enc" } else { "backward_enc" };
        let leaf = ["kernel", "recurrent_kernel", "bias"][i % 3];
        assert!(
            n.contains(dir) && n.ends_with(&format!("/{leaf}")),
            "Bidirectional weight {i} named {n:?}"
        );
    }

    // TimeDistributed(Dense) has the inner kernel and bias.
    let td = TimeDistributed::new(Dense::new(2));
    build_on(&td, 3);
    assert_eq!(
        td.weight_shapes()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        strs(&["(3, 2)", "(2,)"])
    );
}

#[test]
fn default_initial_biases() {
    let _g = shared();
    // keras-spec §1.1: unit_forget_bias gives [0 0 0 1 1 1 0 0 0 0 0 0] for U=3; §1.2/§1.3: GRU/SimpleRNN zeros.
    let l = LSTM::new(3);
    l.apply(&Tensor::zeros((1, 2, 2))).unwrap();
    assert_eq!(
        l.get_weights()[2].to_vec(),
        vec![0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]
    );
    let g = GRU::new(3);
    g.apply(&Tensor::zeros((1, 2, 2))).unwrap();
    assert!(is_zero(&g.get_weights()[2]) && g.get_weights()[2].shape() == [2, 9]);
    let r = SimpleRNN::new(3);
    r.apply(&Tensor::zeros((1, 2, 2))).unwrap();
    assert!(is_zero(&r.get_weights()[2]));
}

#[test]
fn parameter_counts() {
    let _g = shared();
    // LSTM(1) on 1 feature: 4U(D+U+1) = 4*1*3 = 12 (spec §4.1 table).
    let l = LSTM::new(1);
    l.apply(&Tensor::zeros((1, 3, 1))).unwrap();
    assert_eq!(l.count_params(), 12);

    // Sequential LSTM(4, rs) -> LSTM(2) -> Dense(1) on (3, 1): 96 + 56 + 3 = 155 (spec §3).
    let mut s = Sequential::named("params_155");
    s.add_input((3, 1)).unwrap();
    s.add(LSTM::new(4).return_sequences(true)).unwrap();
    s.add(LSTM::new(2)).unwrap();
    s.add(Dense::new(1)).unwrap();
    assert_eq!(s.count_params(), 155);
    assert_eq!(
        s.layers()
            .iter()
            .map(|l| l.count_params())
            .collect::<Vec<_>>(),
        vec![96, 56, 3]
    );
    assert_eq!(s.to_model().unwrap().count_params(), 155);
    assert_eq!(s.get_weights().iter().map(|w| w.len()).sum::<usize>(), 155);

    // GRU(3) on 2 features: 63 with reset_after, 54 without (spec §1.2 [V]).
    let g = GRU::new(3);
    g.apply(&Tensor::zeros((1, 4, 2))).unwrap();
    assert_eq!(g.count_params(), 63);
    let g1 = GRU::new(3).reset_after(false);
    g1.apply(&Tensor::zeros((1, 4, 2))).unwrap();
    assert_eq!(g1.count_params(), 54);
    // GRU(5) on 4 features: 165 (TF2) vs 150 (Keras 2), spec §1.4.
    let g5 = GRU::new(5);
    g5.apply(&Tensor::zeros((1, 2, 4))).unwrap();
    assert_eq!(g5.count_params(), 165);
    let g5v1 = GRU::new(5).reset_after(false);
    g5v1.apply(&Tensor::zeros((1, 2, 4))).unwrap();
    assert_eq!(g5v1.count_params(), 150);

    // Bidirectional: 2x inner. LSTM(4) on D=3: 256; GRU(2) on D=8: 144 (spec §3).
    let b = Bidirectional::new(LSTM::new(4));
    b.apply_all(&Tensor::zeros((1, 5, 3))).unwrap();
    assert_eq!(b.count_params(), 256);
    let b = Bidirectional::new(GRU::new(2));
    b.apply_all(&Tensor::zeros((1, 5, 8))).unwrap();
    assert_eq!(b.count_params(), 144);

    // SimpleRNN: U(D+U+1). Dense: D*U+U.
    for (d, u) in [(1, 1), (3, 4), (8, 2), (5, 7)] {
        let r = SimpleRNN::new(u);
        r.apply(&Tensor::zeros((1, 2, d))).unwrap();
        assert_eq!(r.count_params(), u * (d + u + 1), "SimpleRNN({u}) on D={d}");
        let dense = Dense::new(u);
        dense.apply(&Tensor::zeros((1, d))).unwrap();
        assert_eq!(dense.count_params(), d * u + u, "Dense({u}) on D={d}");
        let lstm = LSTM::new(u);
        lstm.apply(&Tensor::zeros((1, 2, d))).unwrap();
        assert_eq!(
            lstm.count_params(),
            4 * u * (d + u + 1),
            "LSTM({u}) on D={d}"
        );
    }

    // Encoder-decoder of spec §5 (ne=5, nd=6, latent=4): 160 + 176 + 30 = 366.
    let (m, _, _, _) = encoder_decoder("pc");
    assert_eq!(m.count_params(), 366);
    assert_eq!(
        m.layers()
            .iter()
            .map(|l| l.count_params())
            .collect::<Vec<_>>(),
        vec![0, 0, 160, 176, 30]
    );
    assert_eq!(
        shape_strs(&m.get_weights()),
        strs(&["(5, 16)", "(4, 16)", "(16,)", "(6, 16)", "(4, 16)", "(16,)", "(4, 6)", "(6,)"])
    );
}

/// The seq2seq training model of spec §5 with explicitly named layers: `<p>_enc_in`, `<p>_dec_in`, `<p>_enc`,
/// `<p>_dec`, `<p>_dense`. Returns the model and the encoder, decoder and dense layers.
fn encoder_decoder(p: &str) -> (Model, Layer, Layer, Layer) {
    let enc_in = Input::named(&format!("{p}_enc_in"), (None, 5));
    let enc = LSTM::new(4).return_state(true).name(&format!("{p}_enc"));
    let [_, h, c] = enc.call_n(&enc_in).unwrap();
    let dec_in = Input::named(&format!("{p}_dec_in"), (None, 6));
    let dec = LSTM::new(4)
        .return_sequences(true)
        .return_state(true)
        .name(&format!("{p}_dec"));
    let [seq, _, _] = dec.call_n_with_state(&dec_in, &[&h, &c]).unwrap();
    let dense = Dense::new(6)
        .activation("softmax")
        .name(&format!("{p}_dense"));
    let out = dense.call(&seq).unwrap();
    let m = Model::named(&format!("{p}_model"), [&enc_in, &dec_in], &out).unwrap();
    (m, enc.layer(), dec.layer(), dense.layer())
}

// ============================================================================================================
// 2. Semantics

/// A row-wise `recurrent_activation` (softmax) acts on each gate's own block, as Keras applies it to i, f and o
/// separately (the LSTM step takes i and f in one call for element-wise activations only). Reference from the
/// formulas (keras-spec §1) in float64: x = 1, h0 = c0 = 0, no bias, so z is the kernel's row;
/// i = softmax(z[0:2]), f = softmax(z[2:4]), g = tanh(z[4:6]), o = softmax(z[6:8]), c = i·g, h = o·tanh(c).
#[test]
fn lstm_applies_a_row_wise_recurrent_activation_to_each_gate_block() {
    let _g = shared();
    let layer = LSTM::new(2)
        .recurrent_activation("softmax")
        .use_bias(false)
        .layer();
    let x = Tensor::new(vec![1, 1, 1], vec![1.0]).unwrap();
    layer.apply(&x).unwrap();
    let z = [0.5f32, -0.3, 1.2, 0.1, 0.7, -0.9, 0.2, 0.4];
    let kernel = Tensor::new(vec![1, 8], z.to_vec()).unwrap();
    let recurrent = Tensor::new(vec![2, 8], vec![0.0; 16]).unwrap();
    layer.set_weights(&[kernel, recurrent]).unwrap();
    let h = layer.apply(&x).unwrap().to_vec();
    let softmax = |a: f64, b: f64| {
        let (ea, eb) = (a.exp(), b.exp());
        [ea / (ea + eb), eb / (ea + eb)]
    };
    let z: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let (i, o) = (softmax(z[0], z[1]), softmax(z[6], z[7]));
    let want: Vec<f64> = (0..2)
        .map(|j| o[j] * (i[j] * z[4 + j].tanh()).tanh())
        .collect();
    for (got, w) in h.iter().zip(&want) {
        assert!(
            (f64::from(*got) - w).abs() < 1e-6,
            "h = {h:?}, want {want:?}"
        );
    }
}

#[test]
fn cells_match_a_numpy_reference_with_set_weights() {
    let _g = shared();
    // NumPy float64 reference (keras-spec §1 formulas), X = det((2,4,2), 1), U = 3, weights det(shape_i, seed+i):
    //   LSTM seeds 10,11,12; GRU(reset_after) 20..22; GRU(reset_after=False) 30..32; SimpleRNN 40..42.
    // def lstm(x,K,R,b): h=c=zeros((B,U)); for t: z=x[:,t]@K+h@R+b; i,f,g,o=sig(z[:,:U]),sig(z[:,U:2U]),
    //     tanh(z[:,2U:3U]),sig(z[:,3U:]); c=f*c+i*g; h=o*tanh(c)
    // def gru(x,K,R,b,ra): ra: xz,xr,xh=split(x@K+b[0]); hz,hr,hh=split(h@R+b[1]); z=sig(xz+hz); r=sig(xr+hr);
    //     n=tanh(xh+r*hh)  else: xz,xr,xh=split(x@K+b); z=sig(xz+h@R[:,:U]); r=sig(xr+h@R[:,U:2U]);
    //     n=tanh(xh+(r*h)@R[:,2U:]);  h=z*h+(1-z)*n
    // def simple(x,K,R,b): h=tanh(x[:,t]@K+b+h@R)
    let x = det(&[2, 4, 2], 1);
    let cases: [(Kind, usize, [f32; 24]); 4] = [
        (
            Kind::Lstm,
            10,
            [
                0.032299134,
                0.022086285,
                -0.17579122,
                -0.026989946,
                0.037650488,
                -0.10596284,
                0.019468516,
                0.040184613,
                -0.21765422,
                -0.020394177,
                0.037572653,
                -0.14540289,
                0.063828095,
                0.009637898,
                -0.21336356,
                0.029710767,
                0.01322692,
                -0.17148655,
                -0.071856613,
                0.10130786,
                -0.25322796,
                -0.06401032,
                0.091551572,
                -0.17509587,
            ],
        ),
        (
            Kind::Gru,
            20,
            [
                0.10229085,
                -0.16309121,
                0.16839502,
                0.10999914,
                -0.17437602,
                0.095425493,
                0.24365321,
                -0.3057647,
                0.20931626,
                0.25096439,
                -0.28874171,
                0.12226215,
                0.15299298,
                -0.18600454,
                0.22282837,
                0.21180866,
                -0.25578676,
                0.17391001,
                -0.058621675,
                -0.14925678,
                0.43498651,
                0.1606612,
                -0.26178423,
                0.31591165,
            ],
        ),
        (
            Kind::GruV1,
            30,
            [
                -0.19401369,
                0.040183854,
                0.046385971,
                -0.25052822,
                -0.094641182,
                0.13227167,
                -0.34397815,
                0.011760607,
                0.07647789,
                -0.33728724,
                -0.087486929,
                0.14251384,
                -0.19899558,
                0.10455684,
                0.017562872,
                -0.30120912,
                0.00108015,
                0.11285113,
                -0.5706776,
                -0.15851146,
                0.45559165,
                -0.46632926,
                -0.090859529,
                0.21605367,
            ],
        ),
        (
            Kind::Simple,
            40,
            [
                -0.46211717,
                0.059928104,
                0.55112803,
                -0.23173630,
                0.48814488,
                -0.24758065,
                -0.54185178,
                0.39082678,
                0.63364826,
                -0.31163058,
                0.67309697,
                -0.30593591,
                -0.61999687,
                0.07485970,
                0.70390561,
                -0.49050259,
                0.60802434,
                -0.07975167,
                -0.20470046,
                0.69558888,
                0.42010188,
                -0.31312154,
                0.62745611,
                -0.11562674,
            ],
        ),
    ];
    for (kind, seed, want) in cases {
        let layer = rnn(kind, 3, opts(true, true));
        build_on(&layer, 2);
        set_det(&layer, seed);
        let out = layer.apply_all(&x).unwrap();
        close(
            &format!("{kind:?} sequence"),
            &out[0],
            &Tensor::new((2, 4, 3), want.to_vec()).unwrap(),
            1e-5,
        );
        // The same numbers through a Functional model's predict.
        let inp = Input::new((4, 2));
        let y = layer.call_all(&inp).unwrap();
        let m = Model::new(&inp, &y).unwrap();
        close(
            &format!("{kind:?} predict"),
            &m.predict_all(&x).unwrap()[0],
            &out[0],
            0.0,
        );
    }
    // LSTM final c (same reference): [-0.045001868, 0.080021643, -0.28104857, -0.14918802, 0.17268391, -0.33604202]
    let l = LSTM::new(3).return_state(true);
    build_on(&l, 2);
    set_det(&l, 10);
    let [_, _, c] = <[Tensor; 3]>::try_from(l.apply_all(&x).unwrap()).unwrap();
    let want_c = vec![
        -0.045001868,
        0.080021643,
        -0.28104857,
        -0.14918802,
        0.17268391,
        -0.33604202,
    ];
    close("LSTM c_T", &c, &Tensor::new((2, 3), want_c).unwrap(), 1e-5);
}

#[test]
fn last_sequence_step_is_state_h_and_rs_false_output_is_h() {
    let _g = shared();
    // keras-spec §2.1: seq[:, -1] == h_T, and with rs=F the output is identical to the state h.
    let x = det(&[2, 5, 3], 2);
    for kind in KINDS {
        let seq_layer = rnn(kind, 4, opts(true, true));
        build_on(&seq_layer, 3);
        let w = set_det(&seq_layer, 50);
        let o = seq_layer.apply_all(&x).unwrap();
        assert_eq!(o.len(), 1 + kind.n_states());
        same(&format!("{kind:?} seq[:, -1] vs h"), &step(&o[0], 4), &o[1]);

        let last_layer = rnn(kind, 4, opts(false, true));
        build_on(&last_layer, 3);
        last_layer.set_weights(&w).unwrap();
        let o2 = last_layer.apply_all(&x).unwrap();
        same(&format!("{kind:?} rs=F output vs h"), &o2[0], &o2[1]);
        same(
            &format!("{kind:?} rs=F output vs rs=T last step"),
            &o2[0],
            &step(&o[0], 4),
        );
        for s in 1..o.len() {
            same(
                &format!("{kind:?} state {s} independent of return_sequences"),
                &o2[s],
                &o[s],
            );
        }
        let plain = rnn(kind, 4, opts(false, false));
        build_on(&plain, 3);
        plain.set_weights(&w).unwrap();
        same(
            &format!("{kind:?} plain output"),
            &plain.apply(&x).unwrap(),
            &o[1],
        );
    }
}

#[test]
fn go_backwards_is_the_forward_layer_on_the_reversed_input() {
    let _g = shared();
    // keras-spec §2.2: seq_b == forward_layer(X[:, ::-1]) (not re-reversed), seq_b[:, -1] == h_final,
    // seq_b[:, 0] is the output after consuming x_{T-1} alone.
    let x = det(&[2, 5, 3], 3);
    for kind in KINDS {
        let fwd = rnn(kind, 4, opts(true, true));
        let bwd = rnn(
            kind,
            4,
            Opts {
                back: true,
                ..opts(true, true)
            },
        );
        build_on(&fwd, 3);
        build_on(&bwd, 3);
        let w = set_det(&fwd, 60);
        bwd.set_weights(&w).unwrap();
        let ob = bwd.apply_all(&x).unwrap();
        let of = fwd.apply_all(&flip_time(&x)).unwrap();
        for (i, (b, f)) in ob.iter().zip(&of).enumerate() {
            close(&format!("{kind:?} go_backwards output {i}"), b, f, 1e-6);
        }
        same(
            &format!("{kind:?} seq_b[:, -1] == h"),
            &step(&ob[0], 4),
            &ob[1],
        );
        let first = fwd.apply_all(&steps(&x, 4, 5)).unwrap();
        close(
            &format!("{kind:?} seq_b[:, 0] after x_(T-1)"),
            &step(&ob[0], 0),
            &step(&first[0], 0),
            1e-6,
        );
        // It really differs from the forward direction on these weights.
        differs(
            &format!("{kind:?} backwards vs forwards"),
            &ob[0],
            &fwd.apply_all(&x).unwrap()[0],
        );
    }
}

#[test]
fn bidirectional_concat_is_forward_and_backward_halves() {
    let _g = shared();
    // keras-spec §2.3: rs=F concat = [h_fwd_T, h_bwd_final] (h_bwd_final: state after consuming x_0);
    // rs=T: out[:, :, :U] = fwd seq, out[:, :, U:] = flip(bwd seq), out[:, 0, U:] = bwd final state;
    // return_state order (merged, fwd states..., bwd states...); weights forward [K,R,b] then backward.
    let x = det(&[2, 5, 3], 4);
    let u = 3;
    for kind in KINDS {
        let n = kind.n_states();
        let bi = Bidirectional::new(rnn(kind, u, opts(false, true)));
        build_on(&bi, 3);
        let w = set_det(&bi, 70);
        assert_eq!(w.len(), 6);
        let fwd = rnn(kind, u, opts(true, true));
        build_on(&fwd, 3);
        fwd.set_weights(&w[..3]).unwrap();
        let bwd = rnn(
            kind,
            u,
            Opts {
                back: true,
                ..opts(true, true)
            },
        );
        build_on(&bwd, 3);
        bwd.set_weights(&w[3..]).unwrap();
        // The backward weights in a forward layer on the reversed input: independent of go_backwards.
        let bwd_as_fwd = rnn(kind, u, opts(true, true));
        build_on(&bwd_as_fwd, 3);
        bwd_as_fwd.set_weights(&w[3..]).unwrap();

        let of = fwd.apply_all(&x).unwrap();
        let ob = bwd.apply_all(&x).unwrap();
        let or = bwd_as_fwd.apply_all(&flip_time(&x)).unwrap();
        let o = bi.apply_all(&x).unwrap();
        assert_eq!(o.len(), 1 + 2 * n, "{kind:?} number of outputs");
        close(
            &format!("{kind:?} concat"),
            &o[0],
            &cat_last(&[&of[1], &ob[1]]),
            1e-6,
        );
        close(
            &format!("{kind:?} concat bwd half = state after x_0"),
            &last_axis(&o[0], u, 2 * u),
            &or[1],
            1e-6,
        );
        for s in 0..n {
            close(
                &format!("{kind:?} fwd state {s}"),
                &o[1 + s],
                &of[1 + s],
                1e-6,
            );
            close(
                &format!("{kind:?} bwd state {s}"),
                &o[1 + n + s],
                &ob[1 + s],
                1e-6,
            );
        }

        let bi_seq = Bidirectional::new(rnn(kind, u, opts(true, true)));
        build_on(&bi_seq, 3);
        bi_seq.set_weights(&w).unwrap();
        let os = bi_seq.apply_all(&x).unwrap();
        assert_eq!(os[0].shape(), [2, 5, 2 * u]);
        close(
            &format!("{kind:?} rs=T fwd half"),
            &last_axis(&os[0], 0, u),
            &of[0],
            1e-6,
        );
        close(
            &format!("{kind:?} rs=T bwd half"),
            &last_axis(&os[0], u, 2 * u),
            &flip_time(&ob[0]),
            1e-6,
        );
        close(
            &format!("{kind:?} rs=T out[:,0,U:] = bwd final"),
            &last_axis(&step(&os[0], 0), u, 2 * u),
            &os[1 + n],
            1e-6,
        );
        close(
            &format!("{kind:?} rs=T out[:,-1,:U] = fwd final"),
            &last_axis(&step(&os[0], 4), 0, u),
            &os[1],
            1e-6,
        );
    }
}

#[test]
fn bidirectional_merge_modes() {
    let _g = shared();
    // keras-spec §2.3: sum y+y_rev, mul y*y_rev, ave (y+y_rev)/2, None the pair (y, y_rev).
    let x = det(&[2, 5, 3], 5);
    let u = 3;
    for rs in [false, true] {
        let concat = Bidirectional::new(LSTM::new(u).return_sequences(rs));
        build_on(&concat, 3);
        let w = set_det(&concat, 80);
        let c = concat.apply(&x).unwrap();
        let (y, y_rev) = (last_axis(&c, 0, u), last_axis(&c, u, 2 * u));
        let run = |mode: MergeMode| -> Vec<Tensor> {
            let b = Bidirectional::new(LSTM::new(u).return_sequences(rs)).merge_mode(mode);
            build_on(&b, 3);
            b.set_weights(&w).unwrap();
            b.apply_all(&x).unwrap()
        };
        close(
            &format!("sum rs={rs}"),
            &run(MergeMode::Sum)[0],
            &map2(&y, &y_rev, |a, b| a + b),
            1e-6,
        );
        close(
            &format!("mul rs={rs}"),
            &run(MergeMode::Mul)[0],
            &map2(&y, &y_rev, |a, b| a * b),
            1e-6,
        );
        close(
            &format!("ave rs={rs}"),
            &run(MergeMode::Ave)[0],
            &map2(&y, &y_rev, |a, b| (a + b) / 2.0),
            1e-6,
        );
        let none = run(MergeMode::None);
        assert_eq!(none.len(), 2, "merge_mode None returns (y, y_rev)");
        close(&format!("None y rs={rs}"), &none[0], &y, 1e-6);
        close(&format!("None y_rev rs={rs}"), &none[1], &y_rev, 1e-6);
        differs("the two directions", &y, &y_rev);
    }
    // Names round-trip.
    for (name, mode) in [
        ("concat", MergeMode::Concat),
        ("sum", MergeMode::Sum),
        ("mul", MergeMode::Mul),
        ("ave", MergeMode::Ave),
    ] {
        assert_eq!(MergeMode::from_name(name).unwrap(), mode);
        assert_eq!(mode.name(), Some(name));
    }
    assert_eq!(MergeMode::from_name("None").unwrap(), MergeMode::None);
    assert_eq!(MergeMode::None.name(), None);
    assert_eq!(MergeMode::default(), MergeMode::Concat);
}

#[test]
fn initial_state_zeros_equal_none_and_a_nonzero_state_changes_the_output() {
    let _g = shared();
    // keras-spec §2.4: None means zeros; states are (B, U); [h, c] for LSTM, [h] otherwise.
    let x = det(&[2, 5, 3], 6);
    for kind in KINDS {
        let l = rnn(kind, 4, opts(true, true));
        build_on(&l, 3);
        set_det(&l, 90);
        let zeros: Vec<Tensor> = (0..kind.n_states())
            .map(|_| Tensor::zeros((2, 4)))
            .collect();
        let zrefs: Vec<&Tensor> = zeros.iter().collect();
        let base = l.apply_all(&x).unwrap();
        let with_zeros = l.apply_all_with_state(&x, &zrefs).unwrap();
        for (i, (a, b)) in with_zeros.iter().zip(&base).enumerate() {
            same(&format!("{kind:?} zero initial state, output {i}"), a, b);
        }
        let st: Vec<Tensor> = (0..kind.n_states()).map(|i| det(&[2, 4], 95 + i)).collect();
        let srefs: Vec<&Tensor> = st.iter().collect();
        let with_st = l.apply_all_with_state(&x, &srefs).unwrap();
        differs(
            &format!("{kind:?} non-zero initial state"),
            &with_st[0],
            &base[0],
        );
        // The state enters the first step: one step from (h0, c0) equals the first output.
        let one = l.apply_all_with_state(&steps(&x, 0, 1), &srefs).unwrap();
        close(
            &format!("{kind:?} first step from the state"),
            &step(&with_st[0], 0),
            &step(&one[0], 0),
            1e-6,
        );
    }

    // Symbolic decoder: LSTM(...)(dec_in, initial_state=[h_in, c_in]) in a 3-input model.
    let dec_in = Input::new((None, 3));
    let (h_in, c_in) = (Input::new(4), Input::new(4));
    let dec = LSTM::new(4).return_sequences(true).return_state(true);
    let outs = dec.call_all_with_state(&dec_in, &[&h_in, &c_in]).unwrap();
    assert_eq!(
        sym_strs(&outs),
        strs(&["(None, None, 4)", "(None, 4)", "(None, 4)"])
    );
    let m = Model::new([&dec_in, &h_in, &c_in], &outs).unwrap();
    set_det(&dec.layer(), 100);
    let z = Tensor::zeros((2, 4));
    let pz = m.predict_all([&x, &z, &z]).unwrap();
    let eager = dec.apply_all(&x).unwrap();
    for i in 0..3 {
        close(
            &format!("decoder with zero states, output {i}"),
            &pz[i],
            &eager[i],
            1e-6,
        );
    }
    let (h0, c0) = (det(&[2, 4], 101), det(&[2, 4], 102));
    let ps = m.predict_all([&x, &h0, &c0]).unwrap();
    differs("decoder fed a non-zero state", &ps[0], &pz[0]);
    let eager_s = dec.apply_all_with_state(&x, &[&h0, &c0]).unwrap();
    for i in 0..3 {
        close(
            &format!("decoder predict vs eager with state, output {i}"),
            &ps[i],
            &eager_s[i],
            1e-6,
        );
    }

    // Encoder states wired into the decoder inside one model equal the eager chain.
    let (m, enc, dec, dense) = encoder_decoder("init");
    set_det(&enc, 110);
    set_det(&dec, 120);
    set_det(&dense, 130);
    let (xe, xd) = (det(&[2, 4, 5], 7), det(&[2, 3, 6], 8));
    let got = m.predict([&xe, &xd]).unwrap();
    let e = enc.apply_all(&xe).unwrap();
    let d = dec.apply_all_with_state(&xd, &[&e[1], &e[2]]).unwrap();
    let want = dense.apply(&d[0]).unwrap();
    close("encoder-decoder predict", &got, &want, 1e-6);
    assert_eq!(got.shape(), [2, 3, 6]);
}

#[test]
fn bidirectional_initial_state_is_split_in_halves() {
    let _g = shared();
    // keras-spec §2.3: first half -> forward, second half -> backward. LSTM [fh0, fc0, bh0, bc0]; GRU [fh0, bh0].
    let x = det(&[2, 5, 3], 9);
    for kind in [Kind::Lstm, Kind::Gru, Kind::Simple] {
        let n = kind.n_states();
        let bi = Bidirectional::new(rnn(kind, 4, opts(true, true)));
        build_on(&bi, 3);
        let w = set_det(&bi, 140);
        let fwd = rnn(kind, 4, opts(true, true));
        build_on(&fwd, 3);
        fwd.set_weights(&w[..3]).unwrap();
        let bwd = rnn(
            kind,
            4,
            Opts {
                back: true,
                ..opts(true, true)
            },
        );
        build_on(&bwd, 3);
        bwd.set_weights(&w[3..]).unwrap();
        let st: Vec<Tensor> = (0..2 * n).map(|i| det(&[2, 4], 150 + i)).collect();
        let all: Vec<&Tensor> = st.iter().collect();
        let o = bi.apply_all_with_state(&x, &all).unwrap();
        let of = fwd.apply_all_with_state(&x, &all[..n]).unwrap();
        let ob = bwd.apply_all_with_state(&x, &all[n..]).unwrap();
        close(
            &format!("{kind:?} bidirectional with states"),
            &o[0],
            &cat_last(&[&of[0], &flip_time(&ob[0])]),
            1e-6,
        );
        for s in 0..n {
            close(
                &format!("{kind:?} fwd state {s}"),
                &o[1 + s],
                &of[1 + s],
                1e-6,
            );
            close(
                &format!("{kind:?} bwd state {s}"),
                &o[1 + n + s],
                &ob[1 + s],
                1e-6,
            );
        }
        differs(
            &format!("{kind:?} states matter"),
            &o[0],
            &bi.apply_all(&x).unwrap()[0],
        );
        // Symbolic: 2n state inputs are accepted.
        let inp = Input::new((5, 3));
        let sts: Vec<SymbolicTensor> = (0..2 * n).map(|_| Input::new(4)).collect();
        let srefs: Vec<&SymbolicTensor> = sts.iter().collect();
        let outs = bi.call_all_with_state(&inp, &srefs).unwrap();
        let mut ins = vec![inp.clone()];
        ins.extend(sts.iter().cloned());
        let m = Model::new(ins, &outs).unwrap();
        let mut arrays = vec![x.clone()];
        arrays.extend(st.iter().cloned());
        let p = m.predict_all(arrays).unwrap();
        close(
            &format!("{kind:?} bidirectional model with states"),
            &p[0],
            &o[0],
            1e-6,
        );
    }
}

#[test]
fn stateful_two_predicts_equal_one_run_on_the_concatenated_input() {
    let _g = shared();
    // keras-spec §2.5: two successive predicts on X equal one run on concat([X, X], axis=1); reset_state() zeros.
    let x = det(&[2, 5, 3], 10);
    let xx = cat(1, &[&x, &x]);
    for kind in KINDS {
        let inp = Input::with_batch_shape((2, 5, 3));
        let l = rnn(
            kind,
            4,
            Opts {
                stateful: true,
                ..opts(true, false)
            },
        );
        let y = l.call(&inp).unwrap();
        let m = Model::new(&inp, &y).unwrap();
        let w = set_det(&l, 160);
        let reference = rnn(kind, 4, opts(true, false));
        build_on(&reference, 3);
        reference.set_weights(&w).unwrap();
        let r = reference.apply(&xx).unwrap();

        let p1 = m.predict(&x).unwrap();
        let p2 = m.predict(&x).unwrap();
        close(
            &format!("{kind:?} first predict"),
            &p1,
            &steps(&r, 0, 5),
            1e-5,
        );
        close(
            &format!("{kind:?} second predict continues"),
            &p2,
            &steps(&r, 5, 10),
            1e-5,
        );
        differs(&format!("{kind:?} the state carries over"), &p1, &p2);

        l.reset_state();
        same(
            &format!("{kind:?} after reset_state()"),
            &m.predict(&x).unwrap(),
            &p1,
        );
        m.predict(&x).unwrap();
        m.reset_states();
        same(
            &format!("{kind:?} after Model::reset_states()"),
            &m.predict(&x).unwrap(),
            &p1,
        );

        // Eager calls keep the state too.
        l.reset_state();
        let e1 = l.apply(&x).unwrap();
        let e2 = l.apply(&x).unwrap();
        close(&format!("{kind:?} eager stateful 1"), &e1, &p1, 1e-6);
        close(&format!("{kind:?} eager stateful 2"), &e2, &p2, 1e-6);
    }

    // Stateful with return_state: the returned final states are the kept ones; a Bidirectional resets both
    // directions (spec §2.3).
    let bi = Bidirectional::new(LSTM::new(3).return_sequences(true).stateful(true));
    bi.apply(&x).unwrap();
    set_det(&bi, 170);
    bi.reset_state();
    let b1 = bi.apply(&x).unwrap();
    let b2 = bi.apply(&x).unwrap();
    differs("stateful Bidirectional carries state", &b1, &b2);
    bi.reset_state();
    same(
        "Bidirectional reset_state resets both directions",
        &bi.apply(&x).unwrap(),
        &b1,
    );
}

/// `det((2,5,2), 7)` with no all-zero step (checked), so Masking(0.0) masks only the steps a test zeroes.
fn mask_data() -> Tensor {
    // numpy det((2,5,2),7):
    // [[[-0.15,0.25],[0.65,-0.4],[0.,0.4],[-0.65,-0.25],[0.15,0.55]],
    //  [[-0.5,-0.1],[0.3,0.7],[-0.35,0.05],[0.45,-0.6],[-0.2,0.2]]]
    let x = det(&[2, 5, 2], 7);
    for b in 0..2 {
        for t in 0..5 {
            assert!(x.slice(s![b, t, ..]).iter().any(|v| *v != 0.0));
        }
    }
    x
}

/// Input((5,2)) -> Masking(0.) -> layer; returns the model.
fn masked_model(layer: &Layer) -> Model {
    let inp = Input::new((5, 2));
    let m = Masking::new(0.0).call(&inp).unwrap();
    let outs = layer.call_all(&m).unwrap();
    Model::new(&inp, &outs).unwrap()
}

#[test]
fn masking_trailing_steps_repeat_the_previous_output_and_keep_the_state() {
    let _g = shared();
    // keras-spec §2.6: at a masked step the states carry over and the output is the previous output; the final
    // state is the state at the last unmasked step.
    let mut x = mask_data();
    x.slice_mut(s![1, 3.., ..]).fill(0.0);
    for kind in KINDS {
        let l = rnn(kind, 3, opts(true, true));
        let m = masked_model(&l);
        let w = set_det(&l, 200);
        let o = m.predict_all(&x).unwrap();
        let seq = &o[0];
        let s1 = sample(seq, 1);
        same(
            &format!("{kind:?} step 3 repeats step 2"),
            &step(&s1, 3),
            &step(&s1, 2),
        );
        same(
            &format!("{kind:?} step 4 repeats step 2"),
            &step(&s1, 4),
            &step(&s1, 2),
        );
        same(
            &format!("{kind:?} h = output at last unmasked step"),
            &sample(&o[1], 1),
            &step(&s1, 2),
        );

        let plain = rnn(kind, 3, opts(true, true));
        build_on(&plain, 2);
        plain.set_weights(&w).unwrap();
        let r1 = plain.apply_all(&steps(&sample(&x, 1), 0, 3)).unwrap();
        close(
            &format!("{kind:?} unmasked steps"),
            &steps(&s1, 0, 3),
            &r1[0],
            1e-6,
        );
        for s in 1..o.len() {
            close(
                &format!("{kind:?} final state {s}"),
                &sample(&o[s], 1),
                &r1[s],
                1e-6,
            );
        }
        let r0 = plain.apply_all(&sample(&x, 0)).unwrap();
        for s in 0..o.len() {
            close(
                &format!("{kind:?} unmasked sample, output {s}"),
                &sample(&o[s], 0),
                &r0[s],
                1e-6,
            );
        }

        // rs=False: the output is h at the last unmasked step.
        let l2 = rnn(kind, 3, opts(false, false));
        let m2 = masked_model(&l2);
        l2.set_weights(&w).unwrap();
        close(
            &format!("{kind:?} rs=F masked output"),
            &sample(&m2.predict(&x).unwrap(), 1),
            &r1[1],
            1e-6,
        );
    }

    // zero_output_for_mask=True: 0 at the masked steps, state still held.
    let l = LSTM::new(3)
        .return_sequences(true)
        .return_state(true)
        .zero_output_for_mask(true);
    let m = masked_model(&l.layer());
    set_det(&l, 200);
    let o = m.predict_all(&x).unwrap();
    assert!(
        is_zero(&steps(&sample(&o[0], 1), 3, 5)),
        "zero_output_for_mask: {:?}",
        o[0].to_vec()
    );
    same(
        "zero_output_for_mask keeps h",
        &sample(&o[1], 1),
        &step(&sample(&o[0], 1), 2),
    );
}

#[test]
fn masking_left_padding_equals_the_unpadded_suffix_and_a_masked_first_step_outputs_zero() {
    let _g = shared();
    // keras-spec §2.6: left-padded + masked == running on the unpadded suffix; a masked t=0 outputs 0.
    let base = mask_data();
    let mut x = base.clone();
    // Sample 1 becomes [0, 0, x1_0, x1_1, x1_2].
    let suffix = steps(&sample(&base, 1), 0, 3);
    x.slice_mut(s![1, 0..2, ..]).fill(0.0);
    x.slice_mut(s![1, 2..5, ..])
        .assign(&suffix.slice(s![0, .., ..]));
    for kind in KINDS {
        let l = rnn(kind, 3, opts(true, true));
        let m = masked_model(&l);
        let w = set_det(&l, 210);
        let o = m.predict_all(&x).unwrap();
        let s1 = sample(&o[0], 1);
        assert!(
            is_zero(&steps(&s1, 0, 2)),
            "{kind:?}: masked leading steps must output 0, got {:?}",
            s1.to_vec()
        );
        let plain = rnn(kind, 3, opts(true, true));
        build_on(&plain, 2);
        plain.set_weights(&w).unwrap();
        let r = plain.apply_all(&suffix).unwrap();
        close(
            &format!("{kind:?} padded steps = suffix run"),
            &steps(&s1, 2, 5),
            &r[0],
            1e-6,
        );
        for s in 1..o.len() {
            close(
                &format!("{kind:?} padded final state {s}"),
                &sample(&o[s], 1),
                &r[s],
                1e-6,
            );
        }
    }
}

#[test]
fn masking_a_hole_in_the_middle_is_skipped() {
    let _g = shared();
    // keras-spec §2.6: "Holes in the middle are handled the same way".
    let base = mask_data();
    let mut x = base.clone();
    x.slice_mut(s![1, 2, ..]).fill(0.0);
    let s1 = sample(&base, 1);
    let without_hole = cat(1, &[&steps(&s1, 0, 2), &steps(&s1, 3, 5)]);
    for kind in KINDS {
        let l = rnn(kind, 3, opts(true, true));
        let m = masked_model(&l);
        let w = set_det(&l, 220);
        let o = m.predict_all(&x).unwrap();
        let q = sample(&o[0], 1);
        same(
            &format!("{kind:?} hole repeats the previous output"),
            &step(&q, 2),
            &step(&q, 1),
        );
        let plain = rnn(kind, 3, opts(true, true));
        build_on(&plain, 2);
        plain.set_weights(&w).unwrap();
        let r = plain.apply_all(&without_hole).unwrap();
        close(
            &format!("{kind:?} final state skips the hole"),
            &sample(&o[1], 1),
            &r[1],
            1e-6,
        );
        close(
            &format!("{kind:?} steps after the hole"),
            &steps(&q, 3, 5),
            &steps(&r[0], 2, 4),
            1e-6,
        );
    }
}

#[test]
fn masking_under_bidirectional_gives_zeros_at_masked_steps() {
    let _g = shared();
    // keras-spec §2.3: Bidirectional sets zero_output_for_mask = return_sequences, so masked steps are 0 in both
    // halves; unmasked steps equal the two directions run on the unmasked part.
    let mut x = mask_data();
    x.slice_mut(s![1, 3.., ..]).fill(0.0);
    for kind in [Kind::Lstm, Kind::Gru, Kind::Simple] {
        let bi = Bidirectional::new(rnn(kind, 3, opts(true, false)));
        let m = masked_model(&bi);
        let w = set_det(&bi, 230);
        let o = m.predict(&x).unwrap();
        assert_eq!(o.shape(), [2, 5, 6]);
        let s1 = sample(&o, 1);
        assert!(
            is_zero(&steps(&s1, 3, 5)),
            "{kind:?}: masked steps must be 0 in both halves: {:?}",
            s1.to_vec()
        );
        assert!(!is_zero(&step(&s1, 2)) && !is_zero(&step(&sample(&o, 0), 4)));
        let fwd = rnn(kind, 3, opts(true, false));
        build_on(&fwd, 2);
        fwd.set_weights(&w[..3]).unwrap();
        let bwd = rnn(
            kind,
            3,
            Opts {
                back: true,
                ..opts(true, false)
            },
        );
        build_on(&bwd, 2);
        bwd.set_weights(&w[3..]).unwrap();
        let part = steps(&sample(&x, 1), 0, 3);
        let want = cat_last(&[
            &fwd.apply(&part).unwrap(),
            &flip_time(&bwd.apply(&part).unwrap()),
        ]);
        close(
            &format!("{kind:?} unmasked steps of the masked sample"),
            &steps(&s1, 0, 3),
            &want,
            1e-6,
        );
    }
}

#[test]
fn dropout_and_recurrent_dropout_are_no_ops_in_predict() {
    let _g = shared();
    // keras-spec §2.7 and §3: dropout acts only with training=True; predict and layer(x) are unchanged.
    let x = det(&[2, 5, 3], 11);
    let d = Dropout::new(0.5);
    same("Dropout eager", &d.apply(&x).unwrap(), &x);
    assert_eq!(
        Dropout::new(0.5)
            .call(&Input::new((5, 3)))
            .unwrap()
            .shape()
            .to_string(),
        "(None, 5, 3)"
    );
    for kind in KINDS {
        let with = rnn(
            kind,
            4,
            Opts {
                dropout: 0.5,
                rdrop: 0.3,
                ..opts(true, true)
            },
        );
        let without = rnn(kind, 4, opts(true, true));
        let inp = Input::new((5, 3));
        let mw = Model::new(&inp, with.call_all(&inp).unwrap()).unwrap();
        let inp2 = Input::new((5, 3));
        let mo = Model::new(&inp2, without.call_all(&inp2).unwrap()).unwrap();
        let w = set_det(&with, 240);
        without.set_weights(&w).unwrap();
        let (a, b) = (mw.predict_all(&x).unwrap(), mo.predict_all(&x).unwrap());
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            same(&format!("{kind:?} predict with dropout, output {i}"), p, q);
        }
        same(
            &format!("{kind:?} eager with dropout"),
            &with.apply_all(&x).unwrap()[0],
            &b[0],
        );
        // Twice in a row: no randomness.
        same(
            &format!("{kind:?} repeatable"),
            &mw.predict_all(&x).unwrap()[0],
            &a[0],
        );
    }
    // A Dropout layer inside a Sequential model changes nothing.
    let mut s1 = Sequential::named("drop_a");
    s1.add_input((5, 3)).unwrap();
    s1.add(LSTM::new(4)).unwrap();
    s1.add(Dropout::new(0.5)).unwrap();
    s1.add(Dense::new(1)).unwrap();
    let mut s2 = Sequential::named("drop_b");
    s2.add_input((5, 3)).unwrap();
    s2.add(LSTM::new(4)).unwrap();
    s2.add(Dense::new(1)).unwrap();
    let w: Vec<Tensor> = s1
        .get_weights()
        .iter()
        .enumerate()
        .map(|(i, t)| det(t.shape().dims(), 250 + i))
        .collect();
    s1.set_weights(&w).unwrap();
    s2.set_weights(&w).unwrap();
    same(
        "Sequential with Dropout",
        &s1.predict(&x).unwrap(),
        &s2.predict(&x).unwrap(),
    );
}

#[test]
fn repeat_vector_and_flatten() {
    let _g = shared();
    // keras-spec §3: RepeatVector(3): [[1,2]] -> [[[1,2],[1,2],[1,2]]]; Flatten (B,a,b) -> (B,a*b), row-major.
    let y = RepeatVector::new(3)
        .apply(&Tensor::new((1, 2), vec![1.0, 2.0]).unwrap())
        .unwrap();
    same(
        "RepeatVector",
        &y,
        &Tensor::new((1, 3, 2), vec![1., 2., 1., 2., 1., 2.]).unwrap(),
    );
    let x = det(&[2, 4], 12);
    let y = RepeatVector::new(2).apply(&x).unwrap();
    assert_eq!(y.shape(), [2, 2, 4]);
    same("RepeatVector batch 2, copy 0", &step(&y, 0), &x);
    same("RepeatVector batch 2, copy 1", &step(&y, 1), &x);
    assert_eq!(
        RepeatVector::new(3)
            .call(&Input::new(2))
            .unwrap()
            .shape()
            .to_string(),
        "(None, 3, 2)"
    );
    assert_eq!(RepeatVector::new(3).count_params(), 0);

    // numpy: np.arange(24, dtype=np.float32).reshape(2,3,4).reshape(2,12)
    let a = Tensor::new((2, 3, 4), (0..24).map(|v| v as f32).collect()).unwrap();
    let f = Flatten::new().apply(&a).unwrap();
    same(
        "Flatten",
        &f,
        &Tensor::new((2, 12), (0..24).map(|v| v as f32).collect()).unwrap(),
    );
    assert_eq!(
        Flatten::new()
            .call(&Input::new((3, 4)))
            .unwrap()
            .shape()
            .to_string(),
        "(None, 12)"
    );
    assert_eq!(
        Flatten::new()
            .call(&Input::new((2, 3, 4)))
            .unwrap()
            .shape()
            .to_string(),
        "(None, 24)"
    );
    assert_eq!(
        Flatten::new()
            .call(&Input::new((None, 4)))
            .unwrap()
            .shape()
            .to_string(),
        "(None, None)"
    );
    // RepeatVector -> LSTM -> Flatten in a model (the classic autoencoder plumbing).
    let inp = Input::new(4);
    let r = RepeatVector::new(5).call(&inp).unwrap();
    let seq = LSTM::new(2).return_sequences(true).call(&r).unwrap();
    let out = Flatten::new().call(&seq).unwrap();
    assert_eq!(out.shape().to_string(), "(None, 10)");
    let m = Model::new(&inp, &out).unwrap();
    assert_eq!(m.predict(&x).unwrap().shape(), [2, 10]);
}

#[test]
fn dense_on_rank_3_equals_time_distributed_dense() {
    let _g = shared();
    // keras-spec §3: Dense acts on the last axis; TimeDistributed(Dense) is numerically the same.
    // numpy: x=det((2,5,3),3); K=det((3,2),60); b=det((2,),61); (x@K+b).ravel()
    let x = det(&[2, 5, 3], 3);
    let want = Tensor::new(
        (2, 5, 2),
        vec![
            0.35250001,
            0.66499999,
            -0.55500002,
            0.39999999,
            -0.59250001,
            0.42499999,
            0.38499997,
            -0.05749999,
            0.34750001,
            -0.03249999,
            0.38250001,
            0.64499999,
            -0.52500001,
            0.38,
            -0.5625,
            0.40499999,
            -0.60000002,
            0.43,
            0.37750001,
            -0.0525,
        ],
    )
    .unwrap();
    let dense = Dense::new(2);
    dense.apply(&x).unwrap();
    let w = set_det(&dense, 60);
    let yd = dense.apply(&x).unwrap();
    close("Dense on rank 3 vs numpy", &yd, &want, 1e-6);
    let td = TimeDistributed::new(Dense::new(2));
    td.apply(&x).unwrap();
    td.set_weights(&w).unwrap();
    let yt = td.apply(&x).unwrap();
    close("TimeDistributed(Dense) vs Dense", &yt, &yd, 1e-6);
    // Symbolic shapes, and rank 2 and 4 for Dense.
    assert_eq!(
        dense.call(&Input::new((5, 3))).unwrap().shape().to_string(),
        "(None, 5, 2)"
    );
    assert_eq!(
        td.call(&Input::new((None, 3))).unwrap().shape().to_string(),
        "(None, None, 2)"
    );
    close(
        "Dense on rank 2 = per row",
        &dense.apply(&step(&x, 1)).unwrap(),
        &step(&want, 1),
        1e-6,
    );
    let x4 = x.reshape((2, 5, 1, 3)).unwrap();
    close(
        "Dense on rank 4",
        &dense.apply(&x4).unwrap(),
        &want.reshape((2, 5, 1, 2)).unwrap(),
        1e-6,
    );
    // Activation: softmax rows sum to 1.
    let sm = Dense::new(3).activation("softmax");
    let p = sm.apply(&x).unwrap();
    for row in p.to_vec().chunks(3) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn a_model_may_list_a_tensor_twice_and_return_its_input() {
    let _g = shared();
    // Keras accepts `Model(inp, [h, inp, h])`: predict returns the tensor twice and the input as given (the
    // executor moves outputs out of its table, so the repeated one and the borrowed input must be copies).
    let inp = Input::new((5, 3));
    let l = LSTM::new(4);
    let h = l.call(&inp).unwrap();
    let m = Model::new(&inp, [&h, &inp, &h]).unwrap();
    set_det(&l, 280);
    let x = det(&[2, 5, 3], 15);
    for _ in 0..2 {
        let [a, b, c] = m.predict_n(&x).unwrap();
        same("the tensor listed twice", &a, &c);
        same("the model input as an output", &b, &x);
        same("the layer's own output", &a, &l.apply(&x).unwrap());
    }
    let only_input = Model::new(&inp, &inp).unwrap();
    same(
        "a model of its input alone",
        &only_input.predict(&x).unwrap(),
        &x,
    );
}

#[test]
fn a_layer_called_twice_shares_its_weights() {
    let _g = shared();
    // A Keras layer object called twice is one set of weights: counted once, equal outputs on equal inputs.
    let (a, b) = (Input::new((5, 3)), Input::new((5, 3)));
    let l = LSTM::new(4);
    let (ya, yb) = (l.call(&a).unwrap(), l.call(&b).unwrap());
    let m = Model::new([&a, &b], [&ya, &yb]).unwrap();
    assert_eq!(m.count_params(), 4 * 4 * (3 + 4 + 1)); // 128, not 256
    assert_eq!(
        m.layers()
            .iter()
            .filter(|x| x.class_name() == "LSTM")
            .count(),
        1
    );
    assert_eq!(m.get_weights().len(), 3);
    set_det(&l, 260);
    let x = det(&[2, 5, 3], 13);
    let [pa, pb] = m.predict_n([&x, &x]).unwrap();
    same("shared layer, equal inputs", &pa, &pb);
    let x2 = det(&[2, 5, 3], 14);
    let [qa, qb] = m.predict_n([&x, &x2]).unwrap();
    same("shared layer, first input", &qa, &pa);
    close(
        "shared layer, second input",
        &qb,
        &l.apply(&x2).unwrap(),
        1e-6,
    );
    differs("different inputs", &qa, &qb);
    // Clones of the handle share too, and set_weights through one is seen by the other.
    let clone: Layer = l.layer();
    assert_eq!(clone, l.layer());
    let w2 = set_det(&clone, 270);
    same("clone shares weights", &l.get_weights()[0], &w2[0]);
    // Layer::output_at gives the node of each call.
    assert_eq!(l.output_at(0).unwrap()[0], ya);
    assert_eq!(l.output_at(1).unwrap()[0], yb);
    assert!(l.output_at(2).is_err());
}

#[test]
fn encoder_decoder_layer_order_get_layer_and_inference_models() {
    let _g = shared();
    // keras-spec §3/§5: model.layers = [input_layer, input_layer_1, lstm(enc), lstm_1(dec), dense].
    let (m, enc, dec, dense) = encoder_decoder("ed");
    let layers = m.layers();
    let classes: Vec<&str> = layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        ["InputLayer", "InputLayer", "LSTM", "LSTM", "Dense"]
    );
    let names: Vec<String> = layers.iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        strs(&["ed_enc_in", "ed_dec_in", "ed_enc", "ed_dec", "ed_dense"])
    );
    assert!(layers[2] == enc && layers[3] == dec && layers[4] == dense);
    assert_eq!(m.inputs()[0].layer(), layers[0]);
    assert_eq!(m.inputs()[1].layer(), layers[1]);
    assert_eq!(m.name(), "ed_model");

    // get_layer by name; an unknown name lists the existing ones.
    assert!(m.get_layer("ed_dec").unwrap() == dec);
    assert!(m.get_layer("ed_enc_in").unwrap() == layers[0]);
    let e = err("get_layer", m.get_layer("nope"));
    has(&e, &["nope", "ed_enc", "ed_dense"]);

    // Inference models from the loaded layers share the weights (spec §5).
    set_det(&enc, 300);
    set_det(&dec, 310);
    set_det(&dense, 320);
    let enc_out = m.layers()[2].output().unwrap();
    let enc_model = Model::new(&m.inputs()[0], [&enc_out[1], &enc_out[2]]).unwrap();
    assert_eq!(enc_model.count_params(), 160);
    let (h_in, c_in) = (Input::new(4), Input::new(4));
    let [seq, h, c] = m.layers()[3]
        .call_n_with_state(&m.inputs()[1], &[&h_in, &c_in])
        .unwrap();
    let out = m.layers()[4].call(&seq).unwrap();
    let dec_model = Model::new([&m.inputs()[1], &h_in, &c_in], [&out, &h, &c]).unwrap();
    assert_eq!(dec_model.count_params(), 176 + 30);

    // Decoding one step at a time with state feedback equals the teacher-forced output (spec §5 [V]).
    let (xe, xd) = (det(&[1, 4, 5], 15), det(&[1, 3, 6], 16));
    let full = m.predict([&xe, &xd]).unwrap();
    let [mut hh, mut cc] = enc_model.predict_n(&xe).unwrap();
    for t in 0..3 {
        let [o, h2, c2] = dec_model
            .predict_n([&steps(&xd, t, t + 1), &hh, &cc])
            .unwrap();
        close(&format!("step {t}"), &step(&o, 0), &step(&full, t), 1e-6);
        hh = h2;
        cc = c2;
    }
}

// ============================================================================================================
// 3. Bad input: plain Err values naming the layer, the argument, the expected and the received value.

#[test]
fn error_wrong_rank_to_a_recurrent_layer() {
    let _g = shared();
    for kind in KINDS {
        let l = rnn(kind, 4, Opts::default());
        let name = l.name();
        let e = err("rank 2 symbolic", l.call(&Input::new(3)));
        has(&e, &[&format!("\"{name}\""), kind.class(), "sequences"]);
        exp_rec(&e, "rank 3", "(None, 3)");
        let e = err("rank 2 eager", l.apply(&Tensor::zeros((2, 3))));
        has(&e, &[&name, "sequences"]);
        exp_rec(&e, "rank 3", "(2, 3)");
        let e = err("rank 4 eager", l.apply(&Tensor::zeros((2, 3, 4, 5))));
        exp_rec(&e, "rank 3", "(2, 3, 4, 5)");
        assert!(!l.built(), "a failed call must not build the layer");
    }
}

#[test]
fn error_wrong_feature_dimension_after_build() {
    let _g = shared();
    let l = LSTM::new(4).name("feat_lstm");
    l.call(&Input::new((5, 3))).unwrap();
    let e = err("D=4 symbolic", l.call(&Input::new((5, 4))));
    has(&e, &["feat_lstm", "LSTM", "sequences"]);
    exp_rec(&e, "3)", "4)");
    let e = err("D=4 eager", l.apply(&Tensor::zeros((2, 5, 4))));
    has(&e, &["feat_lstm", "sequences"]);
    exp_rec(&e, "3)", "4)");
    // Still usable with the right dimension.
    assert_eq!(l.apply(&Tensor::zeros((2, 5, 3))).unwrap().shape(), [2, 4]);
    // Same for Dense and Bidirectional.
    let d = Dense::new(2).name("feat_dense");
    d.apply(&Tensor::zeros((2, 3))).unwrap();
    let e = err("Dense D=4", d.apply(&Tensor::zeros((2, 4))));
    has(&e, &["feat_dense", "Dense"]);
    exp_rec(&e, "3)", "4)");
    let b = Bidirectional::new(GRU::new(2)).name("feat_bi");
    b.apply(&Tensor::zeros((2, 5, 3))).unwrap();
    let e = err("Bidirectional D=4", b.apply(&Tensor::zeros((2, 5, 4))));
    has(&e, &["feat_bi", "Bidirectional"]);
    exp_rec(&e, "3)", "4)");
    // A model's input check happens first, naming the input.
    let inp = Input::named("feat_in", (5, 3));
    let m = Model::named("feat_model", &inp, LSTM::new(2).call(&inp).unwrap()).unwrap();
    let e = err("model D=4", m.predict(Tensor::zeros((2, 5, 4))));
    has(&e, &["feat_model", "feat_in"]);
    exp_rec(&e, "(None, 5, 3)", "(2, 5, 4)");
}

#[test]
fn error_units_zero() {
    let _g = shared();
    let layers: Vec<(Layer, &str)> = vec![
        (LSTM::new(0).name("zero_lstm").layer(), "LSTM"),
        (GRU::new(0).name("zero_gru").layer(), "GRU"),
        (SimpleRNN::new(0).name("zero_rnn").layer(), "SimpleRNN"),
        (Dense::new(0).name("zero_dense").layer(), "Dense"),
    ];
    for (l, class) in layers {
        let input = if class == "Dense" {
            Input::new(3)
        } else {
            Input::new((5, 3))
        };
        let e = err(class, l.call(&input));
        has(&e, &[&l.name(), class, "units"]);
        exp_rec(&e, "positive", "0");
        let eager = if class == "Dense" {
            Tensor::zeros((2, 3))
        } else {
            Tensor::zeros((2, 5, 3))
        };
        let e = err(class, l.apply_all(&eager));
        has(&e, &[&l.name(), "units"]);
    }
    let e = err(
        "Bidirectional(LSTM(0))",
        Bidirectional::new(LSTM::new(0))
            .name("zero_bi")
            .call(&Input::new((5, 3))),
    );
    has(&e, &["zero_bi", "units"]);
}

#[test]
fn error_unknown_activation_name_is_reported_at_call_with_the_known_names() {
    let _g = shared();
    // The builder never fails; the call does.
    let l = LSTM::new(4).name("act_lstm").activation("tanhh");
    let e = err("tanhh", l.call(&Input::new((5, 3))));
    has(
        &e,
        &[
            "act_lstm",
            "LSTM",
            "activation",
            "'tanhh'",
            "tanh",
            "sigmoid",
            "relu",
            "hard_sigmoid",
        ],
    );
    let e = err("tanhh eager", l.apply(&Tensor::zeros((2, 5, 3))));
    has(&e, &["act_lstm", "tanhh", "tanh"]);
    let g = GRU::new(4)
        .name("ract_gru")
        .recurrent_activation("sigmoidd");
    let e = err("sigmoidd", g.call(&Input::new((5, 3))));
    has(
        &e,
        &["ract_gru", "recurrent_activation", "sigmoidd", "sigmoid"],
    );
    let d = Dense::new(3).name("act_dense").activation("softmaxx");
    let e = err("softmaxx", d.call(&Input::new(4)));
    has(&e, &["act_dense", "activation", "softmaxx", "softmax"]);
    assert!(Activation::from_name("tanhh").is_err());
    // A Sequential reports it when the layer is added (the model is built then).
    let mut s = Sequential::named("act_seq");
    s.add_input((5, 3)).unwrap();
    let e = err(
        "Sequential add",
        s.add(SimpleRNN::new(2).name("act_rnn").activation("reluu")),
    );
    has(&e, &["act_rnn", "reluu", "relu"]);
    assert!(s.layers().is_empty());
}

#[test]
fn error_unknown_merge_mode_name() {
    let _g = shared();
    let e = err("merge mode", MergeMode::from_name("concatenate"));
    has(
        &e,
        &[
            "merge_mode",
            "'concatenate'",
            "concat",
            "sum",
            "mul",
            "ave",
            "None",
        ],
    );
    let e = err("merge mode", MergeMode::from_name("average"));
    has(&e, &["average", "ave"]);
}

#[test]
fn error_initial_state_count_and_shape() {
    let _g = shared();
    let x = Input::new((5, 3));
    let l = LSTM::new(4).name("st_lstm");
    let h = Input::new(4);
    let e = err("1 state for LSTM", l.call_with_state(&x, &[&h]));
    has(&e, &["st_lstm", "LSTM", "initial_state"]);
    exp_rec(&e, "2", "1");
    let e = err("3 states for LSTM", l.call_with_state(&x, &[&h, &h, &h]));
    exp_rec(&e, "2", "3");
    let bad = Input::new(5);
    let e = err(
        "state (None, 5) for U=4",
        l.call_with_state(&x, &[&bad, &h]),
    );
    has(&e, &["st_lstm", "initial_state[0]"]);
    exp_rec(&e, "4)", "(None, 5)");
    let e = err("state (None, 5) second", l.call_with_state(&x, &[&h, &bad]));
    has(&e, &["initial_state[1]"]);
    // Eager.
    let xe = Tensor::zeros((2, 5, 3));
    let (z, z5) = (Tensor::zeros((2, 4)), Tensor::zeros((2, 5)));
    let e = err("eager 1 state", l.apply_all_with_state(&xe, &[&z]));
    has(&e, &["st_lstm", "initial_state"]);
    exp_rec(&e, "2", "1");
    let e = err(
        "eager (2, 5) state",
        l.apply_all_with_state(&xe, &[&z, &z5]),
    );
    has(&e, &["st_lstm", "initial_state[1]"]);
    exp_rec(&e, "4)", "(2, 5)");
    let e = err(
        "eager batch 3 state",
        l.apply_all_with_state(&xe, &[&z, &Tensor::zeros((3, 4))]),
    );
    exp_rec(&e, "4)", "(3, 4)");
    // GRU takes one state.
    let g = GRU::new(4).name("st_gru");
    let e = err("2 states for GRU", g.call_with_state(&x, &[&h, &h]));
    has(&e, &["st_gru", "GRU", "initial_state"]);
    exp_rec(&e, "1", "2");
    // Bidirectional(LSTM) takes 4.
    let b = Bidirectional::new(LSTM::new(4)).name("st_bi");
    let e = err(
        "2 states for Bidirectional(LSTM)",
        b.call_with_state(&x, &[&h, &h]),
    );
    has(&e, &["st_bi", "Bidirectional", "initial_state"]);
    exp_rec(&e, "4", "2");
    let e = err(
        "eager 3 states for Bidirectional(LSTM)",
        b.apply_all_with_state(&xe, &[&z, &z, &z]),
    );
    has(&e, &["st_bi", "initial_state"]);
    exp_rec(&e, "4", "3");
    // Dense takes none.
    let e = err(
        "state to Dense",
        Dense::new(2).name("st_dense").call_with_state(&x, &[&h]),
    );
    has(&e, &["st_dense", "initial_state"]);
}

#[test]
fn error_graph_disconnected() {
    let _g = shared();
    let a = Input::named("disc_a", (5, 3));
    let b = Input::named("disc_b", (5, 3));
    let y = LSTM::new(4).name("disc_lstm").call(&b).unwrap();
    let e = err("disconnected", Model::named("disc_model", &a, &y));
    has(&e, &["graph disconnected", "disc_b", "disc_model"]);
    // One of two branches disconnected.
    let ya = LSTM::new(4).call(&a).unwrap();
    let e = err("half disconnected", Model::new(&a, [&ya, &y]));
    has(&e, &["graph disconnected", "disc_b"]);
    // The decoder's initial state coming from an input that is not a model input.
    let enc_in = Input::named("disc_enc_in", (5, 3));
    let [_, h, c] = LSTM::new(4).return_state(true).call_n(&enc_in).unwrap();
    let dec_in = Input::named("disc_dec_in", (5, 2));
    let out = LSTM::new(4).call_with_state(&dec_in, &[&h, &c]).unwrap();
    let e = err("state from outside", Model::new(&dec_in, &out));
    has(&e, &["graph disconnected", "disc_enc_in"]);
    // Both inputs: fine.
    assert!(Model::new([&enc_in, &dec_in], &out).is_ok());
    // No outputs at all.
    let none: Vec<SymbolicTensor> = vec![];
    assert!(Model::new(&a, none).is_err());
}

#[test]
fn error_wrong_number_of_destructured_outputs() {
    let _g = shared();
    let x = Input::new((5, 3));
    let l = LSTM::new(4).return_state(true).name("n_lstm");
    let e = err("call_n::<2>", l.call_n::<2>(&x));
    has(&e, &["n_lstm", "3", "2"]);
    let e = err("call on a 3-output layer", l.call(&x));
    has(&e, &["n_lstm", "3", "1"]);
    let e = err(
        "eager apply on a 3-output layer",
        l.apply(&Tensor::zeros((2, 5, 3))),
    );
    has(&e, &["n_lstm", "3"]);

    let [seq, h, c] = LSTM::new(4)
        .return_sequences(true)
        .return_state(true)
        .call_n(&x)
        .unwrap();
    let m = Model::named("three_out", &x, [&seq, &h, &c]).unwrap();
    let data = Tensor::zeros((2, 5, 3));
    let e = err("predict_n::<2>", m.predict_n::<2>(&data));
    has(&e, &["three_out", "3", "2"]);
    let e = err("predict on 3 outputs", m.predict(&data));
    has(&e, &["three_out", "3"]);
    assert_eq!(m.predict_n::<3>(&data).unwrap().len(), 3);
}

#[test]
fn error_predict_with_wrong_inputs() {
    let _g = shared();
    let (a, b) = (Input::named("two_a", (5, 3)), Input::named("two_b", (4, 2)));
    let ya = LSTM::new(2).call(&a).unwrap();
    let yb = GRU::new(2).call(&b).unwrap();
    let m = Model::named("two_in", [&a, &b], [&ya, &yb]).unwrap();
    let (xa, xb) = (Tensor::zeros((2, 5, 3)), Tensor::zeros((2, 4, 2)));
    let e = err("1 of 2 inputs", m.predict_all(&xa));
    has(&e, &["two_in", "inputs"]);
    exp_rec(&e, "2", "1");
    let e = err("3 of 2 inputs", m.predict_all([&xa, &xb, &xb]));
    exp_rec(&e, "2", "3");
    let e = err(
        "wrong shape second input",
        m.predict_all([&xa, &Tensor::zeros((2, 4, 3))]),
    );
    has(&e, &["two_in", "two_b"]);
    exp_rec(&e, "(None, 4, 2)", "(2, 4, 3)");
    let e = err(
        "wrong rank first input",
        m.predict_all([&Tensor::zeros((2, 5)), &xb]),
    );
    has(&e, &["two_a"]);
    exp_rec(&e, "(None, 5, 3)", "(2, 5)");
    let e = err("swapped inputs", m.predict_all([&xb, &xa]));
    has(&e, &["two_a"]);
    let e = err(
        "batch mismatch",
        m.predict_all([&xa, &Tensor::zeros((3, 4, 2))]),
    );
    has(&e, &["two_in", "two_b"]);
    exp_rec(&e, "2", "3");
    assert_eq!(m.predict_all([&xa, &xb]).unwrap().len(), 2);
    // Sequential: the built input shape is checked too.
    let mut s = Sequential::named("seq_wrong");
    s.add_input((5, 3)).unwrap();
    s.add(LSTM::new(2)).unwrap();
    let e = err(
        "Sequential wrong shape",
        s.predict(Tensor::zeros((2, 5, 4))),
    );
    has(&e, &["seq_wrong"]);
    exp_rec(&e, "(None, 5, 3)", "(2, 5, 4)");
}

#[test]
fn error_set_weights_wrong_count_or_shape_changes_nothing() {
    let _g = shared();
    let l = LSTM::new(4).name("sw_lstm");
    build_on(&l, 3);
    let before = set_det(&l, 400);
    let e = err("2 of 3 weights", l.set_weights(&before[..2]));
    has(&e, &["sw_lstm", "LSTM", "weights"]);
    exp_rec(&e, "3", "2");
    assert_eq!(l.get_weights(), before);
    // Right count, second shape wrong, first one different: nothing is assigned.
    let bad = vec![det(&[3, 16], 410), Tensor::zeros((3, 16)), det(&[16], 412)];
    let e = err("recurrent_kernel (3, 16)", l.set_weights(&bad));
    has(&e, &["sw_lstm", "recurrent_kernel"]);
    exp_rec(&e, "(4, 16)", "(3, 16)");
    assert_eq!(
        l.get_weights(),
        before,
        "a failed set_weights must change nothing"
    );
    let bad = vec![
        det(&[3, 16], 410),
        det(&[4, 16], 411),
        Tensor::zeros((2, 16)),
    ];
    let e = err("bias (2, 16)", l.set_weights(&bad));
    has(&e, &["bias"]);
    exp_rec(&e, "(16,)", "(2, 16)");
    assert_eq!(l.get_weights(), before);
    // GRU reset_after bias (2, 12) vs (12,).
    let g = GRU::new(4).name("sw_gru");
    build_on(&g, 3);
    let gw = g.get_weights();
    let e = err(
        "GRU bias",
        g.set_weights(&[gw[0].clone(), gw[1].clone(), Tensor::zeros(12)]),
    );
    has(&e, &["sw_gru", "bias"]);
    exp_rec(&e, "(2, 12)", "(12,)");
    assert_eq!(g.get_weights(), gw);
    // Unbuilt layer: an error, not a panic.
    let e = err(
        "unbuilt",
        LSTM::new(4).name("sw_unbuilt").set_weights(&before),
    );
    has(&e, &["sw_unbuilt"]);

    // Model: checks every layer first; the last weight wrong leaves all layers unchanged.
    let (m, _, _, _) = encoder_decoder("sw");
    let mw = m.get_weights();
    let mut new: Vec<Tensor> = mw
        .iter()
        .enumerate()
        .map(|(i, t)| det(t.shape().dims(), 420 + i))
        .collect();
    let e = err("model count", m.set_weights(&new[..7]));
    has(&e, &["sw_model", "weights"]);
    exp_rec(&e, "8", "7");
    new[7] = Tensor::zeros(5);
    let e = err("model last shape", m.set_weights(&new));
    has(&e, &["sw_dense", "bias"]);
    exp_rec(&e, "(6,)", "(5,)");
    assert_eq!(
        m.get_weights(),
        mw,
        "a failed Model::set_weights must change nothing"
    );
}

#[test]
fn error_sequential_add_of_a_return_state_layer() {
    let _g = shared();
    let mut s = Sequential::named("seq_state");
    s.add_input((5, 3)).unwrap();
    let e = err(
        "return_state in Sequential",
        s.add(LSTM::new(4).return_state(true).name("rs_lstm")),
    );
    has(&e, &["rs_lstm", "LSTM", "3"]);
    assert!(e.to_lowercase().contains("single output"), "{e}");
    assert!(
        s.layers().is_empty(),
        "the failed layer must not stay in the model"
    );
    s.add(LSTM::new(4).name("ok_lstm")).unwrap();
    assert_eq!(s.predict(Tensor::zeros((2, 5, 3))).unwrap().shape(), [2, 4]);
    let e = err(
        "GRU return_state",
        s.add(
            GRU::new(2)
                .return_sequences(true)
                .return_state(true)
                .name("rs_gru"),
        ),
    );
    has(&e, &["rs_gru", "2"]);
    assert_eq!(s.layers().len(), 1);
    // Without a declared input the error comes at the first predict.
    let mut lazy = Sequential::named("seq_lazy");
    let added = lazy.add(LSTM::new(4).return_state(true).name("rs_lazy"));
    let e = match added {
        Err(e) => e.to_string(),
        Ok(()) => err("lazy predict", lazy.predict(Tensor::zeros((2, 5, 3)))),
    };
    has(&e, &["rs_lazy"]);
}

#[test]
fn error_stateful_layer_called_with_another_batch_size() {
    let _g = shared();
    let l = LSTM::new(4).stateful(true).name("sf_lstm");
    l.apply(&Tensor::zeros((2, 5, 3))).unwrap();
    let e = err("batch 3 after 2", l.apply(&Tensor::zeros((3, 5, 3))));
    has(&e, &["sf_lstm", "LSTM", "batch"]);
    exp_rec(&e, "2", "3");
    // Still fine with the original batch.
    assert!(l.apply(&Tensor::zeros((2, 5, 3))).is_ok());
    // In a model with a static batch the input check names the shape.
    let inp = Input::with_batch_shape((2, 5, 3));
    assert_eq!(inp.shape().to_string(), "(2, 5, 3)");
    let y = GRU::new(2)
        .stateful(true)
        .name("sf_gru")
        .call(&inp)
        .unwrap();
    let m = Model::named("sf_model", &inp, &y).unwrap();
    m.predict(Tensor::zeros((2, 5, 3))).unwrap();
    let e = err("model batch 3", m.predict(Tensor::zeros((3, 5, 3))));
    has(&e, &["sf_model"]);
    exp_rec(&e, "(2, 5, 3)", "(3, 5, 3)");
}

#[test]
fn error_stateful_layer_needs_a_static_batch() {
    let _g = shared();
    // keras-spec §2.5 [V]: a stateful layer on Input(shape=...) (batch None) fails: "the batch size must be static".
    let l = LSTM::new(4).stateful(true).name("sf_static");
    let e = err("stateful on a None batch", l.call(&Input::new((5, 3))));
    has(&e, &["sf_static", "batch"]);
    assert!(e.contains("static"), "{e}");
}

#[test]
fn error_dropout_rate_out_of_range() {
    let _g = shared();
    let d = Dropout::new(1.5).name("drop15");
    let e = err("rate 1.5", d.call(&Input::new((5, 3))));
    has(&e, &["drop15", "Dropout", "rate"]);
    exp_rec(&e, "[0, 1)", "1.5");
    let e = err("rate 1.5 eager", d.apply(&Tensor::zeros((2, 3))));
    has(&e, &["drop15", "rate"]);
    exp_rec(&e, "[0, 1)", "1.5");
    let e = err(
        "rate -0.1",
        Dropout::new(-0.1).name("drop_neg").call(&Input::new(3)),
    );
    has(&e, &["drop_neg", "rate"]);
    exp_rec(&e, "[0, 1)", "-0.1");
    let mut s = Sequential::named("drop_seq");
    s.add_input(3).unwrap();
    assert!(s.add(Dropout::new(1.5)).is_err());
    assert!(Dropout::new(0.0).call(&Input::new(3)).is_ok());
}

#[test]
fn error_repeat_vector_on_a_rank_3_input() {
    let _g = shared();
    let r = RepeatVector::new(3).name("rv3");
    let e = err("rank 3 symbolic", r.call(&Input::new((5, 3))));
    has(&e, &["rv3", "RepeatVector", "inputs"]);
    exp_rec(&e, "rank 2", "(None, 5, 3)");
    let e = err("rank 3 eager", r.apply(&Tensor::zeros((2, 5, 3))));
    has(&e, &["rv3", "inputs"]);
    exp_rec(&e, "rank 2", "(2, 5, 3)");
}

#[test]
fn error_bidirectional_wrapping_a_dense() {
    let _g = shared();
    let b = Bidirectional::new(Dense::new(3).name("bi_inner_dense")).name("bi_dense");
    let e = err("Bidirectional(Dense)", b.call(&Input::new((5, 3))));
    has(&e, &["bi_dense", "Bidirectional", "Dense"]);
    // What would have been accepted:
    has(&e, &["LSTM", "GRU", "SimpleRNN"]);
    let e = err(
        "Bidirectional(Dense) eager",
        b.apply(&Tensor::zeros((2, 5, 3))),
    );
    has(&e, &["bi_dense", "Dense"]);
    let e = err(
        "Bidirectional(Dropout)",
        Bidirectional::new(Dropout::new(0.1))
            .name("bi_drop")
            .call(&Input::new((5, 3))),
    );
    has(&e, &["bi_drop", "Dropout"]);
}

#[test]
fn error_other_layers_wrong_rank() {
    let _g = shared();
    // Masking and TimeDistributed need (batch, time, ...); Dense needs a known last dimension.
    let e = err(
        "Masking rank 2",
        Masking::new(0.0).name("mask2").call(&Input::new(3)),
    );
    has(&e, &["mask2", "Masking", "inputs"]);
    exp_rec(&e, "rank >= 3", "(None, 3)");
    let e = err(
        "TimeDistributed rank 2",
        TimeDistributed::new(Dense::new(2))
            .name("td2")
            .call(&Input::new(3)),
    );
    has(&e, &["td2", "TimeDistributed", "inputs"]);
    exp_rec(&e, "rank >= 3", "(None, 3)");
    let e = err(
        "Dense unknown last dim",
        Dense::new(2)
            .name("dense_none")
            .call(&Input::new((3, None))),
    );
    has(&e, &["dense_none", "Dense", "inputs"]);
    exp_rec(&e, "known last dimension", "(None, 3, None)");
    let e = err(
        "LSTM unknown features",
        LSTM::new(2).name("lstm_none").call(&Input::new((3, None))),
    );
    has(&e, &["lstm_none", "sequences"]);
    exp_rec(&e, "known last dimension", "(None, 3, None)");
}

// ============================================================================================================
// 4. Printing

#[test]
fn tensor_display_and_debug_are_numpy_str_and_repr() {
    let _g = shared();
    // Expected strings printed by numpy 2.4.6: for each case, str(a) and repr(a) of a float32 array.
    //   python3 -c 'import numpy as np; a=np.array(..., dtype=np.float32); print(repr(str(a))); print(repr(repr(a)))'
    let t = |shape: &[usize], v: &[f32]| Tensor::new(shape.to_vec(), v.to_vec()).unwrap();
    let cases: Vec<(Tensor, &str, &str)> = vec![
        // np.array([[0.02480672]])
        (t(&[1, 1], &[0.02480672]), "[[0.02480672]]", "array([[0.02480672]], dtype=float32)"),
        // np.array([0.00767819, 0.01597687, 0.02480672]).reshape(1,3,1)
        (
            t(&[1, 3, 1], &[0.00767819, 0.01597687, 0.02480672]),
            "[[[0.00767819]\n  [0.01597687]\n  [0.02480672]]]",
            "array([[[0.00767819],\n        [0.01597687],\n        [0.02480672]]], dtype=float32)",
        ),
        // np.array([1., 2.])
        (t(&[2], &[1.0, 2.0]), "[1. 2.]", "array([1., 2.], dtype=float32)"),
        // np.array([-0.5, 1.])
        (t(&[2], &[-0.5, 1.0]), "[-0.5  1. ]", "array([-0.5,  1. ], dtype=float32)"),
        // np.array([1e-5, 1.])
        (t(&[2], &[1e-5, 1.0]), "[1.e-05 1.e+00]", "array([1.e-05, 1.e+00], dtype=float32)"),
        // np.array([1,2,3,4]).reshape(1,2,2)
        (t(&[1, 2, 2], &[1., 2., 3., 4.]), "[[[1. 2.]\n  [3. 4.]]]", "array([[[1., 2.],\n        [3., 4.]]], dtype=float32)"),
        // np.array([0.1,0.2,0.3,0.1,0.2,0.3]).reshape(1,3,2)
        (
            t(&[1, 3, 2], &[0.1, 0.2, 0.3, 0.1, 0.2, 0.3]),
            "[[[0.1 0.2]\n  [0.3 0.1]\n  [0.2 0.3]]]",
            "array([[[0.1, 0.2],\n        [0.3, 0.1],\n        [0.2, 0.3]]], dtype=float32)",
        ),
        // np.array([[1,2]]).repeat(3,0)[None]  (the RepeatVector example)
        (
            t(&[1, 3, 2], &[1., 2., 1., 2., 1., 2.]),
            "[[[1. 2.]\n  [1. 2.]\n  [1. 2.]]]",
            "array([[[1., 2.],\n        [1., 2.],\n        [1., 2.]]], dtype=float32)",
        ),
        // np.array([123456789., 1.])
        (t(&[2], &[123456789.0, 1.0]), "[1.2345679e+08 1.0000000e+00]", "array([1.2345679e+08, 1.0000000e+00], dtype=float32)"),
        // np.array([np.nan, np.inf, -np.inf, 0.])
        (t(&[4], &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0]), "[ nan  inf -inf   0.]", "array([ nan,  inf, -inf,   0.], dtype=float32)"),
        // np.array(3.5)  (rank 0)
        (t(&[], &[3.5]), "3.5", "array(3.5, dtype=float32)"),
        // np.zeros((2, 0))
        (t(&[2, 0], &[]), "[]", "array([], shape=(2, 0), dtype=float32)"),
        // np.arange(2000, dtype=np.float32): summarized with "..." (numpy >= 2.2 adds shape= to the repr).
        (
            Tensor::from_vec((0..2000).map(|v| v as f32).collect()),
            "[0.000e+00 1.000e+00 2.000e+00 ... 1.997e+03 1.998e+03 1.999e+03]",
            "array([0.000e+00, 1.000e+00, 2.000e+00, ..., 1.997e+03, 1.998e+03,\n       1.999e+03], shape=(2000,), dtype=float32)",
        ),
    ];
    for (tensor, want_str, want_repr) in cases {
        assert_eq!(
            format!("{tensor}"),
            want_str,
            "Display (numpy str) of {:?}",
            tensor.to_vec().iter().take(4).collect::<Vec<_>>()
        );
        assert_eq!(format!("{tensor:?}"), want_repr, "Debug (numpy repr)");
    }
}

#[test]
fn a_vec_of_tensors_debug_prints_like_a_python_list_of_arrays() {
    let _g = shared();
    // numpy: repr([s, h, c]) with s = np.array([0.00767819,0.01597687,0.02480672],np.float32).reshape(1,3,1),
    // h = np.array([[0.02480672]],np.float32), c = np.array([[0.04864851]],np.float32)
    let want =
        "[array([[[0.00767819],\n        [0.01597687],\n        [0.02480672]]], dtype=float32), \
                array([[0.02480672]], dtype=float32), array([[0.04864851]], dtype=float32)]";
    let v = vec![
        Tensor::new((1, 3, 1), vec![0.00767819, 0.01597687, 0.02480672]).unwrap(),
        Tensor::new((1, 1), vec![0.02480672]).unwrap(),
        Tensor::new((1, 1), vec![0.04864851]).unwrap(),
    ];
    assert_eq!(format!("{v:?}"), want);
    // The tutorial model (spec §1.6: Keras 2 hard_sigmoid, forget bias 1) prints exactly what the notebook showed.
    let inputs = Input::new((3, 2));
    let [seq, h, c] = LSTM::new(1)
        .return_sequences(true)
        .return_state(true)
        .kernel_initializer(Initializer::Constant(0.1))
        .recurrent_initializer(Initializer::Constant(0.1))
        .bias_initializer(Initializer::Constant(0.0))
        .recurrent_activation_fn(Activation::HardSigmoidKeras2)
        .call_n(&inputs)
        .unwrap();
    let m = Model::new(&inputs, [&seq, &h, &c]).unwrap();
    let data = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
        .reshape((1, 3, 2))
        .unwrap();
    assert_eq!(format!("{:?}", m.predict_all(&data).unwrap()), want);
}

#[test]
fn shapes_print_as_python_tuples() {
    let _g = shared();
    assert_eq!(Tensor::zeros((1, 3, 1)).shape().to_string(), "(1, 3, 1)");
    assert_eq!(
        format!("{:?}", Tensor::zeros((1, 3, 1)).shape()),
        "(1, 3, 1)"
    );
    assert_eq!(Tensor::zeros(4).shape().to_string(), "(4,)");
    assert_eq!(Shape(vec![]).to_string(), "()");
    assert_eq!(Input::new((3, 1)).shape().to_string(), "(None, 3, 1)");
    assert_eq!(format!("{:?}", Input::new((3, 1)).shape()), "(None, 3, 1)");
    assert_eq!(Input::new((None, 5)).shape().to_string(), "(None, None, 5)");
    assert_eq!(Input::new(4).shape().to_string(), "(None, 4)");
    let [_, h, _] = LSTM::new(1)
        .return_state(true)
        .call_n(&Input::new((3, 1)))
        .unwrap();
    assert_eq!(h.shape().to_string(), "(None, 1)");
}

/// keras-spec §4.1, Sequential at the piped width 76.
const KERAS3_SEQUENTIAL_155: &[&str] = &[
    "Model: \"sequential\"",
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
    "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
    "│ lstm_1 (LSTM)                   │ (None, 3, 4)           │            96 │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ lstm_2 (LSTM)                   │ (None, 2)              │            56 │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ dense (Dense)                   │ (None, 1)              │             3 │",
    "└─────────────────────────────────┴────────────────────────┴───────────────┘",
    " Total params: 155 (620.00 B)",
    " Trainable params: 155 (620.00 B)",
    " Non-trainable params: 0 (0.00 B)",
];

/// keras-spec §4.1, Functional LSTM(1, return_state=True) at width 88.
const KERAS3_FUNCTIONAL_88: &[&str] = &[
    "Model: \"functional\"",
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓",
    "┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩",
    "│ input_layer (InputLayer)             │ (None, 3, 1)                │               0 │",
    "├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤",
    "│ lstm (LSTM)                          │ [(None, 1), (None, 1),      │              12 │",
    "│                                      │ (None, 1)]                  │                 │",
    "└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘",
    " Total params: 12 (48.00 B)",
    " Trainable params: 12 (48.00 B)",
    " Non-trainable params: 0 (0.00 B)",
];

/// keras-spec §4.2, tf.keras 2.8 functional.
const TF2_FUNCTIONAL: &[&str] = &[
    "Model: \"model\"",
    "_________________________________________________________________",
    " Layer (type)                Output Shape              Param #   ",
    "=================================================================",
    " input_1 (InputLayer)        [(None, 3, 1)]            0         ",
    "                                                                 ",
    " lstm (LSTM)                 [(None, 1),               12        ",
    "                              (None, 1),                         ",
    "                              (None, 1)]                         ",
    "                                                                 ",
    "=================================================================",
    "Total params: 12",
    "Trainable params: 12",
    "Non-trainable params: 0",
    "_________________________________________________________________",
];

/// keras-spec §4.2, tf.keras 2.8 Sequential (fresh-session names).
const TF2_SEQUENTIAL_155: &[&str] = &[
    "Model: \"sequential\"",
    "_________________________________________________________________",
    " Layer (type)                Output Shape              Param #   ",
    "=================================================================",
    " lstm (LSTM)                 (None, 3, 4)              96        ",
    "                                                                 ",
    " lstm_1 (LSTM)               (None, 2)                 56        ",
    "                                                                 ",
    " dense (Dense)               (None, 1)                 3         ",
    "                                                                 ",
    "=================================================================",
    "Total params: 155",
    "Trainable params: 155",
    "Non-trainable params: 0",
    "_________________________________________________________________",
];

/// Compares line by line first, for a readable failure.
fn assert_text(what: &str, got: &str, want_lines: &[&str]) {
    let want = want_lines.join("\n");
    if got != want {
        let g: Vec<&str> = got.lines().collect();
        for (i, w) in want_lines.iter().enumerate() {
            assert_eq!(
                g.get(i).copied(),
                Some(*w),
                "{what}: line {i} differs\n--- got ---\n{got}\n--- want ---\n{want}"
            );
        }
        assert_eq!(got, want, "{what}");
    }
}

fn sequential_155(names: [&str; 3], model_name: Option<&str>) -> Sequential {
    let mut s = match model_name {
        Some(n) => Sequential::named(n),
        None => Sequential::new(),
    };
    s.add_input((3, 1)).unwrap();
    let (mut a, mut b, mut c) = (
        LSTM::new(4).return_sequences(true),
        LSTM::new(2),
        Dense::new(1),
    );
    if !names[0].is_empty() {
        a = a.name(names[0]);
        b = b.name(names[1]);
        c = c.name(names[2]);
    }
    s.add(a).unwrap();
    s.add(b).unwrap();
    s.add(c).unwrap();
    s
}

#[test]
fn summary_keras3_sequential_matches_the_spec_table() {
    let _g = shared();
    let s = sequential_155(["lstm_1", "lstm_2", "dense"], Some("sequential"));
    assert_text(
        "Sequential summary",
        &s.summary().to_string(),
        KERAS3_SEQUENTIAL_155,
    );
    assert_text(
        "Sequential summary (Model)",
        &s.to_model().unwrap().summary().to_string(),
        KERAS3_SEQUENTIAL_155,
    );
    assert_eq!(s.summary().total_params(), 155);
}

#[test]
fn summary_keras3_functional_at_width_88_matches_the_spec_table() {
    let _g = shared();
    let inp = Input::named("input_layer", (3, 1));
    let outs = LSTM::new(1)
        .return_state(true)
        .name("lstm")
        .call_all(&inp)
        .unwrap();
    let m = Model::named("functional", &inp, &outs).unwrap();
    assert_text(
        "functional summary width 88",
        &m.summary().line_length(88).to_string(),
        KERAS3_FUNCTIONAL_88,
    );
}

#[test]
fn summary_tf2_functional_matches_the_spec_table() {
    let _g = shared();
    let inp = Input::named("input_1", (3, 1));
    let [o, h, c] = LSTM::new(1)
        .return_state(true)
        .name("lstm")
        .call_n(&inp)
        .unwrap();
    let m = Model::named("model", &inp, [&o, &h, &c]).unwrap();
    assert_text(
        "tf2 functional summary",
        &m.summary_with(SummaryStyle::Tf2).to_string(),
        TF2_FUNCTIONAL,
    );
    assert_eq!(m.count_params(), 12);
}

// ============================================================================================================
// Automatic names: the only test that resets and asserts the global counters (exclusive lock).

#[test]
fn automatic_names_follow_keras_global_counters() {
    let _g = exclusive();
    let mut problems: Vec<String> = Vec::new();
    let mut check = |what: &str, got: Vec<String>, want: &[&str]| {
        if got != strs(want) {
            problems.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };

    // keras-spec §3: per-class global counters lstm, lstm_1, ...; clear_session() restarts them.
    clear_session();
    let (a, b) = (LSTM::new(2), LSTM::new(2));
    check("two LSTMs", vec![nm(&a), nm(&b)], &["lstm", "lstm_1"]);
    let others = vec![
        nm(&GRU::new(1)),
        nm(&SimpleRNN::new(1)),
        nm(&Dense::new(1)),
        nm(&GRU::new(1)),
        nm(&Dense::new(1)),
    ];
    check(
        "other classes",
        others,
        &["gru", "simple_rnn", "dense", "gru_1", "dense_1"],
    );
    check(
        "weightless and wrappers",
        vec![
            nm(&Dropout::new(0.1)),
            nm(&Flatten::new()),
            nm(&RepeatVector::new(2)),
            nm(&Masking::new(0.0)),
            nm(&TimeDistributed::new(Dense::new(1).name("td_inner"))),
        ],
        &[
            "dropout",
            "flatten",
            "repeat_vector",
            "masking",
            "time_distributed",
        ],
    );
    clear_session();
    check(
        "after clear_session",
        vec![nm(&LSTM::new(2)), nm(&LSTM::new(2))],
        &["lstm", "lstm_1"],
    );

    // keras-spec §3: the encoder-decoder's model.layers are [input_layer, input_layer_1, lstm, lstm_1, dense].
    clear_session();
    let enc_in = Input::new((None, 5));
    let [_, h, c] = LSTM::new(4).return_state(true).call_n(&enc_in).unwrap();
    let dec_in = Input::new((None, 6));
    let [seq, _, _] = LSTM::new(4)
        .return_sequences(true)
        .return_state(true)
        .call_n_with_state(&dec_in, &[&h, &c])
        .unwrap();
    let out = Dense::new(6).activation("softmax").call(&seq).unwrap();
    let m = Model::new([&enc_in, &dec_in], &out).unwrap();
    check(
        "encoder-decoder layers",
        m.layers().iter().map(|l| l.name()).collect(),
        &["input_layer", "input_layer_1", "lstm", "lstm_1", "dense"],
    );
    check(
        "encoder input is input_layer",
        vec![enc_in.layer().name(), dec_in.layer().name()],
        &["input_layer", "input_layer_1"],
    );
    check("model name", vec![m.name().to_string()], &["functional"]);
    let m2 = Model::new(&enc_in, &h).unwrap();
    check(
        "second model name",
        vec![m2.name().to_string()],
        &["functional_1"],
    );
    check(
        "keras_history",
        vec![format!("{:?}", seq.keras_history())],
        &["(\"lstm_1\", 0, 0)"],
    );

    // keras-spec §4.2: a fresh session's Sequential 155 is `sequential` with lstm, lstm_1, dense.
    clear_session();
    let s = sequential_155(["", "", ""], None);
    check(
        "Sequential name",
        vec![s.name().to_string()],
        &["sequential"],
    );
    check(
        "Sequential layers",
        s.layers().iter().map(|l| l.name()).collect(),
        &["lstm", "lstm_1", "dense"],
    );
    check(
        "Sequential tf2 summary",
        vec![s.summary_with(SummaryStyle::Tf2).to_string()],
        &[TF2_SEQUENTIAL_155.join("\n").as_str()],
    );
    check(
        "second Sequential",
        vec![Sequential::new().name().to_string()],
        &["sequential_1"],
    );

    // Bidirectional: `bidirectional`, with copies forward_<name> / backward_<name> (spec §2.3).
    clear_session();
    let bi = Bidirectional::new(LSTM::new(2));
    bi.apply(&Tensor::zeros((1, 3, 2))).unwrap();
    check("Bidirectional name", vec![nm(&bi)], &["bidirectional"]);
    let prefixes: Vec<String> = bi
        .weight_names()
        .iter()
        .map(|n| n.split('/').next().unwrap_or("").to_string())
        .collect();
    check(
        "Bidirectional copies",
        prefixes,
        &[
            "forward_lstm",
            "forward_lstm",
            "forward_lstm",
            "backward_lstm",
            "backward_lstm",
            "backward_lstm",
        ],
    );

    // Keras names a layer when it is constructed: creating a, b and asking b first still gives b = lstm_1.
    clear_session();
    let (first, second) = (LSTM::new(2), LSTM::new(2));
    let second_name = nm(&second);
    check(
        "names at construction",
        vec![nm(&first), second_name],
        &["lstm", "lstm_1"],
    );

    clear_session();
    assert!(
        problems.is_empty(),
        "automatic names differ from Keras:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn set_weights_accepts_arrays_in_any_memory_layout() {
    use rnnlab::ndarray::ShapeBuilder;
    let _g = shared();
    // A transposed (Fortran-ordered) kernel must give the same numbers as its C-ordered copy.
    let lstm = LSTM::new(2);
    let x = Tensor::full((1, 3, 3), 0.3);
    lstm.apply(&x).unwrap();
    let w = lstm.get_weights();
    let k_t: rnnlab::ndarray::ArrayD<f32> = w[0].t().to_owned().t().to_owned(); // same values, F order
    let y0 = lstm.apply(&x).unwrap();
    lstm.set_weights(&[Tensor(k_t), w[1].clone(), w[2].clone()])
        .unwrap();
    assert_eq!(lstm.apply(&x).unwrap(), y0);
    // The recurrent kernel is read as a row-major slice in the time loop: give it in Fortran order.
    let mut rf = rnnlab::ndarray::Array2::<f32>::zeros((2, 8).f());
    rf.assign(
        &w[1]
            .view()
            .into_dimensionality::<rnnlab::ndarray::Ix2>()
            .unwrap(),
    );
    assert!(
        rf.as_slice().is_none(),
        "the test needs a non-C-order array"
    );
    lstm.set_weights(&[w[0].clone(), Tensor(rf.into_dyn()), w[2].clone()])
        .unwrap();
    assert_eq!(lstm.apply(&x).unwrap(), y0);
}

/// A batch of 8 or more is projected one step at a time (LSTM and SimpleRNN with large enough weights: straight
/// into the gates), a smaller one several steps per sample into a buffer; samples never interact, so each
/// sample's outputs must be the same bits either way. LSTM(260) has more recurrent terms than one fused block
/// (256), where the gates keep their separate buffer.
#[test]
fn the_projection_path_chosen_by_batch_size_changes_no_bits() {
    let _g = shared();
    let x = common::lcg_tensor(&[9, 6, 20], 7);
    let layers: Vec<Layer> = vec![
        LSTM::new(64)
            .return_sequences(true)
            .return_state(true)
            .into(),
        LSTM::new(260)
            .return_sequences(true)
            .return_state(true)
            .into(),
        SimpleRNN::new(128)
            .return_sequences(true)
            .return_state(true)
            .into(),
        GRU::new(64)
            .return_sequences(true)
            .return_state(true)
            .into(),
    ];
    for layer in layers {
        let inp = Input::new((6, 20));
        let outs = layer.call_all(&inp).unwrap();
        let model = Model::new(&inp, &outs).unwrap();
        let batch = model.predict_all(&x).unwrap();
        for i in 0..9 {
            let xi = Tensor(x.0.slice(s![i..i + 1, .., ..]).to_owned().into_dyn());
            let alone = model.predict_all(&xi).unwrap();
            for (k, (b, a)) in batch.iter().zip(&alone).enumerate() {
                let (b, a) = (b.0.index_axis(Axis(0), i), a.0.index_axis(Axis(0), 0));
                assert!(
                    b.iter()
                        .zip(a.iter())
                        .all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{} output {k}, sample {i}: batch of 9 and alone differ",
                    layer.class_name()
                );
            }
        }
    }
}

/// Every recurrent layer alternates, step by step and from one call to the next, the order in which it visits the
/// columns of its packed `h R`, and an LSTM that projects into its gates also the order of its two products (so that
/// each step starts on the weights still in cache); the bits must not move. A stateful layer fed one step per call
/// (batch 1: the small-batch kernels; batch 9: the blocked ones) is compared with one call on the whole sequence,
/// which projects its batch-1 input several steps at a time into a buffer. With 300 features `x K` is two fused
/// chains, where the order of the LSTM's products must stay fixed.
/// Makes a recurrent layer, stateful or not.
type MakeLayer = fn(bool) -> Layer;

#[test]
fn one_step_calls_equal_one_sequence_call_bit_for_bit() {
    let _g = shared();
    let (steps_n, units) = (5, 96);
    // Every cell kind visits its packed `h R` in both directions (GRU without reset_after: two products).
    let kinds: [(&str, MakeLayer); 4] = [
        ("LSTM", |st| {
            LSTM::new(96).return_sequences(!st).stateful(st).into()
        }),
        ("GRU", |st| {
            GRU::new(96).return_sequences(!st).stateful(st).into()
        }),
        ("GRU reset_after=false", |st| {
            GRU::new(96)
                .reset_after(false)
                .return_sequences(!st)
                .stateful(st)
                .into()
        }),
        ("SimpleRNN", |st| {
            SimpleRNN::new(96).return_sequences(!st).stateful(st).into()
        }),
    ];
    for (kind, make) in kinds {
        for (batch, features) in [(1, 20), (1, 300), (9, 20), (9, 300)] {
            let x = common::lcg_tensor(&[batch, steps_n, features], 11);
            let whole = make(false);
            build_on(&whole, features);
            let w = set_det(&whole, 40);
            let want = whole.apply(&x).unwrap();
            let inp = Input::with_batch_shape((batch, 1, features));
            let one = make(true);
            let model = Model::new(&inp, one.call(&inp).unwrap()).unwrap();
            one.set_weights(&w).unwrap();
            assert_eq!(w[1].shape().dims()[0], units);
            for t in 0..steps_n {
                let got = model.predict(steps(&x, t, t + 1)).unwrap();
                let want_t = want.0.index_axis(Axis(1), t);
                assert!(
                    got.0.iter().zip(want_t.iter()).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{kind}, batch {batch}, {features} features, step {t}: one-step call differs from the sequence call"
                );
            }
        }
    }
}

#[test]
fn splitting_the_batch_over_threads_gives_identical_bits() {
    // set_num_threads is process-wide; other tests running meanwhile are unaffected in their results because the
    // split is exact, which is what this test checks.
    let mk = common::lcg_tensor;
    let mut x = mk(&[9, 40, 16], 1).to_vec();
    for t in 30..40 {
        for f in 0..16 {
            x[(2 * 40 + t) * 16 + f] = 0.0; // a padded sample for the mask
        }
    }
    let x = Tensor::new(vec![9, 40, 16], x).unwrap();
    let layers: Vec<Layer> = vec![
        LSTM::new(64)
            .return_sequences(true)
            .return_state(true)
            .into(),
        GRU::new(64).return_state(true).go_backwards(true).into(),
        GRU::new(64)
            .reset_after(false)
            .return_sequences(true)
            .into(),
        SimpleRNN::new(64).return_state(true).into(),
    ];
    for layer in layers {
        let inp = Input::new((40, 16));
        let m = Masking::new(0.0).call(&inp).unwrap();
        let outs = layer.call_all(&m).unwrap();
        let model = Model::new(&inp, &outs).unwrap();
        rnnlab::set_num_threads(1);
        let one = model.predict_all(&x).unwrap();
        rnnlab::set_num_threads(3);
        let three = model.predict_all(&x).unwrap();
        rnnlab::set_num_threads(1);
        assert_eq!(one, three, "{}: threads change nothing", layer.class_name());
    }
    // With an initial state, through the eager call.
    let lstm = LSTM::new(64).return_state(true);
    let (h, c) = (mk(&[9, 64], 2), mk(&[9, 64], 3));
    rnnlab::set_num_threads(1);
    let one = lstm.apply_all_with_state(&x, &[&h, &c]).unwrap();
    rnnlab::set_num_threads(2);
    let two = lstm.apply_all_with_state(&x, &[&h, &c]).unwrap();
    rnnlab::set_num_threads(1);
    assert_eq!(one, two);
}
