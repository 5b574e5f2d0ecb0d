//! Traces (issue: notebooks and plots): per-step h, c and gates. The oracle is the layer itself: the last traced
//! step must equal what `predict` returns (Keras' own outputs are checked by the parity tests), the traced
//! sequence must equal `return_sequences` output, and the gates must recombine into the next state by the
//! Keras formulas (keras-spec.md §1).

mod common;

use common::{assert_close, cases_dir, npy_list};
use rnnlab::ndarray::{s, Axis};
use rnnlab::prelude::*;
use rnnlab::saving::load_model;

fn data() -> Tensor {
    let v: Vec<f32> = (0..2 * 6 * 3)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 6.0)
        .collect();
    Tensor::new((2, 6, 3), v).unwrap()
}

#[test]
fn last_step_equals_predict_for_every_fixture_rnn() {
    // Keras fixtures with their real weights: the trace's last h (and c) equals the returned states.
    for case in [
        "lstm_seq1_state1",
        "gru_seq1_state1",
        "gru_v1_seq1_state1",
        "simplernn_seq1_state1",
        "lstm_go_backwards",
        "masking_lstm",
    ] {
        let model = load_model(cases_dir().join(case).join("model.keras")).unwrap();
        let name = model
            .layers()
            .iter()
            .find(|l| matches!(l.class_name(), "LSTM" | "GRU" | "SimpleRNN"))
            .unwrap()
            .name();
        let x = npy_list(case, "input");
        let out = model.predict_all(&x).unwrap();
        let tr = &model.trace(&name, &x).unwrap()[0];
        assert_close(&format!("{case} h_T"), &tr.last_h(), &out[1]);
        if let Some(c) = tr.last_c() {
            assert_close(&format!("{case} c_T"), &c, &out[2]);
        }
        if case != "masking_lstm" {
            // Without a mask, the traced h sequence is exactly the returned sequence.
            assert_close(&format!("{case} sequence"), &tr.h, &out[0]);
        }
    }
}

#[test]
fn lstm_gates_recombine_into_the_states() {
    let lstm = LSTM::new(4);
    let tr = &lstm.trace(&data()).unwrap()[0];
    assert_eq!(tr.gate_names(), ["i", "f", "g", "o"]);
    let (i, f, g, o) = (
        tr.gate("i").unwrap(),
        tr.gate("f").unwrap(),
        tr.gate("g").unwrap(),
        tr.gate("o").unwrap(),
    );
    let c = tr.c.as_ref().unwrap();
    for t in 0..tr.steps() {
        let c_prev = if t == 0 {
            rnnlab::ndarray::Array2::zeros((2, 4))
        } else {
            c.index_axis(Axis(1), t - 1)
                .to_owned()
                .into_dimensionality()
                .unwrap()
        };
        let at = |x: &Tensor| {
            x.index_axis(Axis(1), t)
                .to_owned()
                .into_dimensionality::<rnnlab::ndarray::Ix2>()
                .unwrap()
        };
        // c_t = f * c_{t-1} + i * g ; h_t = o * tanh(c_t)
        let c_t = &at(f) * &c_prev + &at(i) * &at(g);
        let h_t = &at(o) * &c_t.mapv(f32::tanh);
        assert_close(
            &format!("c step {t}"),
            &Tensor::from(c_t),
            &Tensor::from(at(c)),
        );
        assert_close(
            &format!("h step {t}"),
            &Tensor::from(h_t),
            &Tensor::from(at(&tr.h)),
        );
    }
}

#[test]
fn gru_h_is_its_cell_state_and_gates_recombine() {
    let gru = GRU::new(3);
    let tr = &gru.trace(&data()).unwrap()[0];
    assert!(tr.c.is_none());
    let (z, n) = (tr.gate("z").unwrap(), tr.gate("candidate").unwrap());
    for t in 1..tr.steps() {
        let at = |x: &Tensor, k: usize| x.index_axis(Axis(1), k).to_owned();
        // h_t = z * h_{t-1} + (1 - z) * candidate
        let h = &at(z, t) * &at(&tr.h, t - 1) + &(1.0 - &at(z, t)) * &at(n, t);
        assert_close(&format!("h step {t}"), &Tensor(h), &Tensor(at(&tr.h, t)));
    }
    assert_close("final", &tr.last_h(), &gru.apply(&data()).unwrap());
}

#[test]
fn bidirectional_gives_two_directions_matching_the_returned_states() {
    let bi = Bidirectional::new(LSTM::new(2).return_state(true));
    let out = bi.apply_all(&data()).unwrap();
    let tr = bi.trace(&data()).unwrap();
    assert_eq!(tr.len(), 2);
    assert_eq!(
        (tr[0].direction, tr[1].direction),
        (Direction::Forward, Direction::Backward)
    );
    assert_eq!(tr[1].input_steps, vec![5, 4, 3, 2, 1, 0]);
    assert_close("fwd h", &tr[0].last_h(), &out[1]);
    assert_close("fwd c", &tr[0].last_c().unwrap(), &out[2]);
    assert_close("bwd h", &tr[1].last_h(), &out[3]);
    assert_close("bwd c", &tr[1].last_c().unwrap(), &out[4]);
    // The concat output is [fwd h_T, bwd h after x_0].
    assert_close(
        "concat",
        &Tensor(out[0].slice(s![.., 2..]).to_owned().into_dyn()),
        &tr[1].last_h(),
    );
}

#[test]
fn tracing_a_layer_inside_a_model_uses_what_it_receives() {
    let x = Input::new((6, 3));
    let h1 = LSTM::new(3)
        .return_sequences(true)
        .name("first")
        .call(&x)
        .unwrap();
    let [_, h, c] = LSTM::new(2)
        .return_state(true)
        .name("second")
        .call_n(&h1)
        .unwrap();
    let model = Model::new(&x, [&h, &c]).unwrap();
    let [h_v, c_v] = model.predict_n(data()).unwrap();
    let tr = &model.trace("second", data()).unwrap()[0];
    assert_close("h", &tr.last_h(), &h_v);
    assert_close("c", &tr.last_c().unwrap(), &c_v);
}

#[test]
fn bad_trace_requests_are_clear_errors() {
    let x = Input::new((6, 3));
    let y = LSTM::new(2).name("rnn").call(&x).unwrap();
    let z = Dense::new(1).name("head").call(&y).unwrap();
    let model = Model::new(&x, &z).unwrap();
    let e = model.trace("nope", data()).unwrap_err().to_string();
    assert!(
        e.contains("nope") && e.contains("rnn") && e.contains("head"),
        "{e}"
    );
    let e = model.trace("head", data()).unwrap_err().to_string();
    assert!(
        e.contains("recurrent") && e.contains("[rnn]") && e.contains("Dense"),
        "{e}"
    );
    let e = model
        .trace("rnn", Tensor::zeros((2, 5, 3)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(None, 6, 3)") && e.contains("(2, 5, 3)"), "{e}");
    let e = Dense::new(2).trace(&data()).unwrap_err().to_string();
    assert!(e.contains("recurrent") && e.contains("Dense"), "{e}");
    let tr = &LSTM::new(2).trace(&data()).unwrap()[0];
    let e = tr.gate("x").unwrap_err().to_string();
    assert!(e.contains("'x'") && e.contains("i, f, g, o"), "{e}");
}
