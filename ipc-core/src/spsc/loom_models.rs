//! Loom models of the ring.
