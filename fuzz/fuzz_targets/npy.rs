//! `.npy` / `.npz` readers: any bytes must give `Ok` or `Err`, never a panic, a hang or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rnnlab::io::npy::read_npy_bytes(data, "fuzz.npy");
    let _ = rnnlab::io::npy::read_npz_bytes(data, "fuzz.npz");
});
