//! Receive buffers for byte ranges, used again once their bytes are no longer needed. A range
//! read copies the body into one buffer of the range's size; allocated fresh each time, every
//! 4 MiB part cost page faults, zeroing and memory-cgroup charging for memory that was unmapped
//! a moment later (about half of the mount's CPU time in a profile of a 1 GiB read). A buffer
//! comes back here when the last `Bytes` pointing into it is dropped.

use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Buffers smaller than this are not kept: small allocations are cheap anyway.
const MIN_KEPT: usize = 64 << 10;
/// Idle buffers kept at most, in bytes: enough for the parts several readers have in flight,
/// small beside the read-ahead budget, so memory in use stays within its bound.
const MAX_IDLE: usize = 64 << 20;

/// Idle buffers, ready for the next range.
#[derive(Default)]
pub struct BufferPool {
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    /// An empty buffer with room for `len` bytes: an idle one when one is large enough.
    pub fn take(&self, len: usize) -> Vec<u8> {
        if len >= MIN_KEPT {
            if let Ok(mut idle) = self.idle.lock() {
                if let Some(i) = idle.buffers.iter().position(|b| b.capacity() >= len) {
                    let buf = idle.buffers.swap_remove(i);
                    idle.bytes -= buf.capacity();
                    return buf;
                }
            }
        }
        Vec::with_capacity(len)
    }

    /// `buf` as `Bytes`; the buffer comes back to the pool when the last of them is dropped.
    pub fn share(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < MIN_KEPT {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Lent {
            buf,
            pool: self.clone(),
        })
    }

    /// Keeps `buf` for reuse, unless the pool holds enough already.
    fn give_back(&self, mut buf: Vec<u8>) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.bytes + buf.capacity() <= MAX_IDLE {
            buf.clear();
            idle.bytes += buf.capacity();
            idle.buffers.push(buf);
        }
    }

    /// Bytes held by idle buffers.
    pub fn idle_bytes(&self) -> usize {
        self.idle.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

/// A buffer lent out as `Bytes`.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_their_bytes_are_dropped_and_are_used_again() {
        let pool = Arc::new(BufferPool::default());
        let mut buf = pool.take(1 << 20);
        buf.extend_from_slice(&[7u8; 1 << 20]);
        let at = buf.as_ptr();
        let bytes = pool.share(buf);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 0, "a slice still points into it");
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        assert!(
            pool.idle_bytes() >= 1 << 20,
            "back once the last slice is gone"
        );
        let again = pool.take(1 << 19);
        assert_eq!(
            again.as_ptr(),
            at,
            "the same memory, not a fresh allocation"
        );
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn small_buffers_are_not_kept_and_the_pool_is_bounded() {
        let pool = Arc::new(BufferPool::default());
        drop(pool.share(vec![1u8; 100]));
        assert_eq!(pool.idle_bytes(), 0);
        let all: Vec<Bytes> = (0..40)
            .map(|_| {
                let mut b = pool.take(4 << 20);
                b.resize(4 << 20, 0);
                pool.share(b)
            })
            .collect();
        drop(all);
        assert!(pool.idle_bytes() <= MAX_IDLE, "{}", pool.idle_bytes());
        assert!(pool.idle_bytes() >= MAX_IDLE - (4 << 20));
    }
}
