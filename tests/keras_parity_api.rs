//! Parity with Keras through the public API (issue: rnnlab core).
//!
//! Every case in `tests/fixtures/keras-cases` was produced by real Keras 3.15.1 (TensorFlow 2.21 CPU), see the
//! folder's README.md: `weight_K.npy` is Keras' `model.get_weights()`, `input_K.npy` the inputs and
//! `output_K.npy` what `model.predict` returned. Each model is rebuilt here by hand with the rnnlab API (not
//! loaded from `model.keras`: that is the loader's test), given Keras' weights with `set_weights`, and must give
//! Keras' outputs within atol 1e-5, rtol 1e-4. `params` and the weight shapes must match `case.json` too.
//! A case in `index.json` without a builder here fails the test, so no case can be skipped silently.

// Reference values are written with the digits Keras (or the tutorial) printed, more than float32 keeps.
#![allow(clippy::excessive_precision)]

mod common;

use common::{assert_close, case_json, case_names, npy_list};
use rnnlab::prelude::*;
use rnnlab::Result;

/// A model under test: a Functional model or a Sequential one.
enum Built {
    F(Model),
    S(Sequential),
}

impl Built {
    fn predict_all(&self, x: &[Tensor]) -> Result<Vec<Tensor>> {
        match self {
            Built::F(m) => m.predict_all(x),
            Built::S(s) => s.predict_all(x),
        }
    }
    fn set_weights(&self, w: &[Tensor]) -> Result<()> {
        match self {
            Built::F(m) => m.set_weights(w),
            Built::S(s) => s.set_weights(w),
        }
    }
    fn get_weights(&self) -> Vec<Tensor> {
        match self {
            Built::F(m) => m.get_weights(),
            Built::S(s) => s.get_weights(),
        }
    }
    fn count_params(&self) -> usize {
        match self {
            Built::F(m) => m.count_params(),
            Built::S(s) => s.count_params(),
        }
    }
}

/// The recurrent layer a case name starts with, 4 units as in every fixture.
fn rnn_layer(kind: &str) -> Layer {
    match kind {
        "lstm" => LSTM::new(4).into(),
        "gru" => GRU::new(4).into(),
        "gru_v1" => GRU::new(4).reset_after(false).into(),
        "simplernn" => SimpleRNN::new(4).into(),
        _ => panic!("unknown kind {kind}"),
    }
}

/// Applies return_sequences / return_state / go_backwards / use_bias / activations to a fresh layer of `kind`.
fn rnn(kind: &str, rs: bool, st: bool, back: bool, bias: bool, relu_hard: bool) -> Layer {
    macro_rules! cfg {
        ($l:expr) => {{
            let l = $l
                .return_sequences(rs)
                .return_state(st)
                .go_backwards(back)
                .use_bias(bias);
            if relu_hard {
                l.activation("relu").into()
            } else {
                l.into()
            }
        }};
    }
    match kind {
        "lstm" => {
            let l = LSTM::new(4);
            let l = if relu_hard {
                l.recurrent_activation("hard_sigmoid")
            } else {
                l
            };
            cfg!(l)
        }
        "gru" | "gru_v1" => {
            let l = GRU::new(4).reset_after(kind == "gru");
            let l = if relu_hard {
                l.recurrent_activation("hard_sigmoid")
            } else {
                l
            };
            cfg!(l)
        }
        "simplernn" => cfg!(SimpleRNN::new(4)),
        _ => {
            let _ = rnn_layer(kind);
            unreachable!()
        }
    }
}

fn single(x: &SymbolicTensor, layer: &Layer) -> Result<Model> {
    let outs = layer.call_all(x)?;
    Model::new(x, outs)
}

