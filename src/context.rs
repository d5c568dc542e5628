//! Building the DataFusion session every command runs in: parallelism, batch size, the memory
//! pool and its spill directory, and leadscore's functions.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

/// Engine settings shared by every command.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Parallelism (DataFusion's target partitions); 0 means all cores.
    pub threads: usize,
    /// Bound on the memory pool in bytes; operators that can spill do so past it.
    pub memory_limit: Option<usize>,
    /// Where spill files go (default: the system's temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// Rows per batch.
    pub batch_size: usize,
    /// Print each query's wall time to stderr.
    pub timings: bool,
    /// Print the plan of the query with this name before running it.
    pub explain: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            memory_limit: None,
            spill_dir: None,
            batch_size: 8192,
            timings: false,
            explain: None,
        }
    }
}

impl EngineOptions {
    /// The number of partitions to run with.
    pub fn partitions(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }
}

/// A session with leadscore's functions registered.
pub fn session(options: &EngineOptions) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(options.partitions())
        .with_batch_size(options.batch_size)
        .with_information_schema(true);
    config
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = options.memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    if let Some(dir) = &options.spill_dir {
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        );
    }
    let runtime = runtime.build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    crate::udf::register_all(&mut ctx)?;
    Ok(ctx)
}

/// Parses a size such as `2GB`, `512MiB`, `32 mb` or `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| Error::Config(format!("{text:?} is not a size (try 2GB or 512MB)")))?;
    let scale = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => {
            return Err(Error::Config(format!(
                "{text:?}: unknown size unit {other:?} (use B, KB, MB, GB or TB)"
            )));
        }
    };
    let bytes = number * scale;
    if bytes.is_nan() || bytes < 1.0 {
        return Err(Error::Config(format!("{text:?}: a size must be positive")));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("32 mb").unwrap(), 32 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2XB").is_err());
        assert!(parse_size("0").is_err());
    }
}
