//! Helpers shared by the integration tests: fixture paths, .npy loading, and the Keras tolerance check.
#![allow(dead_code)]

use std::path::PathBuf;

use rnnlab::Tensor;

/// `tests/fixtures/keras-cases`, made with real Keras 3.15.1 on TensorFlow 2.21 (see its README.md).
pub fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keras-cases")
}

/// Every case name in `index.json`, in order.
pub fn case_names() -> Vec<String> {
    let idx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cases_dir().join("index.json")).expect("index.json"),
    )
    .expect("json");
    idx.as_array()
        .expect("list")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

/// `case.json` of one case.
pub fn case_json(case: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(cases_dir().join(case).join("case.json")).expect("case.json"),
    )
    .expect("json")
}

/// Reads `prefix_0.npy`, `prefix_1.npy`, ... of a case until one is missing.
pub fn npy_list(case: &str, prefix: &str) -> Vec<Tensor> {
    let mut v = Vec::new();
    loop {
        let p = cases_dir()
            .join(case)
            .join(format!("{prefix}_{}.npy", v.len()));
        if !p.exists() {
            return v;
        }
        v.push(read_fixture_npy(&p));
    }
}

/// The comparison every parity test uses: NumPy `allclose` with atol 1e-5, rtol 1e-4, same shape.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert!(
        got.allclose(want, 1e-4, 1e-5),
        "{what}: max abs diff {} exceeds atol 1e-5 + rtol 1e-4\n got  {got:?}\n want {want:?}",
        got.max_abs_diff(want)
    );
}

/// Reads a float32 fixture with `ndarray-npy` directly, independent of rnnlab's own reader (which has its own tests).
pub fn read_fixture_npy(p: &std::path::Path) -> Tensor {
    let a: rnnlab::ndarray::ArrayD<f32> =
        ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Tensor(a)
}

/// A NumPy v1.0 `.npy` file with a hand-written header (`descr`, `shape` as Python would print them) and a
/// payload, for tests of dtype and size checks.
pub fn npy_bytes_with_header(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h.as_bytes());
    bytes.extend(payload);
    bytes
}

/// Deterministic pseudo-random values in [-1, 1) (a linear congruential generator), independent of rnnlab's
/// own generators: test data that is the same on every run and in every test.
pub fn lcg_tensor(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::new(shape.to_vec(), v).unwrap()
}
