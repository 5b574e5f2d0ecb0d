//! One helper thread, kept for the whole process, that takes half of the columns of a recurrent layer's products
//! at batch 1 (see `RnnModule::run`). A batch of one cannot be split over threads by samples, and its products are
//! limited by how fast one core reads the weights (LSTM(256): 2 MB per step, from L2 or L3): two cores each read
//! half of them, each half staying in its own core's L2.
//!
//! A time step is far too short to start a thread (or even to wake a sleeping one) per product, so the helper,
//! once started, waits for work spinning for [`SPIN`] before it sleeps. Work is handed over with the protocol of
//! [`Helper::join`]: the caller posts the helper's half, does its own, and then either waits for the helper or,
//! if the helper has not picked the job up yet (asleep, or not scheduled on a loaded machine), does the second
//! half itself. So a split product is never much slower than one thread, and the result is the same either way:
//! each output value is computed by the same code in the same order whichever thread computes it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long the helper spins waiting for the next job before it sleeps: long enough to stay awake across the steps
/// of a sequence and across one-step calls made in a loop (a stateful layer fed a step at a time).
const SPIN: Duration = Duration::from_micros(300);

/// The states of the job slot.
const IDLE: u8 = 0;
const POSTED: u8 = 1;
const TAKEN: u8 = 2;
const DONE: u8 = 3;

/// What the caller and the helper share.
struct Slot {
    state: AtomicU8,
    /// The posted job; read by the helper only after it moved `state` from POSTED to TAKEN, and valid until it
    /// sets DONE (the caller waits for that before its borrow ends).
    job: std::cell::UnsafeCell<Option<&'static (dyn Fn() + Sync)>>,
    sleeping: AtomicBool,
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the caller holding the `Helper` (under its mutex) while state is IDLE, and read
// only by the helper thread after it won the job (POSTED -> TAKEN, Acquire, pairing with the Release that posted
// it); see `Helper::join`.
unsafe impl Sync for Slot {}

/// The helper thread and its job slot; at most one caller uses it at a time ([`helper`]).
pub(crate) struct Helper {
    slot: Arc<Slot>,
    thread: std::thread::Thread,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper").finish_non_exhaustive()
    }
}

static HELPER: OnceLock<Option<Mutex<Helper>>> = OnceLock::new();

/// The helper, if it is free (another thread's call may hold it: that caller then runs on one thread) and could be
/// started (the first use starts it).
pub(crate) fn helper() -> Option<MutexGuard<'static, Helper>> {
    match shared()?.try_lock() {
        Ok(h) => Some(h),
        // A caller panicked while holding it (the slot is consistent again once `join` has returned or unwound).
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

fn shared() -> Option<&'static Mutex<Helper>> {
    HELPER
        .get_or_init(|| Helper::start().map(Mutex::new))
        .as_ref()
}