/// Builds the model of one case by hand, following the case's description in the fixtures' README/case.json.
fn build(case: &str) -> Result<Built> {
    let x = || Input::new((5, 3));
    // {lstm,gru,gru_v1,simplernn}_{seqN_stateM | go_backwards | nobias | relu_hardsigmoid}
    for kind in ["gru_v1", "lstm", "gru", "simplernn"] {
        let Some(rest) = case.strip_prefix(&format!("{kind}_")) else {
            continue;
        };
        let (rs, st, back, bias, relu) = match rest {
            "seq0_state0" => (false, false, false, true, false),
            "seq0_state1" => (false, true, false, true, false),
            "seq1_state0" => (true, false, false, true, false),
            "seq1_state1" => (true, true, false, true, false),
            "go_backwards" => (true, true, true, true, false),
            "nobias" => (true, false, false, false, false),
            // The fixtures: LSTM returns the sequence, GRU the last output and its state.
            "relu_hardsigmoid" if kind == "lstm" => (true, false, false, true, true),
            "relu_hardsigmoid" => (false, true, false, true, true),
            _ => continue,
        };
        return Ok(Built::F(single(
            &x(),
            &rnn(kind, rs, st, back, bias, relu),
        )?));
    }
    if let Some(rest) = case.strip_prefix("bidirectional_") {
        let (kind, mode) = rest.split_once('_').expect("bidirectional_<kind>_<mode>");
        let inner = rnn(kind, true, true, false, true, false);
        let mode = MergeMode::from_name(mode)?;
        let bi = Bidirectional::new(inner).merge_mode(mode);
        return Ok(Built::F(single(&x(), &bi)?));
    }
    Ok(match case {
        "encoder_decoder_lstm_initial_state" => {
            let enc_in = Input::new((5, 3));
            let dec_in = Input::new((3, 4));
            let [_, h, c] = LSTM::new(4).return_state(true).call_n(&enc_in)?;
            let [seq, h2, c2] = LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .call_n_with_state(&dec_in, &[&h, &c])?;
            let y = Dense::new(4).activation("softmax").call(&seq)?;
            Built::F(Model::new([&enc_in, &dec_in], [&y, &h2, &c2])?)
        }
        "encoder_decoder_gru_initial_state" => {
            let enc_in = Input::new((5, 3));
            let dec_in = Input::new((5, 3));
            let [_, h] = GRU::new(4).return_state(true).call_n(&enc_in)?;
            let seq = GRU::new(4)
                .return_sequences(true)
                .call_with_state(&dec_in, &[&h])?;
            Built::F(Model::new([&enc_in, &dec_in], &seq)?)
        }
        "flatten_dense" => {
            let i = x();
            let y = Dense::new(4)
                .activation("tanh")
                .call(&Flatten::new().call(&i)?)?;
            Built::F(Model::new(&i, &y)?)
        }
        "masking_lstm" => {
            let i = x();
            let m = Masking::new(0.0).call(&i)?;
            let outs = LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .call_all(&m)?;
            Built::F(Model::new(&i, outs)?)
        }
        "repeatvector_autoencoder" => {
            let i = x();
            let h = LSTM::new(4).call(&i)?;
            let r = RepeatVector::new(4).call(&h)?;
            let s = LSTM::new(4).return_sequences(true).call(&r)?;
            let y = TimeDistributed::new(Dense::new(3)).call(&s)?;
            Built::F(Model::new(&i, &y)?)
        }
        "sequential_gru_timedistributed_softmax" => {
            let mut m = Sequential::new();
            m.add_input((5, 3))?;
            m.add(GRU::new(4).return_sequences(true))?;
            m.add(Dropout::new(0.5))?;
            m.add(TimeDistributed::new(Dense::new(2).activation("softmax")))?;
            Built::S(m)
        }
        "sequential_stacked_lstm_dense" => {
            let mut m = Sequential::new();
            m.add_input((5, 3))?;
            m.add(LSTM::new(4).return_sequences(true))?;
            m.add(LSTM::new(2))?;
            m.add(Dense::new(1))?;
            Built::S(m)
        }
        "tutorial_constant_lstm" => {
            let i = Input::new((3, 2));
            let outs = LSTM::new(1)
                .return_sequences(true)
                .return_state(true)
                .call_all(&i)?;
            Built::F(Model::new(&i, outs)?)
        }
        other => {
            panic!("no builder for case {other}: add one (every fixture case must be checked)")
        }
    })
}

#[test]
fn every_keras_case_is_reproduced_through_the_api() {
    let names = case_names();
    assert_eq!(names.len(), 44, "the fixture set has 44 cases");
    let mut failures = Vec::new();
    for case in &names {
        let meta = case_json(case);
        let model = build(case).unwrap_or_else(|e| panic!("{case}: building failed: {e}"));
        let weights = npy_list(case, "weight");
        let inputs = npy_list(case, "input");
        let expected = npy_list(case, "output");
        assert!(
            !inputs.is_empty() && !expected.is_empty(),
            "{case}: fixture files missing"
        );

        // Weight layout: the same shapes, in the same order, as Keras' get_weights().
        let shapes: Vec<Vec<usize>> = model.get_weights().iter().map(|w| w.shape().0).collect();
        let want: Vec<Vec<usize>> =
            serde_json::from_value(meta["weights"].clone()).expect("weights");
        assert_eq!(shapes, want, "{case}: weight shapes/order");
        assert_eq!(
            model.count_params() as u64,
            meta["params"].as_u64().expect("params"),
            "{case}: params"
        );

        model
            .set_weights(&weights)
            .unwrap_or_else(|e| panic!("{case}: set_weights: {e}"));
        let got = model
            .predict_all(&inputs)
            .unwrap_or_else(|e| panic!("{case}: predict: {e}"));
        assert_eq!(got.len(), expected.len(), "{case}: number of outputs");
        for (k, (g, w)) in got.iter().zip(&expected).enumerate() {
            if !(g.shape() == w.shape() && g.allclose(w, 1e-4, 1e-5)) {
                failures.push(format!(
                    "{case} output_{k}: shape {} vs {}, max diff {}",
                    g.shape(),
                    w.shape(),
                    g.max_abs_diff(w)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} output(s) differ from Keras:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn tutorial_constant_case_matches_keras_from_initializers_alone() {
    // The `tutorial_constant_lstm` fixture kept its constant initializers (README of the fixtures): Keras 3.15 built
    // LSTM(1) with kernel/recurrent Constant(0.1), bias Constant(0) (+1 forget bias), default sigmoid gates.
    // Here the weights come from rnnlab's own initializers, not from set_weights.
    let i = Input::new((3, 2));
    let outs = LSTM::new(1)
        .return_sequences(true)
        .return_state(true)
        .kernel_initializer(Initializer::Constant(0.1))
        .recurrent_initializer(Initializer::Constant(0.1))
        .bias_initializer(Initializer::Constant(0.0))
        .call_all(&i)
        .unwrap();
    let model = Model::new(&i, outs).unwrap();
    let want_w = npy_list("tutorial_constant_lstm", "weight");
    for (k, (g, w)) in model.get_weights().iter().zip(&want_w).enumerate() {
        assert_close(&format!("initial weight {k}"), g, w);
    }
    let got = model
        .predict_all(npy_list("tutorial_constant_lstm", "input"))
        .unwrap();
    for (k, (g, w)) in got
        .iter()
        .zip(&npy_list("tutorial_constant_lstm", "output"))
        .enumerate()
    {
        assert_close(&format!("output {k}"), g, w);
    }
    // And the fixture itself holds the Keras 3 numbers quoted in keras-spec.md §1.6 (rounded to 8 decimals).
    assert_close(
        "h",
        &got[1],
        &Tensor::new((1, 1), vec![0.02572775]).unwrap(),
    );
}
