//! The embedded in-process backend (to be written).
