"""Makes the Keras training reference cases in tests/fixtures/keras-fit/ (issue 8: training parity).

Run from the repository root with real Keras 3 and TensorFlow installed (the tests do not need them):

    pip install tensorflow-cpu keras h5py
    python3 scripts/keras_fit_fixtures.py

For every case it writes, in tests/fixtures/keras-fit/<case>/:
  model.keras            the compiled model before training (initial weights + compile_config)
  x_K.npy, y_K.npy       inputs (model.inputs order) and targets (model.outputs order)
  grad_K.npy             gradient of the compiled loss on the first batch, get_weights() order
  first_batch.json       {"loss": ...} of that batch
  weights_after_K.npy    get_weights() after fit(epochs=2, batch_size=B, shuffle=False)
  history.json           history.history of that fit
  evaluate.json          evaluate(x, y, batch_size=B, return_dict=True) after it
  model_trained.keras    the model saved after the fit (optimizer variables included)
  weights_epoch3_K.npy   get_weights() after one more epoch, trained from model_trained.keras (reloaded)
  case.json              settings and versions
The Rust tests (tests/keras_fit.rs) rebuild nothing by hand: they load model.keras and must reproduce these.
"""

import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "keras-fit")
N = 10
B = 4


def onehot(rng, shape, classes):
    return np.eye(classes, dtype="float32")[rng.integers(0, classes, shape)]


