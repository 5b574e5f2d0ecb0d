//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/README.md), kept so they never come back, plus
//! deliberately corrupted files of the kinds the fuzzers produce.
//!
//! Each file in `tests/fixtures/fuzz-regressions` is named `<target>-<short-name>.bin` and is fed to what the
//! fuzz target `<target>` feeds it to; it must give a result (`Ok` or `Err`) without panicking. Inputs of
//! `keras_archive` and `load_model` that start with `{` are the fuzzers' structured form
//! `metadata.json \0 config.json \0 model.weights.h5`, packed into a zip first, as `fuzz_targets/repack.rs`
//! does. The leak the first kept input exposed (every model graph was a reference cycle) is checked directly by
//! the unit test `model::graph::tests::a_dropped_model_frees_its_graph`; here, and under the fuzzer's
//! LeakSanitizer, the input only has to load.

mod common;

use std::io::{Read, Write};

use rnnlab::io::{npy, KerasArchive, LegacyH5};
use rnnlab::saving::load_model_bytes;
use rnnlab::Tensor;

fn regressions_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz-regressions")
}

/// A stored zip (what Keras writes) of the given members, with correct CRCs.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The `{`-prefixed structured form of the fuzzers, as a `.keras` zip; anything else as is.
fn keras_bytes(data: &[u8]) -> Vec<u8> {
    if !data.starts_with(b"{") {
        return data.to_vec();
    }
    let mut parts = data.splitn(3, |&b| b == 0);
    let (m, c, w) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    zip_of(&[
        ("metadata.json", m),
        ("config.json", c),
        ("model.weights.h5", w),
    ])
}

/// The members of a `.keras` fixture.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

/// What the `load_model` fuzz target does: load, and when that works, summary and a prediction on zeros of
/// the model's input shapes (unknown dimensions 2).
fn load_and_predict(bytes: &[u8], what: &str) -> bool {
    let Ok(model) = load_model_bytes(bytes, what) else {
        return false;
    };
    let _ = model.count_params();
    let _ = model.summary().text();
    let mut inputs = Vec::new();
    for input in model.inputs() {
        let dims: Vec<usize> = input.shape().0.iter().map(|d| d.unwrap_or(2)).collect();
        match dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
            Some(n) if n <= 1 << 16 => inputs.push(Tensor::zeros(dims)),
            _ => return true,
        }
    }
    let _ = model.predict_all(&inputs);
    true
}

#[test]
fn every_regression_input_is_handled() {
    let mut n = 0;
    for entry in std::fs::read_dir(regressions_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        match name.split('-').next().unwrap() {
            "load_model" => {
                load_and_predict(&keras_bytes(&bytes), &name);
            }
            "keras_archive" => {
                let bytes = keras_bytes(&bytes);
                if let Ok(a) = KerasArchive::from_bytes(&bytes, &name) {
                    let _ = a.keras_version();
                    let _ = a.layer_weights();
                    let _ = a.get_weights();
                }
                if let Ok(h5) = LegacyH5::from_bytes(&bytes, &name) {
                    let _ = h5.get_weights();
                }
            }
            "npy" => {
                let _ = npy::read_npy_bytes(&bytes, &name);
                let _ = npy::read_npz_bytes(&bytes, &name);
            }
            other => panic!("{name}: unknown target prefix {other:?} (expected npy, keras_archive or load_model)"),
        }
        n += 1;
    }
    assert!(
        n > 0,
        "no regression inputs found in tests/fixtures/fuzz-regressions"
    );
}