impl Helper {
    fn start() -> Option<Helper> {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(IDLE),
            job: std::cell::UnsafeCell::new(None),
            sleeping: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        });
        let theirs = slot.clone();
        let handle = std::thread::Builder::new()
            .name("rnnlab-helper".into())
            .spawn(move || work(&theirs))
            .ok()?;
        Some(Helper {
            slot,
            thread: handle.thread().clone(),
        })
    }

    /// Runs `mine` on this thread and `theirs` on the helper, and returns when both have run. If the helper has
    /// not taken `theirs` by the time `mine` is done, this thread runs it too. Panics if `theirs` panicked on the
    /// helper.
    pub(crate) fn join(&mut self, mine: impl FnOnce(), theirs: &(dyn Fn() + Sync)) {
        let slot = &*self.slot;
        debug_assert_eq!(slot.state.load(Ordering::Relaxed), IDLE);
        // SAFETY: the helper dereferences this only between winning the job and setting DONE, and this function
        // does not return (nor unwind: see `Wait`) before the job is DONE or was taken back, so the borrow
        // outlives every use; the slot is written while IDLE, when the helper does not read it.
        unsafe {
            *slot.job.get() = Some(std::mem::transmute::<
                &(dyn Fn() + Sync),
                &'static (dyn Fn() + Sync),
            >(theirs));
        }
        slot.state.store(POSTED, Ordering::SeqCst);
        if slot.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        #[cfg(test)]
        JOINS.with(|j| j.set(j.get() + 1));
        let wait = Wait { slot, theirs };
        mine();
        drop(wait);
        if slot.panicked.swap(false, Ordering::Relaxed) {
            panic!("rnnlab's helper thread panicked in a product split by columns");
        }
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread split work with the helper (tests check that a split happened).
    static JOINS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times this thread has split work with the helper.
#[cfg(test)]
pub(crate) fn joins_on_this_thread() -> u64 {
    JOINS.with(|j| j.get())
}

impl Helper {
    /// Splits `out` at `at` and runs `f(0, first part)` on this thread and `f(1, second part)` on the helper, as
    /// [`join`](Self::join) does.
    pub(crate) fn split(
        &mut self,
        out: &mut [f32],
        at: usize,
        f: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        let (mine, theirs) = out.split_at_mut(at.min(out.len()));
        // A mutex gives the helper's closure (a shared `Fn`) its `&mut`; never contended, and no allocation.
        let theirs = Mutex::new(theirs);
        self.join(|| f(0, mine), &|| {
            f(1, &mut theirs.lock().unwrap_or_else(|e| e.into_inner()))
        });
    }
}

/// Finishes a posted job when [`Helper::join`] ends, also when `mine` unwinds: takes the job back and runs it
/// here if the helper has not started it, else waits until the helper is done with it.
struct Wait<'a> {
    slot: &'a Slot,
    theirs: &'a (dyn Fn() + Sync),
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let slot = self.slot;
        if slot
            .state
            .compare_exchange(POSTED, IDLE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // Taken back before the helper saw it: run it here (unless unwinding, when its result is not used).
            if !std::thread::panicking() {
                (self.theirs)();
            }
            return;
        }
        let mut spins = 0u32;
        while slot.state.load(Ordering::Acquire) != DONE {
            spins += 1;
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                // The helper was descheduled mid-job (a loaded machine): let it run.
                std::thread::yield_now();
            }
        }
        slot.state.store(IDLE, Ordering::Relaxed);
    }
}

/// The helper's loop: take posted jobs, spin for [`SPIN`] after each, then sleep until woken.
fn work(slot: &Slot) {
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while slot.state.load(Ordering::Relaxed) != POSTED {
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
            if spins.is_multiple_of(256) && since.elapsed() > SPIN {
                slot.sleeping.store(true, Ordering::SeqCst);
                // Re-checked after announcing the sleep: a job posted meanwhile either is seen here, or its
                // poster sees `sleeping` and unparks (SeqCst on both sides); an unpark before park makes park
                // return at once.
                if slot.state.load(Ordering::SeqCst) != POSTED {
                    std::thread::park();
                }
                slot.sleeping.store(false, Ordering::SeqCst);
            }
        }
        if slot
            .state
            .compare_exchange(POSTED, TAKEN, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue; // taken back by the caller
        }
        // SAFETY: won the job (see `Slot::job`).
        let job = unsafe { (*slot.job.get()).expect("a posted job") };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            slot.panicked.store(true, Ordering::Relaxed);
        }
        slot.state.store(DONE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn both_halves_run_exactly_once_whether_or_not_the_helper_is_awake() {
        let mut h = shared()
            .expect("the helper thread starts")
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for round in 0..2000 {
            if round % 500 == 0 {
                // Let the helper fall asleep: the next job must wake it or be taken back.
                std::thread::sleep(SPIN * 3);
            }
            let (mine, theirs) = (AtomicUsize::new(0), AtomicUsize::new(0));
            h.join(
                || {
                    mine.fetch_add(1, Ordering::Relaxed);
                },
                &|| {
                    theirs.fetch_add(1, Ordering::Relaxed);
                },
            );
            assert_eq!(
                (mine.into_inner(), theirs.into_inner()),
                (1, 1),
                "round {round}"
            );
        }
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller_and_the_helper_survives() {
        let mut h = shared()
            .expect("the helper thread starts")
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Keep the helper busy-waiting so that it (most likely) takes the job; if the caller takes it back, the
        // panic happens on this thread: either way join panics.
        let r = catch_unwind(AssertUnwindSafe(|| {
            h.join(|| std::thread::sleep(Duration::from_millis(5)), &|| {
                panic!("boom")
            })
        }));
        assert!(r.is_err());
        let ran = AtomicUsize::new(0);
        h.join(|| {}, &|| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.into_inner(), 1);
    }
}
