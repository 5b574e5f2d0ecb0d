//! Keras files through the library (issue: Keras files in and out).
//!
//! Expected numbers: `tests/fixtures/keras-cases/*/output_K.npy`, written by real Keras 3.15.1 `model.predict`
//! on `input_K.npy` (see that folder's README). Here each `model.keras` is loaded by rnnlab's loader (config +
//! weights from the file, nothing set by hand) and must give those outputs within atol 1e-5, rtol 1e-4.

mod common;

use common::{assert_close, case_json, case_names, cases_dir, npy_list};
use rnnlab::prelude::*;
use rnnlab::saving::{load_model, load_model_bytes, save_model};

#[test]
fn every_keras_case_loads_and_predicts_like_keras() {
    let names = case_names();
    assert_eq!(names.len(), 44);
    for case in &names {
        let model = load_model(cases_dir().join(case).join("model.keras"))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let meta = case_json(case);
        assert_eq!(
            model.count_params() as u64,
            meta["params"].as_u64().unwrap(),
            "{case}: params"
        );
        // The weights read from model.weights.h5 are Keras' get_weights(), in order.
        let want_w = npy_list(case, "weight");
        let got_w = model.get_weights();
        assert_eq!(got_w.len(), want_w.len(), "{case}: number of weights");
        for (k, (g, w)) in got_w.iter().zip(&want_w).enumerate() {
            assert_eq!(g, w, "{case}: weight {k} differs from get_weights()");
        }
        let got = model
            .predict_all(npy_list(case, "input"))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = npy_list(case, "output");
        assert_eq!(got.len(), want.len(), "{case}: outputs");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(&format!("{case} output_{k}"), g, w);
        }
        // Layer names and classes as Keras listed them (case.json "layers": "name (Class)").
        let listed: Vec<String> = model
            .layers()
            .iter()
            .map(|l| format!("{} ({})", l.name(), l.class_name()))
            .collect();
        let want_layers: Vec<String> = serde_json::from_value(meta["layers"].clone()).unwrap();
        assert_eq!(listed, want_layers, "{case}: model.layers");
    }
}

#[test]
fn summary_reports_each_case_params() {
    for case in case_names() {
        let model = load_model(cases_dir().join(&case).join("model.keras")).unwrap();
        let params = case_json(&case)["params"].as_u64().unwrap();
        let text = model.summary().to_string();
        let want = format!(" Total params: {} (", thousands(params));
        assert!(
            text.contains(&want),
            "{case}: summary lacks {want:?}:\n{text}"
        );
    }
}

#[test]
fn a_model_built_in_rnnlab_survives_save_and_load() {
    let dir = tempdir("roundtrip");
    rnnlab::set_random_seed(7);
    // Encoder-decoder with initial_state, shared nothing; plus a Bidirectional and a TimeDistributed model.
    let enc_in = Input::new((None, 3));
    let dec_in = Input::new((None, 4));
    let [_, h, c] = LSTM::new(5).return_state(true).call_n(&enc_in).unwrap();
    let [seq, h2, c2] = LSTM::new(5)
        .return_sequences(true)
        .return_state(true)
        .call_n_with_state(&dec_in, &[&h, &c])
        .unwrap();
    let y = Dense::new(4).activation("softmax").call(&seq).unwrap();
    let model = Model::new([&enc_in, &dec_in], [&y, &h2, &c2]).unwrap();

    let x = Input::new((6, 3));
    let b = Bidirectional::new(GRU::new(3).return_sequences(true))
        .merge_mode(MergeMode::Sum)
        .call(&x)
        .unwrap();
    let t = TimeDistributed::new(Dense::new(2)).call(&b).unwrap();
    let s = SimpleRNN::new(2).go_backwards(true).call(&t).unwrap();
    let model2 = Model::new(&x, &s).unwrap();

    let mut seq_model = Sequential::new();
    seq_model.add_input((5, 3)).unwrap();
    seq_model
        .add(GRU::new(4).reset_after(false).return_sequences(true))
        .unwrap();
    seq_model.add(Dropout::new(0.2)).unwrap();
    seq_model.add(Flatten::new()).unwrap();
    seq_model.add(Dense::new(1)).unwrap();
    let model3 = seq_model.to_model().unwrap();

    let inputs = [
        vec![ramp((2, 7, 3)), ramp((2, 4, 4))],
        vec![ramp((2, 6, 3))],
        vec![ramp((2, 5, 3))],
    ];
    for (i, (m, xs)) in [model, model2, model3].iter().zip(&inputs).enumerate() {
        let path = dir.join(format!("m{i}.keras"));
        save_model(m, &path).unwrap();
        let back = load_model(&path).unwrap();
        assert_eq!(back.count_params(), m.count_params());
        let (a, b) = (m.predict_all(xs).unwrap(), back.predict_all(xs).unwrap());
        for (k, (p, q)) in a.iter().zip(&b).enumerate() {
            assert_eq!(p, q, "model {i} output {k} changed through save/load");
        }
        assert_eq!(
            back.summary().to_string().lines().count(),
            m.summary().to_string().lines().count()
        );
    }
}

