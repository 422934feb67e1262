//! When the next transaction may go, and what it writes.
//!
//! Three small things decide a worker's timing and values, each kept apart from the
//! worker loop so it can be tested without a database:
//!
//! - [`Pacer`], the run's rate limit: one shared schedule of slots (slot `k` is due at
//!   `start + k / rate`), so `--rate` is a total over the workers and not per worker; a
//!   writer that fell behind by more than a second (an outage) restarts the schedule
//!   from now instead of bursting the backlog at the server that just came back;
//! - [`next_backoff`], the wait after a failed connect or transaction: 100 ms doubling
//!   to 1 s, so a refused target is retried quickly but not hammered;
//! - [`Rng`], the rows' random columns. It is a hand-rolled xorshift rather than a
//!   crate (`fastrand` would do the same) because all it must guarantee is cheap,
//!   per-worker, lock-free values in range; the values are not evidence of anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Backoff after a failed connect or a failed transaction: 100 ms doubling to 1 s.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A rate-limited writer that fell this far behind (an outage) restarts its schedule
/// from now instead of bursting the backlog.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1);

/// The rate limiter: slot `k` of the whole run is due at `start + k / rate`.
pub(super) struct Pacer {
    start: Instant,
    rate: f64,
    next: AtomicU64,
}

impl Pacer {
    /// A schedule of `rate` slots per second from `start`.
    pub(super) fn new(start: Instant, rate: f64) -> Pacer {
        Pacer {
            start,
            rate,
            next: AtomicU64::new(0),
        }
    }

    /// Takes the next slot and tells when it is due.
    pub(super) fn next_due(&self) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(k as f64 / self.rate);
        let now = Instant::now();
        if now > due + CATCH_UP_LIMIT {
            let now_slot = (now.duration_since(self.start).as_secs_f64() * self.rate) as u64;
            self.next.fetch_max(now_slot + 1, Ordering::Relaxed);
            return now;
        }
        due
    }
}

/// The wait after a failure, given the previous one (`None` after a success).
pub(super) fn next_backoff(current: Option<Duration>) -> Duration {
    current.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX))
}

/// A small xorshift generator for the rows' random columns.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A value in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_bound() {
        let mut b = None;
        let mut seen = vec![];
        for _ in 0..6 {
            let d = next_backoff(b);
            seen.push(d.as_millis());
            b = Some(d);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn pacer_spaces_slots_and_skips_a_backlog() {
        let start = Instant::now();
        let p = Pacer::new(start, 100.0);
        assert_eq!(p.next_due(), start);
        assert_eq!(p.next_due(), start + Duration::from_millis(10));
        let p = Pacer::new(start - Duration::from_secs(10), 100.0);
        let due = p.next_due();
        assert!(due >= start, "a 10 s backlog is not burst");
        assert!(p.next.load(Ordering::Relaxed) >= 1000);
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            let v = r.below(600);
            assert!(v < 600);
        }
    }
}
