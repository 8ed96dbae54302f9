//! Nothing here: see tests/answers.rs.
