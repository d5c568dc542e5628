//! The library's one error type. Every failure a user can cause (a bad model file, a broken input,
//! a query that does not plan) has its own variant with a message that names the file, the line or
//! the column; `main.rs` alone turns these into exit codes.

use std::path::PathBuf;

/// Everything that can stop a leadscore run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file is malformed: a TOML error, an unknown key, a wrong type, an undeclared
    /// stage, a fit rule on a missing column. `line` is 1-based; 0 means "the whole file".
    #[error("{}{}: {message}", file.display(), line_suffix(*line))]
    Model {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// An input file (events, leads, outcomes) is missing, is not the format it should be, lacks
    /// a required column or has one of the wrong type.
    #[error("{}: {message}", file.display())]
    Input { file: PathBuf, message: String },

    /// Rows were rejected and `--strict` asked for that to be an error.
    #[error("{count} row(s) rejected ({summary}); --strict makes that an error")]
    Strict { count: u64, summary: String },

    /// A query file could not be read, expanded, planned or run.
    #[error("query {name}: {message}")]
    Query { name: String, message: String },

    /// The command line is incomplete or contradictory (exit status 2, like a parse error).
    #[error("{0}")]
    Usage(String),

    /// A command-line value that parses but makes no sense (a date range backwards, ...).
    #[error("{0}")]
    Config(String),

    /// Reading or writing files failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The query engine failed outside any one query file.
    #[error("engine: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),

    /// Arrow failed while building or reading batches.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    /// Parquet failed while writing generated data.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    /// Something leadscore itself got wrong (a bug, not the input's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

impl Error {
    /// An I/O error with a sentence saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An input error about `file`.
    pub fn input(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.into(),
            message: message.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
