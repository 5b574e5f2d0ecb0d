//! The full loader (`config.json` -> layers -> weights), then a prediction on zeros so that the layer code
//! runs on whatever configuration was accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnnlab::{saving::load_model_bytes, Tensor};

/// Cap on the elements of one zero input (unknown dims are 2; fixed dims come from the fuzzed config).
const MAX_INPUT_ELEMS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = load_model_bytes(data, "fuzz.keras") else {
        return;
    };
    let _ = model.count_params();
    let _ = model.summary().text();
    let mut inputs = Vec::new();
    for input in model.inputs() {
        let dims: Vec<usize> = input.shape().0.iter().map(|d| d.unwrap_or(2)).collect();
        let elems = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        match elems {
            Some(n) if n <= MAX_INPUT_ELEMS => inputs.push(Tensor::zeros(dims)),
            _ => return, // a config asking for a gigantic input: nothing to learn from allocating it
        }
    }
    let _ = model.predict_all(&inputs);
});
