//! Self-checking messages.
