//! The training API's behaviour beyond the Keras parity cases (issue 8): fit options, History, validation,
//! reproducibility with seeds, saving, and errors on bad input. Expected values here are properties (equalities
//! between two computations, or the error text), not numbers from elsewhere.

mod common;

use rnnlab::prelude::*;
use rnnlab::{Compile, Result};

fn data(shape: &[usize], seed: u64) -> Tensor {
    common::lcg_tensor(shape, seed)
}

/// A small LSTM regressor with fixed weights.
fn model() -> Model {
    let x = Input::new((4, 2));
    let h = LSTM::new(3).call(&x).unwrap();
    let y = Dense::new(1).call(&h).unwrap();
    let m = Model::new(&x, &y).unwrap();
    let w: Vec<Tensor> = m
        .get_weights()
        .iter()
        .enumerate()
        .map(|(i, w)| data(w.shape().dims(), 7 + i as u64))
        .collect();
    m.set_weights(&w).unwrap();
    m
}

#[test]
fn validation_data_is_evaluated_after_every_epoch() -> Result<()> {
    let (x, y) = (data(&[12, 4, 2], 1), data(&[12, 1], 2));
    let (vx, vy) = (data(&[5, 4, 2], 3), data(&[5, 1], 4));
    let m = model();
    m.compile(Optimizer::sgd(0.05), Loss::mse())?;
    let h = m.fit(
        &x,
        &y,
        FitOptions::new()
            .epochs(2)
            .batch_size(5)
            .shuffle(false)
            .validation_data(&vx, &vy)
            .verbose(0),
    )?;
    assert_eq!(h.keys(), ["loss", "val_loss"]);
    // The last val_loss is evaluate() on the validation data with the final weights.
    let ev = m.evaluate(&vx, &vy, 5)?;
    assert_eq!(h.get("val_loss").unwrap()[1], ev);
    assert_eq!(h.epochs(), 2);
    Ok(())
}

#[test]
fn validation_split_holds_out_the_last_samples() -> Result<()> {
    let (x, y) = (data(&[10, 4, 2], 5), data(&[10, 1], 6));
    let take = |t: &Tensor, r: std::ops::Range<usize>| {
        Tensor(
            t.array()
                .slice_axis(rnnlab::ndarray::Axis(0), r.into())
                .to_owned(),
        )
    };
    // split 0.3 of 10: train on the first 7, validate on the last 3 (Keras: floor(10 * 0.7) = 7).
    let a = model();
    a.compile(Optimizer::adam(0.01), Loss::mse())?;
    let ha = a.fit(
        &x,
        &y,
        FitOptions::new()
            .epochs(2)
            .batch_size(4)
            .shuffle(false)
            .validation_split(0.3)
            .verbose(0),
    )?;
    let b = model();
    b.compile(Optimizer::adam(0.01), Loss::mse())?;
    let hb = b.fit(
        take(&x, 0..7),
        take(&y, 0..7),
        FitOptions::new()
            .epochs(2)
            .batch_size(4)
            .shuffle(false)
            .validation_data(take(&x, 7..10), take(&y, 7..10))
            .verbose(0),
    )?;
    assert_eq!(ha, hb);
    assert_eq!(a.get_weights(), b.get_weights());
    Ok(())
}

#[test]
fn shuffling_with_a_seed_repeats_and_differs_from_no_shuffle() -> Result<()> {
    let (x, y) = (data(&[16, 4, 2], 8), data(&[16, 1], 9));
    let run = |opts: FitOptions| -> Result<(History, Vec<Tensor>)> {
        let m = model();
        m.compile(Optimizer::rmsprop(0.01).momentum(0.5), Loss::mae())?;
        let h = m.fit(&x, &y, opts.epochs(3).batch_size(4).verbose(0))?;
        Ok((h, m.get_weights()))
    };
    let a = run(FitOptions::new().seed(11))?;
    let b = run(FitOptions::new().seed(11))?;
    let c = run(FitOptions::new().shuffle(false))?;
    assert_eq!(a, b, "same seed, same training");
    assert_ne!(a.1, c.1, "shuffled batches give other weights");
    Ok(())
}

