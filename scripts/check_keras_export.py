"""Loads every .keras file written by `cargo run -p rnnlab --example export_keras -- DIR` in real Keras 3 and
checks that Keras predicts what rnnlab predicted (atol 1e-5, rtol 1e-4). Needs `pip install tensorflow-cpu keras`.

Usage: python3 scripts/check_keras_export.py DIR
"""
import glob
import os
import sys

import numpy as np
import keras

d = sys.argv[1]
bad = 0
for path in sorted(glob.glob(os.path.join(d, "*.keras"))):
    stem = path[: -len(".keras")]
    model = keras.saving.load_model(path)
    xs = [np.load(p) for p in sorted(glob.glob(stem + "_input_*.npy"))]
    want = [np.load(p) for p in sorted(glob.glob(stem + "_output_*.npy"))]
    got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    got = got if isinstance(got, (list, tuple)) else [got]
    ok = len(got) == len(want) and all(np.allclose(g, w, atol=1e-5, rtol=1e-4) for g, w in zip(got, want))
    diff = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want)) if len(got) == len(want) else float("inf")
    print(f"{os.path.basename(path)}: {'OK' if ok else 'MISMATCH'} (max abs diff {diff:.2e}, params {model.count_params()})")
    bad += not ok
print(f"{len(glob.glob(os.path.join(d, '*.keras'))) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
