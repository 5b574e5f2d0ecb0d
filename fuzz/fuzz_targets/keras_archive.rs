//! The raw `.keras` zip reader and the legacy tf.keras `.h5` reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnnlab::io::{KerasArchive, LegacyH5};

fuzz_target!(|data: &[u8]| {
    if let Ok(archive) = KerasArchive::from_bytes(data, "fuzz.keras") {
        // The accessors the model loader uses must not panic on whatever was accepted.
        let _ = archive.keras_version();
        let _ = archive.layer_weights();
        let _ = archive.get_weights();
    }
    if let Ok(h5) = LegacyH5::from_bytes(data, "fuzz.h5") {
        let _ = h5.get_weights();
    }
});
