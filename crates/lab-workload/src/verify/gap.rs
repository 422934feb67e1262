//! The outage a client saw: the longest stretch without a successful write.
//!
//! The ledger's ack times say when the writer last got a commit through and when it
//! got the next one. The longest such stretch — counted from the first attempt
//! (connecting at the start is not an outage) to the end of the ledger (a writer that
//! never recovered has an open gap) — is the RTO as the application lived it.

use std::time::Duration;

use serde::Serialize;

/// A stretch of time without a successful write, as offsets from the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The last success before it (or the first attempt).
    pub start: Duration,
    /// The first success after it (or the end of the ledger).
    pub end: Duration,
    /// Whether a success ended it (false: it lasted to the end of the ledger).
    pub closed: bool,
}

impl Gap {
    /// Its length.
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The longest gap between consecutive successes, counting from `start` (the first
/// attempt) and to the end of the ledger (`end`). `acks` need not be sorted.
pub fn longest_gap(acks: &[Duration], start: Duration, end: Duration) -> Gap {
    let mut sorted = acks.to_vec();
    sorted.sort_unstable();
    let mut best = Gap {
        start,
        end: sorted.first().copied().unwrap_or(end.max(start)),
        closed: !sorted.is_empty(),
    };
    for pair in sorted.windows(2) {
        let gap = Gap {
            start: pair[0],
            end: pair[1],
            closed: true,
        };
        if gap.length() > best.length() {
            best = gap;
        }
    }
    if let Some(&last) = sorted.last() {
        let tail = Gap {
            start: last,
            end: end.max(last),
            closed: false,
        };
        if tail.length() > best.length() {
            best = tail;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps() {
        let s = Duration::from_secs;
        // No acks: the whole run is one gap, open.
        assert_eq!(
            longest_gap(&[], s(0), s(10)),
            Gap {
                start: s(0),
                end: s(10),
                closed: false
            }
        );
        // The tail counts: a writer stalled until it was stopped.
        let g = longest_gap(&[s(3), s(1), s(2)], s(0), s(9));
        assert_eq!((g.start, g.end, g.closed), (s(3), s(9), false));
        // The start counts too.
        let g = longest_gap(&[s(5), s(6)], s(0), s(6));
        assert_eq!((g.start, g.end, g.closed), (s(0), s(5), true));
        // A gap in the middle, acks out of order.
        let g = longest_gap(&[s(9), s(1), s(2), s(8)], s(0), s(9));
        assert_eq!((g.start, g.end, g.closed), (s(2), s(8), true));
    }
}
