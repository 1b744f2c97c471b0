//! Tests, examples and benchmarks of the insights crates; nothing to publish.
