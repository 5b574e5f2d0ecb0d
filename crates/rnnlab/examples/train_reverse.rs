//! Trains the keras-io lstm_seq2seq encoder-decoder to reverse digit strings, then decodes held-out strings with
//! the return_state / initial_state inference loop (the notebook `notebooks/005_train_seq2seq.ipynb` does the
//! same step by step). Run: `cargo run --release -p rnnlab --example train_reverse`.

use rnnlab::prelude::*;
use rnnlab::Result;

const DIGITS: usize = 10;
const START: usize = 10;
const END: usize = 11;
const TOKENS: usize = 12;
const MAX_IN: usize = 5;
const MAX_OUT: usize = MAX_IN + 1;

/// A tiny deterministic generator (the notebook must give the same strings every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

fn random_strings(n: usize, rng: &mut Lcg) -> Vec<Vec<usize>> {
    (0..n)
        .map(|_| {
            let len = 3 + rng.below(3);
            (0..len).map(|_| rng.below(10)).collect()
        })
        .collect()
}

/// One-hot encoder inputs, decoder inputs (start + reversed) and decoder targets (reversed + end).
fn encode(strings: &[Vec<usize>]) -> Result<(Tensor, Tensor, Tensor)> {
    let n = strings.len();
    let mut enc = vec![0.0f32; n * MAX_IN * DIGITS];
    let mut dec_in = vec![0.0f32; n * MAX_OUT * TOKENS];
    let mut dec_out = vec![0.0f32; n * MAX_OUT * TOKENS];
    for (i, s) in strings.iter().enumerate() {
        for (t, &d) in s.iter().enumerate() {
            enc[(i * MAX_IN + t) * DIGITS + d] = 1.0;
        }
        let rev: Vec<usize> = s.iter().rev().copied().collect();
        let mut inp = vec![START];
        inp.extend(&rev);
        let mut out = rev.clone();
        out.push(END);
        for (t, &tok) in inp.iter().enumerate() {
            dec_in[(i * MAX_OUT + t) * TOKENS + tok] = 1.0;
        }
        for (t, &tok) in out.iter().enumerate() {
            dec_out[(i * MAX_OUT + t) * TOKENS + tok] = 1.0;
        }
    }
    Ok((
        Tensor::new(vec![n, MAX_IN, DIGITS], enc)?,
        Tensor::new(vec![n, MAX_OUT, TOKENS], dec_in)?,
        Tensor::new(vec![n, MAX_OUT, TOKENS], dec_out)?,
    ))
}

fn main() -> Result<()> {
    set_random_seed(7);
    let mut rng = Lcg(2024);
    let train = random_strings(4000, &mut rng);
    let test = random_strings(200, &mut rng);
    let (x_enc, x_dec, y_dec) = encode(&train)?;

    let latent = 64;
    let enc_in = Input::named("encoder_inputs", (None, DIGITS));
    let encoder = LSTM::new(latent).return_state(true).name("encoder");
    let [_, h, c] = encoder.call_n(&enc_in)?;
    let dec_in = Input::named("decoder_inputs", (None, TOKENS));
    let decoder = LSTM::new(latent)
        .return_sequences(true)
        .return_state(true)
        .name("decoder");
    let [seq, _, _] = decoder.call_n_with_state(&dec_in, &[&h, &c])?;
    let dense = Dense::new(TOKENS).activation("softmax").name("next_token");
    let y = dense.call(&seq)?;
    let model = Model::new([&enc_in, &dec_in], &y)?;
    model.compile(Optimizer::adam(0.005), Loss::categorical_crossentropy())?;
    let t0 = std::time::Instant::now();
    let history = model.fit(
        [&x_enc, &x_dec],
        &y_dec,
        FitOptions::new()
            .epochs(25)
            .batch_size(64)
            .seed(1)
            .validation_split(0.1)
            .verbose(2),
    )?;
    println!("{history}\ntrained in {:.1} s", t0.elapsed().as_secs_f64());
    let fig = std::env::temp_dir().join("train_reverse_history.png");
    history.plot()?.save(&fig)?;
    println!("loss curves: {}", fig.display());

    // Inference models: encoder -> states; decoder one step with states in and out.
    let enc_model = Model::new(&enc_in, [&h, &c])?;
    let h_in = Input::new(latent);
    let c_in = Input::new(latent);
    let [seq1, h1, c1] = decoder.call_n_with_state(&dec_in, &[&h_in, &c_in])?;
    let y1 = dense.call(&seq1)?;
    let dec_model = Model::new([&dec_in, &h_in, &c_in], [&y1, &h1, &c1])?;
    let mut correct = 0;
    for s in &test {
        let (xe, _, _) = encode(std::slice::from_ref(s))?;
        let [mut hh, mut cc] = enc_model.predict_n(&xe)?;
        let mut tok = START;
        let mut out = Vec::new();
        for _ in 0..MAX_OUT {
            let mut v = vec![0.0f32; TOKENS];
            v[tok] = 1.0;
            let x = Tensor::new(vec![1, 1, TOKENS], v)?;
            let [p, h2, c2] = dec_model.predict_n([&x, &hh, &cc])?;
            let pv = p.to_vec();
            tok = (0..TOKENS)
                .max_by(|&a, &b| pv[a].total_cmp(&pv[b]))
                .unwrap();
            if tok == END {
                break;
            }
            out.push(tok);
            (hh, cc) = (h2, c2);
        }
        let want: Vec<usize> = s.iter().rev().copied().collect();
        correct += usize::from(out == want);
    }
    println!(
        "held-out strings reversed correctly: {correct}/{}",
        test.len()
    );
    Ok(())
}
