//! leadscore: exact, reproducible lead and account scoring over marketing activity logs.
//!
//! The library holds everything; `main.rs` only parses the command line and maps errors to exit
//! codes. Scoring itself is SQL (`queries/`) over user-defined functions (`udf`), run by
//! Apache DataFusion:
//! - `input` checks and registers the inputs, `model` loads the model file;
//! - `queries` embeds the SQL files and expands their templates, `pipeline` runs them in order,
//!   `output` stages and publishes tables;
//! - `score` and `backfill` are the scoring commands; `cli` wires commands to flags.

pub mod backfill;
pub mod cli;
pub mod cluster;
pub mod context;
pub mod delta;
pub mod error;
pub mod fold;
pub mod generate;
pub mod input;
pub mod lead_fold_exec;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod plan_rules;
pub mod progress;
pub mod queries;
pub mod query;
pub mod report;
pub mod review;
pub mod score;
pub mod serve;
pub mod storage;
pub mod tables;
pub mod udf;
pub mod weights;

pub use error::{Error, Result};