#[test]
fn train_on_batch_is_one_fit_step() -> Result<()> {
    let (x, y) = (data(&[6, 4, 2], 12), data(&[6, 1], 13));
    let a = model();
    a.compile(Optimizer::sgd(0.1).momentum(0.9), Loss::mse())?;
    let loss = a.train_on_batch(&x, &y)?;
    let b = model();
    b.compile(Optimizer::sgd(0.1).momentum(0.9), Loss::mse())?;
    let h = b.fit(
        &x,
        &y,
        FitOptions::new().batch_size(6).shuffle(false).verbose(0),
    )?;
    assert_eq!(f64::from(loss), h.loss()[0]);
    assert_eq!(a.get_weights(), b.get_weights());
    assert_eq!(a.compile_config().unwrap().optimizer().iterations(), 1);
    Ok(())
}

#[test]
fn history_renders_as_a_table_and_a_figure() -> Result<()> {
    let (x, y) = (data(&[8, 4, 2], 14), data(&[8, 1], 15));
    let m = model();
    m.compile(Optimizer::adam(0.01), Loss::mse())?;
    let h = m.fit(
        &x,
        &y,
        FitOptions::new()
            .epochs(3)
            .batch_size(4)
            .validation_split(0.25)
            .verbose(0),
    )?;
    let text = h.to_string();
    assert!(
        text.starts_with("epoch") && text.contains("val_loss") && text.lines().count() == 4,
        "{text}"
    );
    let fig = h.plot()?;
    assert!(fig.svg().contains("epoch") && fig.svg().contains("val_loss"));
    assert!(
        History::default().plot().is_err(),
        "an empty history has nothing to draw"
    );
    Ok(())
}

#[test]
fn bad_training_input_is_a_clear_error() {
    let (x, y) = (data(&[6, 4, 2], 16), data(&[6, 1], 17));
    let m = model();
    let e = m
        .fit(&x, &y, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("compile()"), "{e}");
    m.compile(Optimizer::sgd(0.1), Loss::mse()).unwrap();
    let e = m
        .fit(&x, data(&[6, 2], 1), FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target for loss mse") && e.contains("(6, 1)") && e.contains("(6, 2)"),
        "{e}"
    );
    let e = m
        .fit(&x, data(&[5, 1], 1), FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(6, 1)") && e.contains("(5, 1)"), "{e}");
    let e = m
        .fit(&x, [&y, &y], FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 target array") && e.contains("2 array"), "{e}");
    let e = m
        .fit(&x, &y, FitOptions::new().batch_size(0).verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch_size"), "{e}");
    let e = m
        .fit(&x, &y, FitOptions::new().validation_split(1.0).verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation_split"), "{e}");
    let e = m
        .compile_with(Compile::multi(
            Optimizer::sgd(0.1),
            [Loss::mse(), Loss::mae()],
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 loss or one per output (1)"), "{e}");
    let e = m
        .compile(
            Optimizer::sgd(0.1).clipnorm(1.0).clipvalue(0.5),
            Loss::mse(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most one of them"), "{e}");
    let e = Loss::from_name("hinge").unwrap_err().to_string();
    assert!(e.contains("hinge") && e.contains("mse"), "{e}");
    let e = Optimizer::from_name("adagrad").unwrap_err().to_string();
    assert!(e.contains("adagrad") && e.contains("rmsprop"), "{e}");
    // Sparse labels out of range name the range.
    let xs = Input::new((4, 2));
    let logits = Dense::new(3)
        .call(&LSTM::new(2).call(&xs).unwrap())
        .unwrap();
    let c = Model::new(&xs, &logits).unwrap();
    c.compile(
        Optimizer::sgd(0.1),
        Loss::sparse_categorical_crossentropy().from_logits(true),
    )
    .unwrap();
    let labels = Tensor::new(vec![6], vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0]).unwrap();
    let e = c
        .fit(&x, &labels, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[0, 3)") && e.contains('3'), "{e}");
    // The model is still usable after the errors.
    assert!(m.fit(&x, &y, FitOptions::new().verbose(0)).is_ok());
}
