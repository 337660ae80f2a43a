//! The schedule function.
