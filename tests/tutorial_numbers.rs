//! The classic tutorial's numbers (dlology "How to use return_state or return_sequences in Keras", seed 000;
//! its notebook Tony607/Keras-RNN-return ran old Keras 2.x). keras-spec.md §1.6 solved where they come from:
//! LSTM(1) with kernel and recurrent kernel Constant(0.1), bias_initializer Constant(0) plus unit_forget_bias
//! (forget bias 1), and Keras 2's hard_sigmoid clip(0.2x+0.5, 0, 1) as the gate activation.
//! Expected values: the tutorial's printed float32 output, confirmed by Keras 3.15 with that activation as a
//! lambda, and by a float64 numpy re-computation (spec §1.6 table).

// Reference values are written with the digits Keras (or the tutorial) printed, more than float32 keeps.
#![allow(clippy::excessive_precision)]

mod common;

use common::assert_close;
use rnnlab::prelude::*;

fn data() -> Tensor {
    // numpy: array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).reshape((1,3,2))
    Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
        .reshape((1, 3, 2))
        .unwrap()
}

fn tutorial_lstm(gates: Activation) -> LSTM {
    LSTM::new(1)
        .return_sequences(true)
        .return_state(true)
        .kernel_initializer(Initializer::Constant(0.1))
        .recurrent_initializer(Initializer::Constant(0.1))
        .bias_initializer(Initializer::Constant(0.0))
        .recurrent_activation_fn(gates)
}

fn run(layer: LSTM) -> [Tensor; 3] {
    let inputs = Input::new((3, 2));
    let [seq, h, c] = layer.call_n(&inputs).unwrap();
    let model = Model::new(&inputs, [&seq, &h, &c]).unwrap();
    model.predict_n(data()).unwrap()
}

#[test]
fn keras2_hard_sigmoid_gives_the_tutorial_numbers() {
    let [seq, h, c] = run(tutorial_lstm(Activation::HardSigmoidKeras2));
    assert_close(
        "sequence",
        &seq,
        &Tensor::new((1, 3, 1), vec![0.00767819, 0.01597687, 0.02480672]).unwrap(),
    );
    assert_close(
        "state_h",
        &h,
        &Tensor::new((1, 1), vec![0.02480672]).unwrap(),
    );
    assert_close(
        "state_c",
        &c,
        &Tensor::new((1, 1), vec![0.04864851]).unwrap(),
    );
    // The last step of the sequence is state_h, exactly.
    assert_eq!(seq.to_vec()[2], h.to_vec()[0]);
}

#[test]
fn keras3_defaults_give_the_keras3_numbers() {
    // keras-spec.md §1.6: Keras 3.15 defaults (sigmoid gates) print [0.00772376 0.01633997 0.02572775], c=0.05020291.
    let [seq, _, c] = run(tutorial_lstm(Activation::Sigmoid));
    assert_close(
        "sequence",
        &seq,
        &Tensor::new((1, 3, 1), vec![0.00772376, 0.01633997, 0.02572775]).unwrap(),
    );
    assert_close(
        "state_c",
        &c,
        &Tensor::new((1, 1), vec![0.05020291]).unwrap(),
    );
}

#[test]
fn keras3_hard_sigmoid_gives_its_own_numbers() {
    // keras-spec.md §1.6: Keras 3 "hard_sigmoid" (relu6(x+3)/6) gives [0.00764787 0.01562852 0.02390238], c=0.04703163.
    let [seq, _, c] = run(tutorial_lstm(Activation::HardSigmoid));
    assert_close(
        "sequence",
        &seq,
        &Tensor::new((1, 3, 1), vec![0.00764787, 0.01562852, 0.02390238]).unwrap(),
    );
    assert_close(
        "state_c",
        &c,
        &Tensor::new((1, 1), vec![0.04703163]).unwrap(),
    );
}

#[test]
fn without_unit_forget_bias_the_numbers_differ_as_the_spec_says() {
    // keras-spec.md §1.6 table, old hard_sigmoid with f-bias 0: h = 0.0076781871, 0.0144359591, 0.0207717954.
    let [seq, _, c] = run(tutorial_lstm(Activation::HardSigmoidKeras2).unit_forget_bias(false));
    assert_close(
        "sequence",
        &seq,
        &Tensor::new((1, 3, 1), vec![0.0076781871, 0.0144359591, 0.0207717954]).unwrap(),
    );
    assert_close(
        "state_c",
        &c,
        &Tensor::new((1, 1), vec![0.0407284716]).unwrap(),
    );
}

#[test]
fn tutorial_gru_numbers() {
    // Same notebook, GRU(1) with the same constant initializers and old hard_sigmoid, zero bias:
    // [0.01481556, 0.02755804, 0.03920874] (keras-spec.md §1.6; reset_after makes no difference here).
    for reset_after in [true, false] {
        let gru = GRU::new(1)
            .return_sequences(true)
            .kernel_initializer(Initializer::Constant(0.1))
            .recurrent_initializer(Initializer::Constant(0.1))
            .bias_initializer(Initializer::Constant(0.0))
            .recurrent_activation_fn(Activation::HardSigmoidKeras2)
            .reset_after(reset_after);
        let seq = gru.apply(&data()).unwrap();
        assert_close(
            &format!("GRU reset_after={reset_after}"),
            &seq,
            &Tensor::new((1, 3, 1), vec![0.01481556, 0.02755804, 0.03920874]).unwrap(),
        );
    }
}

#[test]
fn sequential_without_input_builds_on_first_predict_like_the_tutorial() {
    // Seed 000, cell 3-4: Sequential(); add(LSTM(1, return_sequences=True, ...)); predict(data) -> (1, 3, 1).
    let mut model = Sequential::new();
    model
        .add(
            LSTM::new(1)
                .return_sequences(true)
                .kernel_initializer(Initializer::Constant(0.1))
                .recurrent_initializer(Initializer::Constant(0.1))
                .bias_initializer(Initializer::Constant(0.0))
                .recurrent_activation_fn(Activation::HardSigmoidKeras2),
        )
        .unwrap();
    let output = model.predict(data()).unwrap();
    assert_eq!(output.shape().to_string(), "(1, 3, 1)");
    assert_close(
        "sequence",
        &output,
        &Tensor::new((1, 3, 1), vec![0.00767819, 0.01597687, 0.02480672]).unwrap(),
    );
}
