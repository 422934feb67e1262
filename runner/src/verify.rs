//! The loss ledger check (in progress).
