//! The recurrent time loop allocates nothing per step: a call on a long sequence makes exactly as many heap
//! allocations as a call on a short one (the per-call buffers are sized by the sequence length but allocated once).
//!
//! A counting global allocator lives in this test binary only, so it measures rnnlab's code without affecting
//! other tests. It counts per thread: the test harness starts the other tests' threads meanwhile, and their
//! allocations made a global count flaky. The layers run on the calling thread (`set_num_threads(1)`), so the
//! calling thread's count is all of their allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rnnlab::{Input, Model, SimpleRNN, Tensor, GRU, LSTM};

/// Counts calls to `alloc` / `realloc` and the bytes they ask for, per thread; delegates the work to the system
/// allocator.
struct Counting;

thread_local! {
    // Const-initialised and without a destructor: reading them never allocates, even inside the allocator.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(bytes: usize) {
    let add = |c: &Cell<usize>, n: usize| c.set(c.get() + n);
    let _ = ALLOCS.try_with(|c| add(c, 1));
    let _ = BYTES.try_with(|c| add(c, bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Which counter [`counted`] reads.
#[derive(Clone, Copy)]
enum Count {
    Allocations,
    Bytes,
}

/// What `f` adds to this thread's count (the input tensors are built before counting starts).
fn counted(what: Count, f: impl FnOnce()) -> usize {
    let read = || match what {
        Count::Allocations => ALLOCS.with(Cell::get),
        Count::Bytes => BYTES.with(Cell::get),
    };
    let before = read();
    f();
    read() - before
}

#[test]
fn allocations_do_not_grow_with_the_number_of_steps() {
    rnnlab::set_num_threads(1);
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
        let n_short = counted(Count::Allocations, || run(&short));
        let n_long = counted(Count::Allocations, || run(&long));
        assert_eq!(
            n_long, n_short,
            "{name}: {n_short} allocations for 10 steps but {n_long} for 1000 steps"
        );
    }
}

#[test]
fn predict_reads_its_input_in_place() {
    rnnlab::set_num_threads(1);
    // The graph executor borrows the caller's arrays: the bytes a `predict` allocates (its outputs, states and
    // per-call buffers, none of them sized by the sequence length here) do not grow with the input. (It copied
    // every input once, 24 KB more for the longer sequence below.)
    let inp = Input::new((None, 3));
    let model = Model::new(&inp, LSTM::new(4).call(&inp).unwrap()).unwrap();
    let short = Tensor::zeros((2, 100, 3));
    let long = Tensor::zeros((2, 1100, 3));
    model.predict(&short).unwrap(); // builds the weights
    let b_short = counted(Count::Bytes, || drop(model.predict(&short).unwrap()));
    let b_long = counted(Count::Bytes, || drop(model.predict(&long).unwrap()));
    assert_eq!(
        b_long, b_short,
        "predict allocated {b_short} bytes for 100 steps but {b_long} for 1100"
    );
}
