//! Jepsen's set check: which acknowledged writes a node holds.
//!
//! "Zero data loss" and "RPO > 0" are claims about a set: the op ids the server
//! acknowledged, against the op ids a node holds after the failure. Following Jepsen's
//! set checker, every id falls in one of four kinds:
//!
//! - **ok**: acknowledged and present;
//! - **lost**: acknowledged and missing — the durability promise broken;
//! - **recovered**: attempted, not acknowledged, yet present (a SyncRep-cancelled
//!   commit, or one whose acknowledgement died with the connection) — legal;
//! - **unexpected**: present but never attempted — the ledger or the writer is wrong.
//!
//! [`set_check`] is a pure function over in-memory sets, so the logic the course's
//! claims rest on is tested without a database.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::load::Ledger;

/// The outcome of the set check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SetCheck {
    /// Ops the writer sent.
    pub attempted: usize,
    /// Ops whose commit returned OK.
    pub acknowledged: usize,
    /// Op ids of the run's range found on the node.
    pub present: usize,
    /// Acknowledged and present.
    pub ok: usize,
    /// Acknowledged and missing, in id order.
    pub lost: Vec<i64>,
    /// Attempted, not acknowledged, yet present, in id order.
    pub recovered: Vec<i64>,
    /// Present but never attempted, in id order.
    pub unexpected: Vec<i64>,
}

/// Jepsen's set check over in-memory sets. `acknowledged` should be a subset of
/// `attempted`; an acknowledged id that was not attempted is still counted as
/// acknowledged (and so as ok or lost), never as unexpected.
pub fn set_check(
    attempted: &BTreeSet<i64>,
    acknowledged: &BTreeSet<i64>,
    present: &BTreeSet<i64>,
) -> SetCheck {
    let lost: Vec<i64> = acknowledged.difference(present).copied().collect();
    let recovered: Vec<i64> = attempted
        .iter()
        .filter(|id| !acknowledged.contains(id) && present.contains(id))
        .copied()
        .collect();
    let unexpected: Vec<i64> = present
        .iter()
        .filter(|id| !attempted.contains(id) && !acknowledged.contains(id))
        .copied()
        .collect();
    SetCheck {
        attempted: attempted.union(acknowledged).count(),
        acknowledged: acknowledged.len(),
        present: present.len(),
        ok: acknowledged.intersection(present).count(),
        lost,
        recovered,
        unexpected,
    }
}

/// The set check of a parsed ledger against the ids present on a node.
pub fn check_ledger(ledger: &Ledger, present: &BTreeSet<i64>) -> SetCheck {
    let attempted: BTreeSet<i64> = ledger.ops.keys().copied().collect();
    let acknowledged: BTreeSet<i64> = ledger
        .ops
        .iter()
        .filter(|(_, r)| r.acked_at().is_some())
        .map(|(id, _)| *id)
        .collect();
    set_check(&attempted, &acknowledged, present)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn set_check_sorts_every_kind() {
        let attempted = set(&[1, 2, 3, 4, 5, 6]);
        let acked = set(&[1, 2, 3, 4]);
        let present = set(&[1, 2, 5, 9]);
        let c = set_check(&attempted, &acked, &present);
        assert_eq!(c.ok, 2);
        assert_eq!(c.lost, [3, 4]);
        assert_eq!(c.recovered, [5]);
        assert_eq!(c.unexpected, [9]);
        assert_eq!((c.attempted, c.acknowledged, c.present), (6, 4, 4));
    }

    #[test]
    fn set_check_of_a_clean_run() {
        let c = set_check(&set(&[1, 2, 3]), &set(&[1, 2]), &set(&[1, 2]));
        assert_eq!(c.ok, 2);
        assert!(c.lost.is_empty() && c.recovered.is_empty() && c.unexpected.is_empty());
    }
}
