//! Unified diffs of the generated files under build/.
