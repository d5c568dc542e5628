//! Building the DataFusion session every command runs in: parallelism, batch size, the memory
//! pool and its spill directory, and leadscore's functions.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use datafusion::common::Result as DfResult;
use datafusion::common::config::ConfigOptions;
use datafusion::common::human_readable_size;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
    UnboundedMemoryPool,
};
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
    /// Show progress bars on stderr (when it is a terminal).
    pub progress: bool,
    /// The format of published tables.
    pub format: crate::delta::Format,
    /// Run the queries on this Ballista cluster instead of in this process.
    pub cluster: Option<crate::cluster::Cluster>,
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
            progress: false,
            format: crate::delta::Format::Parquet,
            cluster: None,
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
    // DataFusion's own settings can be tuned from the environment (DATAFUSION_EXECUTION_…);
    // leadscore's flags come on top.
    let base = SessionConfig::from_env().map_err(|e| {
        Error::Config(format!(
            "a DATAFUSION_* environment variable is not valid: {e}"
        ))
    })?;
    let mut config = base
        .with_target_partitions(options.partitions())
        .with_batch_size(batch_rows(options))
        .with_information_schema(true)
        .with_option_extension(crate::lead_fold_exec::FoldOptions::default());
    config
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    if let Some(limit) = options.memory_limit {
        // Each sort keeps a reserve for merging its spill files: scale it to the bound.
        let opts = config.options_mut();
        opts.execution.sort_spill_reservation_bytes =
            (limit / (16 * options.partitions())).clamp(64 << 10, 10 << 20);
    } else {
        sort_whole_tables(config.options_mut(), |name| {
            std::env::var_os(name).is_some()
        });
    }
    let pool: Arc<dyn MemoryPool> = match options.memory_limit {
        // Tracking names the largest consumers when the bound is hit.
        Some(limit) => Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            std::num::NonZeroUsize::new(5).expect("non-zero"),
        )),
        None => Arc::new(UnboundedMemoryPool::default()),
    };
    let mut runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(MeteredPool::new(pool)))
        .with_object_store_registry(crate::storage::registry());
    if let Some(dir) = &options.spill_dir {
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        );
    }
    let runtime = runtime.build_arc()?;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    let mut ctx = SessionContext::new_with_state(
        crate::plan_rules::with_local_rules(state, options.memory_limit.is_some()).build(),
    );
    crate::udf::register_all(&mut ctx)?;
    Ok(ctx)
}

/// How many bytes of rows a sort without `--memory-limit` concatenates and sorts in one piece.
const SORT_IN_ONE_PIECE: usize = 512 << 20;

/// Sorting without `--memory-limit`, unless the environment sets these itself (`is_set` tells):
/// an ORDER BY sorts its rows in one partition, not one per core merged after (a sorted output
/// is written as one file anyway, and `score` runs its sorted outputs side by side, which keeps
/// the cores busy), and in one piece up to [`SORT_IN_ONE_PIECE`] bytes, not batch by batch merged
/// after. DataFusion's defaults sorted `lead_scores` at 20M events batch by batch in two
/// partitions and merged the sorted runs row by row, twice; one sort of the million rows costs
/// less than those merges. Under a limit the defaults stay: a sort in one
/// piece asks for its whole copy at once and fails where the merge spills. This is every
/// command's session, `query` and `serve` too: there one ORDER BY over more than
/// [`SORT_IN_ONE_PIECE`] sorts its batches on one thread instead of one per core (the final
/// merge is one thread either way).
fn sort_whole_tables(opts: &mut ConfigOptions, is_set: impl Fn(&str) -> bool) {
    if !is_set("DATAFUSION_OPTIMIZER_REPARTITION_SORTS") {
        opts.optimizer.repartition_sorts = false;
    }
    if !is_set("DATAFUSION_EXECUTION_SORT_IN_PLACE_THRESHOLD_BYTES") {
        opts.execution.sort_in_place_threshold_bytes = SORT_IN_ONE_PIECE;
    }
}

/// Rows per batch: `options.batch_size`, fewer under a small `--memory-limit`.
///
/// An aggregate that spills writes its groups' states in batches of this many rows; merging the
/// spilled runs must seat twice the largest batch of a run in one consumer's fair share of the
/// pool (the limit shared by up to about twice as many spilling operators as partitions), or it
/// fails. `fold_events`' state is about 700 bytes per lead (its events and snapshots): a batch of
/// 8,192 leads (5.5 MB) did not fit a 32 MB pool shared by two partitions. Budgeting 2 KiB per
/// row leaves room for leads with three times the usual events; limits of a few hundred MB and
/// more keep the full batch.
fn batch_rows(options: &EngineOptions) -> usize {
    let Some(limit) = options.memory_limit else {
        return options.batch_size;
    };
    let share = limit / (2 * options.partitions() + 1);
    let rows = share / (2 * 2048);
    let rows = rows.checked_ilog2().map_or(1, |log| 1 << log);
    rows.max(MIN_BATCH_ROWS).min(options.batch_size)
}

/// The fewest rows per batch [`batch_rows`] goes down to, however small the limit.
const MIN_BATCH_ROWS: usize = 512;

