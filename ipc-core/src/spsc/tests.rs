//! In-process tests of the ring (cross-process ones live in `tests/`).
