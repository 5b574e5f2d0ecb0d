//! Builds a few rnnlab models, saves each as a Keras 3 `.keras` file with an input and rnnlab's output as `.npy`,
//! so they can be checked in real Keras (see README, "Checking saved files in Keras").
//!
//! Run: `cargo run -p rnnlab --example export_keras -- OUT_DIR`

use rnnlab::io::write_npy;
use rnnlab::prelude::*;

fn ramp(shape: (usize, usize, usize)) -> Tensor {
    let n = shape.0 * shape.1 * shape.2;
    Tensor::new(
        shape,
        (0..n)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 10.0)
            .collect(),
    )
    .expect("sizes match")
}

fn main() -> rnnlab::Result<()> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "keras-export".into()),
    );
    std::fs::create_dir_all(&out).map_err(|source| rnnlab::Error::Io {
        action: "create",
        path: out.clone(),
        source,
    })?;
    set_random_seed(42);

    let mut models: Vec<(&str, Model, Vec<Tensor>)> = Vec::new();

    // Encoder-decoder with initial_state (two inputs, three outputs).
    let enc_in = Input::new((None, 3));
    let dec_in = Input::new((None, 4));
    let [_, h, c] = LSTM::new(5).return_state(true).call_n(&enc_in)?;
    let [seq, h2, c2] = LSTM::new(5)
        .return_sequences(true)
        .return_state(true)
        .call_n_with_state(&dec_in, &[&h, &c])?;
    let y = Dense::new(4).activation("softmax").call(&seq)?;
    models.push((
        "seq2seq",
        Model::new([&enc_in, &dec_in], [&y, &h2, &c2])?,
        vec![ramp((2, 7, 3)), ramp((2, 4, 4))],
    ));

    // Bidirectional GRU (sum) -> TimeDistributed(Dense) -> backwards SimpleRNN.
    let x = Input::new((6, 3));
    let b = Bidirectional::new(GRU::new(3).return_sequences(true))
        .merge_mode(MergeMode::Sum)
        .call(&x)?;
    let t = TimeDistributed::new(Dense::new(2)).call(&b)?;
    let s = SimpleRNN::new(2).go_backwards(true).call(&t)?;
    models.push((
        "bidi_td_simplernn",
        Model::new(&x, &s)?,
        vec![ramp((2, 6, 3))],
    ));

    // Bidirectional LSTM with return_state and merge_mode None.
    let x = Input::new((5, 3));
    let outs = Bidirectional::new(LSTM::new(2).return_sequences(true).return_state(true))
        .merge_mode(MergeMode::None)
        .call_all(&x)?;
    models.push((
        "bidi_lstm_none_states",
        Model::new(&x, outs)?,
        vec![ramp((3, 5, 3))],
    ));

    // Masking + LSTM.
    let x = Input::new((5, 3));
    let m = Masking::new(0.0).call(&x)?;
    let outs = LSTM::new(3)
        .return_sequences(true)
        .return_state(true)
        .call_all(&m)?;
    let mut xm = ramp((2, 5, 3));
    xm.slice_mut(rnnlab::ndarray::s![0, 3.., ..]).fill(0.0);
    xm.slice_mut(rnnlab::ndarray::s![1, ..2, ..]).fill(0.0);
    models.push(("masking_lstm", Model::new(&x, outs)?, vec![xm]));

    // Sequential: GRU (reset_after=false) -> Dropout -> Flatten -> Dense; and LSTM -> RepeatVector -> LSTM.
    let mut sq = Sequential::new();
    sq.add_input((5, 3))?;
    sq.add(GRU::new(4).reset_after(false).return_sequences(true))?;
    sq.add(Dropout::new(0.2))?;
    sq.add(Flatten::new())?;
    sq.add(Dense::new(1).activation("tanh"))?;
    models.push(("sequential_gru_v1", sq.to_model()?, vec![ramp((2, 5, 3))]));
    let mut sq = Sequential::new();
    sq.add_input((5, 3))?;
    sq.add(
        LSTM::new(4)
            .recurrent_activation("hard_sigmoid")
            .activation("relu"),
    )?;
    sq.add(RepeatVector::new(3))?;
    sq.add(LSTM::new(2).return_sequences(true))?;
    models.push(("sequential_repeat", sq.to_model()?, vec![ramp((2, 5, 3))]));

    for (name, model, inputs) in &models {
        model.save(out.join(format!("{name}.keras")))?;
        for (i, x) in inputs.iter().enumerate() {
            write_npy(out.join(format!("{name}_input_{i}.npy")), x)?;
        }
        for (i, y) in model.predict_all(inputs)?.iter().enumerate() {
            write_npy(out.join(format!("{name}_output_{i}.npy")), y)?;
        }
        println!("{name}: {} params", model.count_params());
    }
    Ok(())
}
