//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/README.md), kept so they never come back: each file in
//! `tests/fixtures/fuzz-regressions` is fed to the reader named by its prefix and must give a result (an error
//! here) without panicking. The leak the first one exposed is also checked directly by
//! `model::graph::tests::a_dropped_model_frees_its_graph`.

mod common;

use rnnlab::io::{npy, KerasArchive, LegacyH5};
use rnnlab::saving::load_model_bytes;

#[test]
fn every_regression_input_is_handled() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        match name.split('-').next().unwrap() {
            "load_model" => {
                if let Ok(model) = load_model_bytes(&bytes, &name) {
                    let _ = model.summary().text();
                }
            }
            "keras_archive" => {
                let _ = KerasArchive::from_bytes(&bytes, &name);
                let _ = LegacyH5::from_bytes(&bytes, &name);
            }
            "npy" => {
                let _ = npy::read_npy_bytes(&bytes, &name);
                let _ = npy::read_npz_bytes(&bytes, &name);
            }
            other => panic!("{name}: unknown target prefix {other}"),
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs found");
}

#[test]
fn corrupted_valid_files_are_errors_not_panics() {
    let cases = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/keras-cases");
    let good = std::fs::read(cases.join("bidirectional_lstm_concat/model.keras")).unwrap();
    // Flip bytes across the archive (headers, JSON, HDF5) and truncate at many points.
    for i in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        let _ = load_model_bytes(&bad, "flipped.keras");
    }
    for cut in (0..good.len()).step_by(251) {
        assert!(
            load_model_bytes(&good[..cut], "cut.keras").is_err(),
            "truncated at {cut} accepted"
        );
    }
    // An .npy header that claims 10^15 elements must not allocate them.
    let bytes = common::npy_bytes_with_header("<f4", "(1000000000000000,)", &[0u8; 64]);
    assert!(npy::read_npy_bytes(&bytes, "huge.npy").is_err());
}