def cases():
    """(name, description, build() -> (model, compile kwargs), data(rng) -> (xs, ys))."""

    def c1():
        m = keras.Sequential([keras.Input((5, 3)), layers.LSTM(4), layers.Dense(2)])
        return m, dict(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True), loss="mse")

    def d1(r):
        return [r.standard_normal((N, 5, 3))], [r.standard_normal((N, 2))]

    def c2():
        m = keras.Sequential([keras.Input((4, 2)), layers.GRU(5, return_sequences=True),
                              layers.TimeDistributed(layers.Dense(3, activation="softmax"))])
        return m, dict(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")

    def d2(r):
        return [r.standard_normal((N, 4, 2))], [onehot(r, (N, 4), 3)]

    def c3():
        m = keras.Sequential([keras.Input((6, 2)), layers.SimpleRNN(3), layers.Dense(1, activation="sigmoid")])
        return m, dict(optimizer=keras.optimizers.RMSprop(0.01), loss="binary_crossentropy")

    def d3(r):
        return [r.standard_normal((N, 6, 2))], [r.integers(0, 2, (N, 1)).astype("float32")]

    def c4():
        m = keras.Sequential([keras.Input((4, 3)), layers.GRU(4, reset_after=False), layers.Dense(5)])
        return m, dict(optimizer=keras.optimizers.SGD(0.05, clipnorm=0.5),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def d4(r):
        return [r.standard_normal((N, 4, 3))], [r.integers(0, 5, (N,)).astype("float32")]

    def c5():
        m = keras.Sequential([keras.Input((5, 2)), layers.Bidirectional(layers.LSTM(3)), layers.Dense(2)])
        return m, dict(optimizer=keras.optimizers.Adam(0.02, clipvalue=0.1), loss="mae")

    def d5(r):
        return [r.standard_normal((N, 5, 2))], [r.standard_normal((N, 2))]

    def c6():
        enc_in = keras.Input((None, 4), name="encoder_inputs")
        _, h, c = layers.LSTM(5, return_state=True, name="encoder")(enc_in)
        dec_in = keras.Input((None, 3), name="decoder_inputs")
        seq, _, _ = layers.LSTM(5, return_sequences=True, return_state=True, name="decoder")(
            dec_in, initial_state=[h, c])
        out = layers.Dense(3, activation="softmax", name="next_token")(seq)
        m = keras.Model([enc_in, dec_in], out)
        return m, dict(optimizer=keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                       loss="categorical_crossentropy")

    def d6(r):
        return [r.standard_normal((N, 5, 4)), r.standard_normal((N, 4, 3))], [onehot(r, (N, 4), 3)]

    def c7():
        inp = keras.Input((5, 3))
        seq, h, c = layers.LSTM(4, return_sequences=True, return_state=True)(inp)
        reg = layers.Dense(2, name="reg")(h)
        logit = layers.TimeDistributed(layers.Dense(1), name="logit")(seq)
        m = keras.Model(inp, [reg, logit])
        return m, dict(optimizer=keras.optimizers.Adam(0.01, amsgrad=True),
                       loss=["mse", keras.losses.BinaryCrossentropy(from_logits=True)], loss_weights=[1.0, 0.5])

    def d7(r):
        return [r.standard_normal((N, 5, 3))], [r.standard_normal((N, 2)),
                                                r.integers(0, 2, (N, 5, 1)).astype("float32")]

    def c8():
        m = keras.Sequential([keras.Input((6, 2)), layers.Masking(0.0), layers.LSTM(3), layers.Dense(1)])
        return m, dict(optimizer=keras.optimizers.SGD(0.1), loss="mse")

    def d8(r):
        x = r.standard_normal((N, 6, 2))
        for i in range(N):
            length = 2 + i % 5
            x[i, length:, :] = 0.0
        x[3, 1, :] = 0.0  # a masked step in the middle
        return [x], [r.standard_normal((N, 1))]

    def c9():
        m = keras.Sequential([keras.Input((4, 2)), layers.LSTM(3), layers.RepeatVector(4),
                              layers.LSTM(2, return_sequences=True), layers.TimeDistributed(layers.Dense(2))])
        return m, dict(optimizer=keras.optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6), loss="mse")

    def d9(r):
        x = r.standard_normal((N, 4, 2))
        return [x], [x]

    def c10():
        m = keras.Sequential([keras.Input((3, 2)), layers.LSTM(2, return_sequences=True), layers.LSTM(2),
                              layers.Dense(1)])
        return m, dict(optimizer=keras.optimizers.SGD(0.2, momentum=0.5, global_clipnorm=0.3), loss="mse")

    def d10(r):
        return [r.standard_normal((N, 3, 2))], [r.standard_normal((N, 1))]

    def c11():
        m = keras.Sequential([keras.Input((4, 2)), layers.SimpleRNN(4, activation="relu"), layers.Dense(3)])
        return m, dict(optimizer=keras.optimizers.SGD(0.1),
                       loss=keras.losses.CategoricalCrossentropy(from_logits=True))

    def d11(r):
        return [r.standard_normal((N, 4, 2))], [onehot(r, (N,), 3)]

    def c12():
        m = keras.Sequential([keras.Input((5, 2)), layers.Masking(0.0),
                              layers.GRU(3, return_sequences=True),
                              layers.TimeDistributed(layers.Dense(2, activation="softmax"))])
        return m, dict(optimizer=keras.optimizers.Adam(0.01),
                       loss="sparse_categorical_crossentropy")

    def d12(r):
        x = r.standard_normal((N, 5, 2))
        for i in range(N):
            x[i, 2 + i % 4:, :] = 0.0
        return [x], [r.integers(0, 2, (N, 5)).astype("float32")]

    return [
        ("lstm_dense_sgd_nesterov", "LSTM -> Dense, mse, SGD momentum 0.9 nesterov", c1, d1),
        ("gru_td_softmax_adam", "GRU(return_sequences) -> TimeDistributed(Dense softmax), cce, Adam", c2, d2),
        ("simplernn_sigmoid_rmsprop", "SimpleRNN -> Dense sigmoid, bce (logits path), RMSprop", c3, d3),
        ("gru_v1_sparse_logits_sgd_clipnorm", "GRU reset_after=False -> Dense, sparse cce from logits, SGD clipnorm",
         c4, d4),
        ("bilstm_mae_adam_clipvalue", "Bidirectional(LSTM) -> Dense, mae, Adam clipvalue", c5, d5),
        ("seq2seq_rmsprop_centered", "encoder-decoder with initial_state, cce, RMSprop momentum centered", c6, d6),
        ("multi_output_amsgrad_loss_weights", "two outputs, mse + bce(from_logits), loss_weights, Adam amsgrad",
         c7, d7),
        ("masking_lstm_sgd", "Masking -> LSTM -> Dense, padded sequences, mse, SGD", c8, d8),
        ("repeatvector_autoencoder_adam", "LSTM -> RepeatVector -> LSTM seq -> TimeDistributed Dense, Adam betas",
         c9, d9),
        ("stacked_lstm_global_clipnorm", "stacked LSTMs, SGD momentum + global_clipnorm", c10, d10),
        ("relu_rnn_categorical_logits_sgd", "SimpleRNN relu -> Dense, cce from logits, SGD", c11, d11),
        ("masked_sequence_loss_sparse", "Masking -> GRU seq -> TD softmax: the loss averages kept steps only",
         c12, d12),
    ]


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    for name, desc, build, data in cases():
        if only and name not in only:
            continue
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        keras.utils.set_random_seed(1234)
        model, ckw = build()
        model.compile(jit_compile=False, **ckw)
        rng = np.random.default_rng(sum(map(ord, name)))
        xs, ys = data(rng)
        xs = [np.asarray(x, "float32") for x in xs]
        ys = [np.asarray(y, "float32") for y in ys]
        model.save(os.path.join(d, "model.keras"))
        for i, a in enumerate(xs):
            np.save(os.path.join(d, f"x_{i}.npy"), a)
        for i, a in enumerate(ys):
            np.save(os.path.join(d, f"y_{i}.npy"), a)
        ref = [id(w) for w in model.weights]
        if [id(w) for w in model.trainable_weights] != ref:
            raise SystemExit(f"{name}: trainable_weights order differs from weights order")
        # Gradient of the compiled loss on the first batch (what the first fit step uses).
        bx = [x[:B] for x in xs]
        by = [y[:B] for y in ys]
        xin = bx if len(bx) > 1 else bx[0]
        yin = by if len(by) > 1 else by[0]
        with tf.GradientTape() as tape:
            y_pred = model(xin, training=True)
            loss = model.compute_loss(x=xin, y=yin, y_pred=y_pred, training=True)
        grads = tape.gradient(loss, model.trainable_weights)
        for i, g in enumerate(grads):
            np.save(os.path.join(d, f"grad_{i}.npy"), np.asarray(g, "float32"))
        with open(os.path.join(d, "first_batch.json"), "w") as f:
            json.dump({"loss": float(loss)}, f)
        xfit = xs if len(xs) > 1 else xs[0]
        yfit = ys if len(ys) > 1 else ys[0]
        hist = model.fit(xfit, yfit, epochs=2, batch_size=B, shuffle=False, verbose=0)
        for i, w in enumerate(model.get_weights()):
            np.save(os.path.join(d, f"weights_after_{i}.npy"), w)
        with open(os.path.join(d, "history.json"), "w") as f:
            json.dump({k: [float(v) for v in vs] for k, vs in hist.history.items()}, f, indent=1)
        ev = model.evaluate(xfit, yfit, batch_size=B, verbose=0, return_dict=True)
        with open(os.path.join(d, "evaluate.json"), "w") as f:
            json.dump({k: float(v) for k, v in ev.items()}, f, indent=1)
        trained = os.path.join(d, "model_trained.keras")
        model.save(trained)
        again = keras.saving.load_model(trained)
        again.fit(xfit, yfit, epochs=1, batch_size=B, shuffle=False, verbose=0)
        for i, w in enumerate(again.get_weights()):
            np.save(os.path.join(d, f"weights_epoch3_{i}.npy"), w)
        case = {
            "name": name,
            "description": desc,
            "batch_size": B,
            "epochs": 2,
            "shuffle": False,
            "n_samples": N,
            "optimizer": json.loads(json.dumps(model.optimizer.get_config(), default=float)),
            "keras_version": keras.__version__,
            "tf_version": tf.__version__,
            "weights": [w.path for w in model.weights],
        }
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(case, f, indent=1)
        print(f"{name}: loss {hist.history['loss']}")


if __name__ == "__main__":
    main()
