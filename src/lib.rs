//! leadscore: exact, reproducible lead and account scoring over marketing activity logs.
//!
//! The library holds everything; `main.rs` only parses the command line and maps errors to exit
//! codes. Scoring itself is SQL (`queries/`) over user-defined functions (`udf`), run by
//! Apache DataFusion.

pub mod error;
pub mod fold;
pub mod generate;
pub mod model;
pub mod udf;

pub use error::{Error, Result};