/// The Bidirectional whose stored backward layer no longer matched the forward one (the fuzzer's flipped byte hid
/// the backward `return_sequences` key, so it defaulted to false): loading succeeded and `predict` panicked in the
/// merge of a (B, T, U) and a (B, U) half. Now a clear error, like Keras' own check.
#[test]
fn a_backward_layer_that_differs_from_the_forward_one_is_an_error() {
    let bytes =
        std::fs::read(regressions_dir().join("load_model-bidirectional-backward-mismatch.bin"))
            .unwrap();
    let err = load_model_bytes(&keras_bytes(&bytes), "mismatch.keras")
        .unwrap_err()
        .to_string();
    assert!(err.contains("return_sequences"), "{err}");
    // The same input with the flag agreeing loads and predicts: the file reaches the check, not an earlier error.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let fixed_cfg = bytes
        .windows(b"\"return_sequences\":false".len())
        .position(|w| w == b"\"return_sequences\":false")
        .map(|i| {
            let mut b = bytes.clone();
            b.splice(
                i..i + b"\"return_sequences\":false".len(),
                b"\"return_sequences\":true".iter().copied(),
            );
            b
        })
        .unwrap_or_else(|| panic!("no return_sequences:false in {}", &text[..200]));
    assert!(load_and_predict(&keras_bytes(&fixed_cfg), "agreeing.keras"));
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(common::cases_dir().join("..").join(rel)).unwrap()
}

#[test]
fn a_truncated_keras_zip_is_an_error() {
    let good = fixture("keras-cases/bidirectional_lstm_concat/model.keras");
    assert!(
        load_and_predict(&good, "good.keras"),
        "the intact fixture loads"
    );
    for cut in (0..good.len()).step_by(251) {
        assert!(
            load_model_bytes(&good[..cut], "cut.keras").is_err(),
            "truncated at {cut} of {} bytes but accepted",
            good.len()
        );
        assert!(KerasArchive::from_bytes(&good[..cut], "cut.keras").is_err());
    }
}

#[test]
fn flipped_bytes_inside_a_valid_zip_do_not_panic() {
    // The members re-zipped with correct CRCs, so the corruption reaches the HDF5 and JSON readers instead of
    // being caught by the zip checksum.
    for case in [
        "bidirectional_lstm_concat",
        "encoder_decoder_lstm_initial_state",
    ] {
        let members = unzip(&fixture(&format!("keras-cases/{case}/model.keras")));
        for target in ["model.weights.h5", "config.json"] {
            let k = members.iter().position(|(n, _)| n == target).unwrap();
            let len = members[k].1.len();
            for i in (0..len).step_by(len / 150 + 1) {
                for mask in [0x01u8, 0xA5, 0xFF] {
                    let mut m = members.clone();
                    m[k].1[i] ^= mask;
                    let refs: Vec<(&str, &[u8])> =
                        m.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
                    load_and_predict(
                        &zip_of(&refs),
                        &format!("{case}: {target} byte {i} ^ {mask:#x}"),
                    );
                }
            }
        }
    }
}

#[test]
fn flipped_bytes_in_a_legacy_h5_do_not_panic() {
    let good = fixture("legacy/tutorial_lstm_tf2.h5");
    for i in (0..good.len()).step_by(37) {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        load_and_predict(&bad, &format!("legacy byte {i}"));
    }
}

#[test]
fn npy_headers_claiming_huge_arrays_are_errors() {
    for shape in [
        "(1000000000000000,)",
        "(4294967296, 4294967296)",
        "(18446744073709551615,)",
        "(99999999999999999999999,)",
    ] {
        let bytes = common::npy_bytes_with_header("<f4", shape, &[0u8; 64]);
        assert!(
            npy::read_npy_bytes(&bytes, "huge.npy").is_err(),
            "{shape} accepted"
        );
        let npz = zip_of(&[("x.npy", &bytes)]);
        assert!(
            npy::read_npz_bytes(&npz, "huge.npz").is_err(),
            "{shape} accepted in an npz"
        );
    }
    // A header length field pointing far past the end of the file.
    let mut bytes = common::npy_bytes_with_header("<f4", "(2,)", &[0u8; 8]);
    bytes[8] = 0xFF;
    bytes[9] = 0xFF;
    assert!(npy::read_npy_bytes(&bytes, "long-header.npy").is_err());
    // Truncated payload.
    let bytes = common::npy_bytes_with_header("<f4", "(2, 3)", &[0u8; 23]);
    assert!(npy::read_npy_bytes(&bytes, "short.npy").is_err());
}
