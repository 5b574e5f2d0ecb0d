//! Criterion benchmarks of the hot paths: the vectorised activations, one LSTM(256) step at batch 1 (input
//! projection, recurrent product, gates), forward passes of LSTM/GRU/SimpleRNN layers, and a training step.
//!
//! `cargo bench -p rnnlab --bench kernels` times them; `cargo test --workspace` (the project's test command)
//! builds this file and runs every benchmark once, untimed, so a change that breaks them fails CI. Side-by-side
//! ratios against Keras and PyTorch come from `rnnlab bench` and `benches/compare.py`, not from here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rnnlab::layers::Layer;
use rnnlab::{
    set_random_seed, Activation, Dense, Initializer, Input, Loss, Model, Optimizer, Tensor, GRU,
    LSTM,
};

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from(
        Initializer::RandomUniform {
            minval: -1.0,
            maxval: 1.0,
            seed: Some(seed),
        }
        .sample(shape)
        .expect("valid shape"),
    )
}

/// One recurrent layer as a model over `(steps, features)` inputs, optionally with a Dense(1) head for training.
fn layer_model(layer: Layer, steps: usize, features: usize, head: bool) -> Model {
    set_random_seed(1);
    let inputs = Input::new((steps, features));
    let h = layer.call(&inputs).expect("layer call");
    let out = if head {
        Dense::new(1).call(&h).expect("dense call")
    } else {
        h
    };
    Model::new(&inputs, &out).expect("model")
}

fn activations(c: &mut Criterion) {
    let mut g = c.benchmark_group("activations");
    let n = 64 * 1024;
    g.throughput(Throughput::Elements(n as u64));
    let src: Vec<f32> = (0..n)
        .map(|i| ((i % 2001) as f32 - 1000.0) / 125.0)
        .collect();
    for act in [
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Exponential,
    ] {
        g.bench_function(BenchmarkId::from_parameter(act.name()), |b| {
            let mut v = src.clone();
            b.iter(|| {
                v.copy_from_slice(&src);
                act.apply_rows(black_box(&mut v), 1024);
            })
        });
    }
    g.finish();
}

fn lstm_step_batch1(c: &mut Criterion) {
    // The target: one step of LSTM(256) at batch 1 (features 256), a whole predict call. Stateful, as a
    // model fed one step at a time is: each call starts from the state the last one left (not zeros).
    set_random_seed(1);
    let inputs = Input::with_batch_shape((1, 1, 256));
    let h = LSTM::new(256)
        .stateful(true)
        .call(&inputs)
        .expect("layer call");
    let model = Model::new(&inputs, &h).expect("model");
    let x = uniform(&[1, 1, 256], 2);
    c.bench_function("lstm256_one_step_batch1", |b| {
        b.iter(|| model.predict(black_box(&x)).expect("predict"))
    });
}

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    let (batch, steps, features, units) = (32, 100, 64, 128);
    let x = uniform(&[batch, steps, features], 2);
    let layers: [(&str, Layer); 3] = [
        ("lstm", LSTM::new(units).into()),
        ("gru", GRU::new(units).into()),
        ("simple_rnn", rnnlab::SimpleRNN::new(units).into()),
    ];
    for (name, layer) in layers {
        let model = layer_model(layer, steps, features, false);
        g.bench_function(format!("{name}_{batch}x{steps}x{features}x{units}"), |b| {
            b.iter(|| model.predict(black_box(&x)).expect("predict"))
        });
    }
    g.finish();
}

fn training_step(c: &mut Criterion) {
    let (batch, steps, features, units) = (32, 100, 64, 128);
    let model = layer_model(LSTM::new(units).into(), steps, features, true);
    model
        .compile(Optimizer::adam(0.001), Loss::mse())
        .expect("compile");
    let (x, y) = (
        uniform(&[batch, steps, features], 2),
        uniform(&[batch, 1], 3),
    );
    let mut g = c.benchmark_group("train_on_batch");
    g.sample_size(20);
    g.bench_function(format!("lstm_{batch}x{steps}x{features}x{units}"), |b| {
        b.iter(|| model.train_on_batch(black_box(&x), &y).expect("train step"))
    });
    g.finish();
}

criterion_group!(
    benches,
    activations,
    lstm_step_batch1,
    forward,
    training_step
);
criterion_main!(benches);
