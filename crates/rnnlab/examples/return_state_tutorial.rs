//! The classic "return_sequences and return_state" tutorial (seed 000, dlology), in rnnlab.
//!
//! Run: `cargo run --release -p rnnlab --example return_state_tutorial`
//!
//! It prints the same arrays the tutorial printed with old Keras (0.00767819, 0.01597687, 0.02480672 and
//! c = 0.04864851: those need Keras 2's hard_sigmoid gates), next to what Keras 3's defaults give.

use rnnlab::prelude::*;

fn tutorial_lstm(units: usize, gates: Activation) -> LSTM {
    // k_init = r_init = Constant(0.1), b_init = Constant(0); unit_forget_bias (the default) still adds 1 to the
    // forget gate, which the tutorial's numbers depend on.
    LSTM::new(units)
        .kernel_initializer(Initializer::Constant(0.1))
        .recurrent_initializer(Initializer::Constant(0.1))
        .bias_initializer(Initializer::Constant(0.0))
        .recurrent_activation_fn(gates)
}

fn main() -> rnnlab::Result<()> {
    // define input data
    let data = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).reshape((1, 3, 2))?;
    println!("{data:?}\n");

    for (title, gates) in [
        (
            "Keras 2 gates (hard_sigmoid = clip(0.2x+0.5, 0, 1)): the tutorial's numbers",
            Activation::HardSigmoidKeras2,
        ),
        ("Keras 3 defaults (sigmoid gates)", Activation::Sigmoid),
    ] {
        println!("== {title}");
        // return_sequences=True in a Sequential model
        let mut model = Sequential::new();
        model.add(tutorial_lstm(1, gates).return_sequences(true))?;
        let output = model.predict(&data)?;
        println!("{output} {}", output.shape());

        // return_sequences=False: only the last hidden state
        let mut model = Sequential::new();
        model.add(tutorial_lstm(1, gates))?;
        let output = model.predict(&data)?;
        println!("{output} {}", output.shape());

        // return_state=True: [a<T>, a<T>, c<T>]
        let inputs1 = Input::new((3, 2));
        let [lstm1, state_h, state_c] = tutorial_lstm(1, gates)
            .return_state(true)
            .call_n(&inputs1)?;
        let model = Model::new(&inputs1, [&lstm1, &state_h, &state_c])?;
        let output = model.predict_all(&data)?;
        println!("{output:?}");
        for a in &output {
            println!("{}", a.shape());
        }

        // both: [a<1..T>, a<T>, c<T>]
        let inputs1 = Input::new((3, 2));
        let outs = tutorial_lstm(1, gates)
            .return_sequences(true)
            .return_state(true)
            .call_all(&inputs1)?;
        let model = Model::new(&inputs1, outs)?;
        let output = model.predict_all(&data)?;
        println!("{output:?}");
        for a in &output {
            println!("{}", a.shape());
        }
        println!("{}\n", model.summary());
    }
    Ok(())
}
