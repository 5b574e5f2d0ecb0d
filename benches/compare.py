#!/usr/bin/env python3
"""Side-by-side timings: rnnlab vs Keras 3 vs PyTorch, same shapes, same run: forward passes (default), or with
--train one training step of the layer + Dense(1) under mse with Adam (rnnlab `train_on_batch`, Keras `fit`).

Not part of the Rust tests (it needs TensorFlow/Keras, and optionally PyTorch):

    pip install tensorflow-cpu keras            # the references
    pip install torch --index-url https://download.pytorch.org/whl/cpu   # optional
    cargo build --release -p rnnlab-cli
    python3 benches/compare.py [--rnnlab target/release/rnnlab] [--threads 1] [--train] [--rounds 3] [--state] [--shape lstm:32,100,64,128 ...]

Shape by shape it runs `rnnlab bench --json`, then PyTorch, then Keras on that shape with the same thread count, and
prints ms per forward pass (the median call, then the fastest) and rnnlab's speed-up against each (>1 means rnnlab
is faster). On a shared host the speed of a core drifts by 10% or more over minutes, so the timings being compared
are taken back to back; `--rounds N` repeats the whole sequence N times and reports the median of the N timings of
each and the range of the N per-round ratios. rnnlab's predict splits the batch over --threads threads
(rnnlab::set_num_threads); its training steps use one thread. With --state every forward pass gets a random initial
state, as a loop feeding a layer step by step does (all three frameworks): from the default zero state rnnlab skips
the first step's recurrent product, which is zero, and the others compute it.
"""
import argparse, functools, json, os, statistics, subprocess, sys, tempfile, time

DEFAULT_TRAIN = ["lstm:1,3,2,1", "lstm:32,100,64,128", "gru:32,100,64,128", "lstm:64,200,256,256"]
DEFAULT = ["lstm:1,3,2,1", "lstm:32,100,64,128", "lstm:64,200,256,256", "gru:32,100,64,128", "gru:64,200,256,256"]


def timing(fn, min_runs=5, budget=1.0, per=1):
    """ms per call of `fn` (divided by `per`): {"median": ..., "min": ...} over at least `min_runs` calls and
    `budget` seconds, after two warm-up calls."""
    for _ in range(2):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget and len(times) < 10000):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3 / per)
    return {"median": statistics.median(times), "min": min(times)}


def n_states(kind, state):
    """How many initial state arrays a forward pass gets: none (the zero state), 2 for LSTM (h, c), else 1."""
    return 0 if not state else 2 if kind == "lstm" else 1


@functools.cache
def keras_model(kind, b, t, f, u, state=False):
    """The model, its inputs and its compiled functions, built once per shape (rounds reuse them)."""
    import numpy as np
    import tensorflow as tf
    import keras
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simplernn": keras.layers.SimpleRNN}[kind]
    rng = np.random.default_rng(2)
    inp = keras.Input((t, f))
    states = [keras.Input((u,)) for _ in range(n_states(kind, state))]
    if states:
        model = keras.Model([inp, *states], layer(u)(inp, initial_state=states))
    else:
        model = keras.Model(inp, layer(u)(inp))
    x = [rng.uniform(-1, 1, (b, t, f)).astype("float32")]
    x += [rng.uniform(-1, 1, (b, u)).astype("float32") for _ in states]
    fn = tf.function(lambda v: model(v, training=False))
    xla = tf.function(lambda v: model(v, training=False), jit_compile=True)
    x = x if states else x[0]
    xt = [tf.constant(v) for v in x] if states else tf.constant(x)
    return model, x, xt, fn, xla


def keras_times(kind, b, t, f, u, threads, state=False):
    model, x, xt, fn, xla = keras_model(kind, b, t, f, u, state)
    out = {"keras predict": timing(lambda: model.predict(x, verbose=0, batch_size=b))}
    out["keras tf.function"] = timing(lambda: fn(xt).numpy())
    try:
        out["keras XLA"] = timing(lambda: xla(xt).numpy())
    except Exception as e:  # XLA missing from this TensorFlow build
        print(f"(Keras XLA skipped: {type(e).__name__})")
    return out


def keras_train_times(kind, b, t, f, u, steps=10):
    """ms per training step of Keras' fit: an epoch of `steps` batches, timed after a warm-up epoch."""
    import numpy as np
    import keras
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simplernn": keras.layers.SimpleRNN}[kind]
    inp = keras.Input((t, f))
    model = keras.Model(inp, keras.layers.Dense(1)(layer(u)(inp)))
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (b * steps, t, f)).astype("float32")
    y = rng.uniform(-1, 1, (b * steps, 1)).astype("float32")
    fit = lambda: model.fit(x, y, batch_size=b, epochs=1, shuffle=False, verbose=0)
    return {"keras fit": timing(fit, min_runs=3, budget=2.0, per=steps)}


def torch_train_times(kind, b, t, f, u):
    try:
        import torch
    except ImportError:
        return {}
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simplernn": torch.nn.RNN}[kind]
    rnn, head = cls(f, u, batch_first=True), torch.nn.Linear(u, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=0.001)
    x = torch.rand(b, t, f) * 2 - 1
    y = torch.rand(b, 1) * 2 - 1

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
        loss.backward()
        opt.step()

    return {"pytorch": timing(step)}


