//! Reuse of the large float buffers a training step makes and drops (the tape of a recurrent layer, its
//! backward-pass gradients). A buffer of tens of MB is beyond the C allocator's reuse limit: each one came fresh
//! from the operating system at every step and its page faults took a quarter of an LSTM's training step. The
//! buffers are kept per thread (at most [`KEEP_BYTES`]) and handed out again zero-filled ([`zeroed`]), or as they
//! were to a caller that overwrites them ([`overwritten`]).

use std::cell::RefCell;

/// Buffers shorter than this come from the allocator, which reuses them well.
const MIN_LEN: usize = 1 << 16;
/// At most this many bytes of free buffers are kept per thread; the rest go back to the allocator.
const KEEP_BYTES: usize = 1 << 30;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A zero-filled vector of `len` floats, reusing a kept buffer when one is large enough (and not more than twice
/// the size, so a small request does not pin a large buffer).
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    match take(len) {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// A kept buffer with capacity for `len` floats (and not more than twice that, so a small request does not pin a
/// large buffer), with its old contents.
fn take(len: usize) -> Option<Vec<f32>> {
    if len < MIN_LEN {
        return None;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        let best = f
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len && v.capacity() <= 2 * len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| f.swap_remove(i))
    })
}

/// A vector of `len` floats for a caller that writes every value before reading any: a kept buffer as it was
/// left (no zero-filling pass: the tape of a training step is rewritten in full at every step), or a fresh
/// zeroed one.
pub(crate) fn overwritten(len: usize) -> Vec<f32> {
    match take(len) {
        Some(mut v) => {
            // Shrinking or growing within the capacity: only new tail values (if any) are written.
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// Gives a buffer back for [`zeroed`] to hand out again.
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() < MIN_LEN {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        f.push(v);
        // Over the limit: drop the largest buffers first.
        while f.iter().map(|v| v.capacity() * 4).sum::<usize>() > KEEP_BYTES {
            let largest = (0..f.len())
                .max_by_key(|&i| f[i].capacity())
                .expect("non-empty");
            f.swap_remove(largest);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_zeroed_and_reused() {
        let mut v = zeroed(MIN_LEN * 2);
        v.iter_mut().for_each(|x| *x = 7.0);
        let ptr = v.as_ptr();
        recycle(v);
        let w = zeroed(MIN_LEN * 2 - 5);
        assert_eq!(w.as_ptr(), ptr, "the kept buffer is reused");
        assert_eq!(w.len(), MIN_LEN * 2 - 5);
        assert!(w.iter().all(|&x| x == 0.0));
        // A buffer the caller overwrites comes back as it was left.
        let mut w = w;
        w.iter_mut().for_each(|x| *x = 3.0);
        recycle(w);
        let o = overwritten(MIN_LEN * 2 - 5);
        assert_eq!(o.as_ptr(), ptr);
        assert_eq!(o.len(), MIN_LEN * 2 - 5);
        assert!(o.iter().all(|&x| x == 3.0));
        let w = o;
        // Too large for a request a third its size: a new buffer.
        recycle(w);
        let small = zeroed(MIN_LEN / 2 + MIN_LEN / 4);
        assert_ne!(small.as_ptr(), ptr);
    }
}