#[test]
fn legacy_tf_keras_h5_loads_with_keras2_semantics() {
    // tests/fixtures/legacy (see its README): files written by tf-keras 2.21.0 with their predict outputs.
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy");
    for stem in ["tutorial_lstm_tf2", "tutorial_hard_sigmoid_tf2"] {
        let model =
            load_model(dir.join(format!("{stem}.h5"))).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let x = common::read_fixture_npy(&dir.join(format!("{stem}_input_0.npy")));
        let got = model.predict_all(&x).unwrap();
        let mut k = 0;
        while dir.join(format!("{stem}_output_{k}.npy")).exists() {
            let want = common::read_fixture_npy(&dir.join(format!("{stem}_output_{k}.npy")));
            assert_close(&format!("{stem} output_{k}"), &got[k], &want);
            k += 1;
        }
        assert_eq!(k, got.len(), "{stem}: number of outputs");
    }
    // The Keras 2 file's "hard_sigmoid" is the old clip(0.2x+0.5): the tutorial's printed digits come back.
    let model = load_model(dir.join("tutorial_hard_sigmoid_tf2.h5")).unwrap();
    let x = common::read_fixture_npy(&dir.join("tutorial_hard_sigmoid_tf2_input_0.npy"));
    let out = model.predict_all(&x).unwrap();
    assert_eq!(
        format!("{:?}", out[2]),
        "array([[0.04864851]], dtype=float32)"
    );
    assert_eq!(
        format!("{}", out[0]),
        "[[[0.00767819]\n  [0.01597687]\n  [0.02480672]]]"
    );
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempdir("bad");
    let missing = load_model(dir.join("nope.keras")).unwrap_err().to_string();
    assert!(missing.contains("nope.keras"), "{missing}");
    let garbage = load_model_bytes(b"hello world", "x.keras")
        .unwrap_err()
        .to_string();
    assert!(garbage.contains("not a Keras model file"), "{garbage}");
    let good = std::fs::read(cases_dir().join("lstm_seq0_state0/model.keras")).unwrap();
    let truncated = load_model_bytes(&good[..good.len() / 2], "half.keras")
        .unwrap_err()
        .to_string();
    assert!(truncated.contains("half.keras"), "{truncated}");

    // Members: missing weights, malformed config, unsupported layer, wrong weight shapes.
    let arch = rnnlab::io::KerasArchive::from_bytes(&good, "good").unwrap();
    let mut a = arch.clone();
    a.config["config"]["layers"][1]["class_name"] = "Conv1D".into();
    let e = rnnlab::saving::model_from_archive(&a, "conv.keras")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Conv1D") && e.contains("LSTM") && e.contains("Bidirectional"),
        "{e}"
    );
    let mut a = arch.clone();
    a.config["config"]["layers"][1]["config"]["units"] = 5.into();
    let e = rnnlab::saving::model_from_archive(&a, "units.keras")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("units.keras") && e.contains("(3, 20)") && e.contains("(3, 16)"),
        "{e}"
    );
    let mut a = arch.clone();
    a.config["config"]["layers"][1]["config"]["activation"] = "tanhh".into();
    let e = rnnlab::saving::model_from_archive(&a, "act.keras")
        .unwrap_err()
        .to_string();
    assert!(e.contains("tanhh") && e.contains("sigmoid"), "{e}");
    let mut a = arch.clone();
    a.weights = Default::default();
    let e = rnnlab::saving::model_from_archive(&a, "now.keras")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no weights for layer"), "{e}");
}

#[test]
fn keras2_hard_sigmoid_cannot_be_saved_silently() {
    let dir = tempdir("hs2");
    let x = Input::new((3, 2));
    let y = LSTM::new(1)
        .recurrent_activation_fn(Activation::HardSigmoidKeras2)
        .call(&x)
        .unwrap();
    let e = save_model(&Model::new(&x, &y).unwrap(), dir.join("m.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Keras 2 hard_sigmoid"), "{e}");
}

fn ramp(shape: (usize, usize, usize)) -> Tensor {
    let n = shape.0 * shape.1 * shape.2;
    Tensor::new(
        shape,
        (0..n)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 10.0)
            .collect(),
    )
    .unwrap()
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rnnlab-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Python's `{:,}`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
