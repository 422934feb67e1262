//! The write load (in progress).