/// A memory pool that holds the total under the limit, remembers its peak and counts refused
/// requests (each one makes an operator spill to disk, or fail if it cannot), for `--timings`.
///
/// DataFusion's fair pool checks a spilling operator's request against its share of the pool
/// (the limit divided by the operators that spill), not against what the others hold: when an
/// operator starts while the others each hold the share of fewer, the total passes the limit
/// (measured 32.8 MB under a 32 MB limit). This pool also refuses a request that would take the
/// total past the limit (the inner pool's, when it has one); the operator then spills.
#[derive(Debug)]
pub struct MeteredPool {
    inner: Arc<dyn MemoryPool>,
    peak: AtomicUsize,
    refused: AtomicU64,
}

impl MeteredPool {
    fn new(inner: Arc<dyn MemoryPool>) -> Self {
        Self {
            inner,
            peak: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes back a granted request that took the total past the limit.
    fn hold_to_limit(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let MemoryLimit::Finite(limit) = self.inner.memory_limit() else {
            return Ok(());
        };
        let total = self.inner.reserved();
        if total <= limit {
            return Ok(());
        }
        self.inner.shrink(reservation, additional);
        Err(datafusion::common::DataFusionError::ResourcesExhausted(
            format!(
                "Failed to allocate additional {} for {} with {} already allocated for this reservation: the pool would hold {} of its {} limit",
                human_readable_size(additional),
                reservation.consumer().name(),
                human_readable_size(reservation.size()),
                human_readable_size(total),
                human_readable_size(limit)
            ),
        ))
    }

    fn note(&self) {
        self.peak
            .fetch_max(self.inner.reserved(), Ordering::Relaxed);
    }

    /// The most memory reserved at once, in bytes.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// How many requests for memory the bound refused.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl std::fmt::Display for MeteredPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl MemoryPool for MeteredPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let result = self
            .inner
            .try_grow(reservation, additional)
            .and_then(|()| self.hold_to_limit(reservation, additional));
        match &result {
            Ok(()) => self.note(),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// A line for `--timings`: the pool's peak and, under a bound, how often it made operators spill.
pub fn memory_report(ctx: &SessionContext, options: &EngineOptions) -> Option<String> {
    let pool = ctx.runtime_env().memory_pool.clone();
    let metered = pool.downcast_ref::<MeteredPool>()?;
    let mb = |b: usize| b as f64 / (1024.0 * 1024.0);
    Some(match options.memory_limit {
        Some(limit) => format!(
            "memory pool: peak {:.1} MB of the {:.1} MB limit; {} requests refused (operators spilled to disk)",
            mb(metered.peak()),
            mb(limit),
            metered.refused()
        ),
        None => format!("memory pool: peak {:.1} MB (no limit)", mb(metered.peak())),
    })
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
    fn sorts_without_a_limit_are_whole_unless_the_environment_says_otherwise() {
        let defaults = ConfigOptions::default();
        let mut opts = ConfigOptions::default();
        sort_whole_tables(&mut opts, |_| false);
        assert!(!opts.optimizer.repartition_sorts);
        assert_eq!(
            opts.execution.sort_in_place_threshold_bytes,
            SORT_IN_ONE_PIECE
        );
        let mut opts = ConfigOptions::default();
        sort_whole_tables(&mut opts, |_| true);
        assert_eq!(
            opts.optimizer.repartition_sorts,
            defaults.optimizer.repartition_sorts
        );
        assert_eq!(
            opts.execution.sort_in_place_threshold_bytes,
            defaults.execution.sort_in_place_threshold_bytes
        );

        let limited = session(&EngineOptions {
            memory_limit: Some(64 << 20),
            ..EngineOptions::default()
        })
        .unwrap();
        let state = limited.state();
        let limited = state.config_options();
        assert_eq!(
            limited.execution.sort_in_place_threshold_bytes,
            defaults.execution.sort_in_place_threshold_bytes
        );
    }

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

    #[test]
    fn the_pool_holds_the_total_under_the_limit() {
        let pool: Arc<dyn MemoryPool> =
            Arc::new(MeteredPool::new(Arc::new(FairSpillPool::new(100))));
        let spiller = |name: &str| {
            MemoryConsumer::new(name)
                .with_can_spill(true)
                .register(&pool)
        };
        let (a, b) = (spiller("a"), spiller("b"));
        a.try_grow(50).unwrap();
        b.try_grow(50).unwrap();
        // A third operator's share is a third of the pool, and it holds nothing: the fair pool
        // alone would grant it 20 more than the limit.
        let c = spiller("c");
        let refused = c.try_grow(20).unwrap_err();
        assert!(
            matches!(
                refused,
                datafusion::common::DataFusionError::ResourcesExhausted(_)
            ),
            "{refused}"
        );
        assert_eq!((pool.reserved(), c.size()), (100, 0));
        // Once another spills, the request fits.
        b.shrink(20);
        c.try_grow(20).unwrap();
        assert_eq!(pool.reserved(), 100);
        let metered = pool.downcast_ref::<MeteredPool>().unwrap();
        assert_eq!((metered.peak(), metered.refused()), (100, 1));
    }

    #[test]
    fn small_limits_make_smaller_batches() {
        let rows = |limit: Option<usize>, threads| {
            batch_rows(&EngineOptions {
                memory_limit: limit,
                threads,
                ..EngineOptions::default()
            })
        };
        assert_eq!(rows(None, 2), 8192);
        assert_eq!(rows(Some(2 << 30), 8), 8192);
        // 32 MB over five operators: 6.4 MB each, 1,638 rows of 4 KiB (a batch read twice).
        assert_eq!(rows(Some(32 << 20), 2), 1024);
        assert_eq!(rows(Some(1 << 20), 2), MIN_BATCH_ROWS);
    }
}
