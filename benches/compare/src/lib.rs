//! Nothing here: see benches/engine.rs.