def torch_times(kind, b, t, f, u, state=False):
    try:
        import torch
    except ImportError:
        return {}
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simplernn": torch.nn.RNN}[kind]
    m = cls(f, u, batch_first=True).eval()
    x = torch.rand(b, t, f) * 2 - 1
    # States are (layers, batch, units); an LSTM takes the pair (h, c).
    states = [torch.rand(1, b, u) * 2 - 1 for _ in range(n_states(kind, state))]
    hx = None if not states else tuple(states) if kind == "lstm" else states[0]
    with torch.no_grad():
        return {"pytorch": timing(lambda: m(x, hx))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rnnlab", default="target/release/rnnlab")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shape", action="append")
    ap.add_argument("--train", action="store_true", help="time training steps instead of forward passes")
    ap.add_argument("--state", action="store_true",
                    help="give every forward pass a random initial state instead of the zero state")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every shape's timings this many times (medians and the range of the ratios)")
    ap.add_argument("--torch-json", help=argparse.SUPPRESS)  # internal: the PyTorch child process
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.state and args.train:
        ap.error("--state times forward passes only (the training steps start from the zero state)")
    if args.torch_json:
        # PyTorch and TensorFlow's XLA each bundle LLVM and abort when both load in one process, so PyTorch is
        # timed here, in a child process that never imports TensorFlow.
        import torch
        torch.set_num_threads(args.threads)
        out = {}
        for s in args.shape:
            kind, dims = s.split(":")
            b, t, f, u = map(int, dims.split(","))
            out[s] = torch_train_times(kind, b, t, f, u) if args.train else torch_times(kind, b, t, f, u, args.state)
        json.dump(out, open(args.torch_json, "w"))
        return
    shapes = args.shape or (DEFAULT_TRAIN if args.train else DEFAULT)
    for shape in shapes:
        kind, _, dims = shape.partition(":")
        sizes = dims.split(",")
        if kind not in ("lstm", "gru", "simplernn") or len(sizes) != 4 or not all(x.isdigit() and int(x) > 0 for x in sizes):
            ap.error(f"--shape {shape!r}: expected KIND:BATCH,STEPS,FEATURES,UNITS with KIND lstm, gru or simplernn "
                     "and positive sizes, e.g. lstm:32,100,64,128")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import importlib.util
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print("(PyTorch not installed: skipped)")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    flags = (["--train"] if args.train else []) + (["--state"] if args.state else [])  # for both children
    # Per shape: one dict of ms per round, {"rnnlab": ..., "pytorch": ..., "keras ...": ...}.
    rounds = {s: [] for s in shapes}
    busy = []  # cores other processes used just before each rnnlab run (rnnlab bench measures it)
    for _ in range(args.rounds):
        for shape in shapes:
            kind, dims = shape.split(":")
            b, t, f, u = map(int, dims.split(","))
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "rnnlab.json")
                cmd = [args.rnnlab, "bench", "--json", path, "--threads", str(args.threads), "--shape", shape]
                subprocess.run(cmd + flags, check=True)
                ours = json.load(open(path))
                others = ours.get("other_busy_cores")
                busy.append(None if others is None else round(others, 2))
                res = ours["results"][0]
                times = {"rnnlab": {"median": res["median_ms"], "min": res["min_ms"]}}
                if have_torch:
                    path = os.path.join(d, "torch.json")
                    cmd = [sys.executable, __file__, "--torch-json", path, "--threads", str(args.threads), "--shape", shape]
                    subprocess.run(cmd + flags, check=True)
                    times.update(json.load(open(path)).get(shape, {}))
            if args.train:
                times.update(keras_train_times(kind, b, t, f, u))
            else:
                times.update(keras_times(kind, b, t, f, u, args.threads, args.state))
            rounds[shape].append(times)
    what = "training step (fit / train_on_batch)" if args.train else "forward pass"
    start = "given random initial state" if args.state else "zero initial state"
    print(f"\nthreads {args.threads}; {start}; {args.rounds} round(s); cores busy with other work at each rnnlab start {busy}")
    names = sorted({n for rs in rounds.values() for r in rs for n in r if n != "rnnlab"})
    spread = args.rounds > 1
    # The median call is what a user waits for on this host; the fastest call is each framework's own speed with
    # less of the host's noise in it (the noise only ever adds time): both, so a ratio near 1 can be judged.
    for stat, title in (("median", f"median ms per {what}"), ("min", f"fastest call, ms per {what}")):
        print(f"\n{title}" + (" (median of the rounds)" if spread else ""))
        print(f"{'shape':<22} {'rnnlab':>9}" + "".join(
            f" {n:>18} {'x':>7}" + (f" {'x range':>13}" if spread else "") for n in names))
        for shape, rs in rounds.items():
            kind, dims = shape.split(":")
            ms = statistics.median(r["rnnlab"][stat] for r in rs)
            line = f"{kind + ' ' + dims:<22} {ms:>9.4f}"
            for n in names:
                if all(n in r for r in rs):
                    ref = statistics.median(r[n][stat] for r in rs)
                    line += f" {ref:>18.4f} {ref / ms:>7.2f}"
                    if spread:
                        ratios = [r[n][stat] / r["rnnlab"][stat] for r in rs]
                        line += f" {min(ratios):>6.2f}-{max(ratios):<6.2f}"
                else:
                    line += f" {'-':>18} {'-':>7}" + (f" {'-':>13}" if spread else "")
            print(line)
    print("x = reference ms / rnnlab ms (above 1: rnnlab is faster)")


if __name__ == "__main__":
    main()
