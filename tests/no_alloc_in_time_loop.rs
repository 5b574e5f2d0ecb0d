//! The recurrent time loop allocates nothing per step: a call on a long sequence makes exactly as many heap
//! allocations as a call on a short one (the per-call buffers are sized by the sequence length but allocated once).
//!
//! A counting global allocator lives in this test binary only, so it measures rnnlab's code without affecting
//! other tests. Each test holds [`SERIAL`] while it counts, so no other test thread allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rnnlab::{Input, Model, SimpleRNN, Tensor, GRU, LSTM};

/// Counts calls to `alloc` / `realloc` and the bytes they ask for; delegates the work to the system allocator.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Held by each test while it counts.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (the input tensor is built before counting starts).
fn count(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    f();
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn allocations_do_not_grow_with_the_number_of_steps() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    type Run = Box<dyn Fn(&Tensor)>;
    let layers: Vec<(&str, Run)> = vec![
        ("LSTM", {
            let l = LSTM::new(8).return_sequences(true).return_state(true);
            Box::new(move |x| drop(l.apply_all(x).unwrap()))
        }),
        ("GRU", {
            let l = GRU::new(8);
            Box::new(move |x| drop(l.apply(x).unwrap()))
        }),
        ("GRU reset_after=false", {
            let l = GRU::new(8).reset_after(false).return_sequences(true);
            Box::new(move |x| drop(l.apply(x).unwrap()))
        }),
        ("SimpleRNN", {
            let l = SimpleRNN::new(8).go_backwards(true);
            Box::new(move |x| drop(l.apply(x).unwrap()))
        }),
    ];
    for (name, run) in &layers {
        let short = Tensor::zeros((5, 10, 3));
        let long = Tensor::zeros((5, 1000, 3));
        run(&short); // builds the weights
        let n_short = count(|| run(&short));
        let n_long = count(|| run(&long));
        assert_eq!(
            n_long, n_short,
            "{name}: {n_short} allocations for 10 steps but {n_long} for 1000 steps"
        );
    }
}

/// Bytes allocated by `f`.
fn bytes(f: impl FnOnce()) -> usize {
    let before = BYTES.load(Ordering::SeqCst);
    f();
    BYTES.load(Ordering::SeqCst) - before
}

#[test]
fn predict_reads_its_input_in_place() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The graph executor borrows the caller's arrays: the bytes a `predict` allocates (its outputs, states and
    // per-call buffers, none of them sized by the sequence length here) do not grow with the input. (It copied
    // every input once, 24 KB more for the longer sequence below.)
    let inp = Input::new((None, 3));
    let model = Model::new(&inp, &LSTM::new(4).call(&inp).unwrap()).unwrap();
    let short = Tensor::zeros((2, 100, 3));
    let long = Tensor::zeros((2, 1100, 3));
    model.predict(&short).unwrap(); // builds the weights
    let b_short = bytes(|| drop(model.predict(&short).unwrap()));
    let b_long = bytes(|| drop(model.predict(&long).unwrap()));
    assert_eq!(
        b_long, b_short,
        "predict allocated {b_short} bytes for 100 steps but {b_long} for 1100"
    );
}
