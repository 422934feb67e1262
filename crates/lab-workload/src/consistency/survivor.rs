//! The surviving node's side of the phantom-then-lost check: which of the rows the
//! log's reads returned it still holds, and which of them the writer's ledger says
//! were acknowledged — plainly, or with the WARNING of a cancelled SyncRep wait.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

use super::check::{FinalState, keys_seen};
use super::log::History;
use super::probe::{Node, present_ops};
use crate::load::{ErrorClass, Ledger, Outcome};

/// What `node` holds of the rows `history`'s reads returned (keys are op ids), with the
/// acknowledgements of `ledger` when one is given.
pub async fn gather(history: &History, node: &Node, ledger: Option<&Path>) -> Result<FinalState> {
    let mut ops = Vec::new();
    for key in keys_seen(history).keys() {
        ops.push(key.parse::<i64>().with_context(|| {
            format!("key {key:?} of the log is not an op id: only rows can be checked on a node")
        })?);
    }
    let present = present_ops(node, &ops).await?;
    let (acknowledged, warned) = match ledger {
        None => (None, BTreeSet::new()),
        Some(path) => {
            let (acked, warned) = acknowledged(&Ledger::read(path)?);
            (Some(acked), warned)
        }
    };
    Ok(FinalState {
        node: node.name.clone(),
        versions: present
            .iter()
            .map(|op| (op.to_string(), 1))
            .collect::<BTreeMap<_, _>>(),
        acknowledged,
        warned,
    })
}

/// The ledger's acknowledged op ids, and of them those whose commit came back with the
/// SyncRep WARNING (committed locally, "might not have been replicated").
fn acknowledged(ledger: &Ledger) -> (BTreeSet<String>, BTreeSet<String>) {
    let acked = ledger
        .ops
        .iter()
        .filter(|(_, r)| r.acked_at().is_some())
        .map(|(id, _)| id.to_string())
        .collect();
    let warned = ledger
        .ops
        .iter()
        .filter(|(_, r)| {
            matches!(
                &r.outcome,
                Some(Outcome::Fail(_, ErrorClass::SyncRepCancelled))
            )
        })
        .map(|(id, _)| id.to_string())
        .collect();
    (acked, warned)
}
