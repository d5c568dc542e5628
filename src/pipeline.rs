//! Running a list of query files in order: expanding templates, planning with DDL and DML
//! refused, registering views, and writing steps and outputs to the staging area.
//! Commands (`score`, and the ones built on it) describe *what* to run; this module runs it, the
//! same way on one machine or a cluster.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::logical_expr::{Expr, LogicalPlan, SortExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;

use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::input::dir_url;
use crate::output::{PARTITION_COLUMN, Packing, Staging, store_rows, write_parquet_by_day};
use crate::progress::Progress;
use crate::queries::{Kind, QuerySource, Template};

/// One run of query files against a session.
pub struct Pipeline<'a> {
    pub ctx: &'a SessionContext,
    pub source: QuerySource,
    pub template: Template,
    pub staging: &'a Staging,
    /// Diagnostics to print (timings, a plan).
    pub engine: EngineOptions,
    /// Row counts of the steps and outputs written so far, in order.
    pub written: Vec<(String, u64)>,
    /// Progress bars for the queries that run.
    pub progress: Progress,
    /// Whether `lead_activity`'s fold runs in this process and lists the rows it rejects
    /// (`score::Inputs::fold_then`).
    pub local_fold: bool,
}

fn query_error(name: &str, e: impl std::fmt::Display) -> Error {
    let mut message = e.to_string();
    if message.contains(crate::cluster::CANCELLED) {
        message.push_str(
            "\nhint: the cluster cancelled the job, which a leadscore scheduler does when an \
             executor leaves mid-job (its recovery could give wrong numbers); --out is \
             unchanged: run the command again",
        );
    } else if message.contains(crate::cluster::UNREACHABLE)
        || crate::cluster::CONNECTION_LOST
            .iter()
            .any(|part| message.contains(part))
    {
        message.push_str(
            "\nhint: a process of the cluster could not be reached or broke off a transfer (an \
             executor that stopped mid-job, or the scheduler); --out is unchanged: run the \
             command again once the cluster is up",
        );
    }
    Error::Query {
        name: name.to_string(),
        message,
    }
}

impl<'a> Pipeline<'a> {
    /// A pipeline reading query text from `source`.
    pub fn new(
        ctx: &'a SessionContext,
        source: QuerySource,
        template: Template,
        staging: &'a Staging,
        engine: &EngineOptions,
    ) -> Self {
        Self {
            ctx,
            source,
            template,
            staging,
            engine: engine.clone(),
            written: Vec::new(),
            progress: Progress::off(),
            local_fold: false,
        }
    }

    /// Shows progress bars for the queries that read the events at `path` (`rows` rows), when
    /// the engine options ask for them.
    pub fn with_progress(mut self, path: &std::path::Path, rows: u64) -> Self {
        self.progress = Progress::new(self.engine.progress, path, rows);
        self
    }

    /// Plans query `name` (template expanded) into a DataFrame.
    pub async fn plan(&self, name: &str) -> Result<DataFrame> {
        let sql = self.source.expand(&self.template, name)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(&sql, options)
            .await
            .map_err(|e| query_error(name, e))
    }

    /// Runs query `name` and collects its rows (for small results).
    pub async fn collect(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let started = std::time::Instant::now();
        let df = self.plan(name).await?;
        let task = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        let watch = self.progress.watch(name, &plan);
        let batches = datafusion::physical_plan::collect(plan, task)
            .await
            .map_err(|e| query_error(name, e));
        drop(watch);
        if self.engine.timings {
            eprintln!("{name}: {:.3} s", started.elapsed().as_secs_f64());
        }
        batches
    }

    /// Runs one query as a view, a step or an output.
    pub async fn run(&mut self, name: &str, kind: Kind) -> Result<()> {
        self.run_wave(&[(name, kind)]).await
    }

    /// Plans query `name` for `kind`: a history output loses its final sort; with `--explain`
    /// naming it, the plan is printed with each operator's rows and time (running it once more).
    async fn prepare(&self, name: &str, kind: Kind) -> Result<DataFrame> {
        let mut df = self.plan(name).await?;
        if matches!(kind, Kind::History(_)) {
            df = without_final_sort(df);
        }
        if self.engine.explain.as_deref() == Some(name) {
            let plan = df.clone().explain(false, true)?.collect().await?;
            eprintln!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&plan)?
            );
        }
        Ok(df)
    }

    /// Runs `wave` (queries none of which reads another's result) at the same time, then
    /// registers their results; a view is registered at once.
    async fn run_wave(&mut self, wave: &[(&str, Kind)]) -> Result<()> {
        let started = std::time::Instant::now();
        let timings = self.engine.timings;
        let took = |name: &str| {
            if timings {
                eprintln!("{name}: {:.3} s", started.elapsed().as_secs_f64());
            }
        };
        let mut planned = Vec::with_capacity(wave.len());
        for &(name, kind) in wave {
            let df = self.prepare(name, kind).await?;
            if kind == Kind::View {
                let _ = self.ctx.deregister_table(name)?;
                self.ctx.register_table(name, df.into_view())?;
                took(name);
                continue;
            }
            if kind == Kind::ViewedOutput {
                // Registered before the wave's later queries are planned, which read it.
                let _ = self.ctx.deregister_table(name)?;
                self.ctx.register_table(name, df.clone().into_view())?;
            }
            planned.push((name, kind, df));
        }
        let this = &*self;
        let written =
            futures::future::try_join_all(planned.into_iter().map(|(name, kind, df)| async move {
                let written = this.produce(name, kind, df).await;
                took(name);
                written.map(|w| (name, kind, w))
            }))
            .await?;
        for (name, kind, w) in written {
            if kind == Kind::ViewedOutput {
                // Later queries keep reading the view.
                self.written.push((name.to_string(), w.rows));
                continue;
            }
            self.register(name, w).await?;
        }
        Ok(())
    }

    /// Writes rows computed outside the query files (e.g. one collected row per model) as the
    /// output table `name`, like a query of kind [`Kind::Output`].
    pub async fn write_batches(&mut self, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
        // Read in this process even with --cluster: the rows are here, not on the executors.
        let df = SessionContext::new().read_batches(batches)?;
        self.write(name, Kind::Output, df).await
    }

    /// Writes `df` as a step, an output or a history table, and registers it under `name`.
    async fn write(&mut self, name: &str, kind: Kind, df: DataFrame) -> Result<()> {
        let written = self.produce(name, kind, df).await?;
        self.register(name, written).await
    }

    /// Writes `df` as a step, an output or a history table into the staging area.
    async fn produce(&self, name: &str, kind: Kind, df: DataFrame) -> Result<Written> {
        let (dir, packing, partitioned) = match kind {
            Kind::Step => (self.staging.step_dir(name), Packing::Scratch, false),
            Kind::History(table) => (self.staging.table_dir(table), Packing::Published, true),
            _ => (self.staging.table_dir(name), Packing::Published, false),
        };
        if kind == Kind::Step && dir.exists() {
            // A step run again (once per model in `review`) starts from an empty directory.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("clearing {}", dir.display()), e))?;
        }
        let task = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        let ordering = column_ordering(plan.as_ref());
        let watch = self.progress.watch(name, &plan);
        let hold = (kind == Kind::Step).then(|| self.step_memory()).flatten();
        let written = if partitioned {
            write_parquet_by_day(plan, task, &dir, packing)
                .await
                .map(|(schema, rows)| (schema, rows, None))
        } else {
            store_rows(plan, task, &dir, packing, hold)
                .await
                .map(|s| (s.schema, s.rows, s.batches))
        };
        drop(watch);
        let (schema, rows, batches) = written.map_err(|e| match e {
            Error::Engine(e)
                if partitioned
                    && matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) =>
            {
                // The fold builds every snapshot row of a partition's leads at once.
                query_error(
                    name,
                    format!(
                        "{e}\nhint: a history holds a row per lead and snapshot day, built at \
                         once: raise --memory-limit, or backfill fewer days per run (a shorter \
                         --from/--to range, or --every week)"
                    ),
                )
            }
            Error::Engine(e) => query_error(name, e),
            other => other,
        })?;
        let dir = match batches {
            Some(_) => dir,
            None => self.staging.ship(&dir).await?,
        };
        Ok(Written {
            dir,
            schema,
            rows,
            partitioned,
            batches,
            ordering,
        })
    }

    /// How many bytes of a step's rows may stay in memory instead of being written to the
    /// staging area: [`STEP_MEMORY`] when the queries run in this process without
    /// `--memory-limit`; none on a cluster (its executors read steps from the shared
    /// filesystem) or under a limit (the rows would sit outside the bounded pool).
    fn step_memory(&self) -> Option<usize> {
        (self.engine.cluster.is_none() && self.engine.memory_limit.is_none()).then_some(STEP_MEMORY)
    }

    /// Registers a written result under `name`, for the queries after it.
    async fn register(&mut self, name: &str, w: Written) -> Result<()> {
        let _ = self.ctx.deregister_table(name)?;
        if let Some(mut batches) = w.batches {
            // The declared order lets a query that sorts the step the same way (`lead_scores`
            // by lead) merge instead of sorting. A sorted partition is cut into runs, one per
            // core: DataFusion 55 would otherwise split it for the cores itself and forget the
            // order it declared.
            if !w.ordering.is_empty() && batches.len() == 1 {
                let cores = self.ctx.state().config().target_partitions();
                let run = batches[0].len().div_ceil(cores).max(1);
                let sorted = batches.pop().unwrap_or_default();
                batches = sorted.chunks(run).map(<[RecordBatch]>::to_vec).collect();
            }
            let table = datafusion::datasource::MemTable::try_new(w.schema, batches)?
                .with_sort_order(
                    vec![w.ordering]
                        .into_iter()
                        .filter(|o| !o.is_empty())
                        .collect(),
                );
            self.ctx.register_table(name, Arc::new(table))?;
            self.written.push((name.to_string(), w.rows));
            return Ok(());
        }
        let mut options = ParquetReadOptions::default().schema(&w.schema);
        let partition_cols = [(PARTITION_COLUMN.to_string(), DataType::Date32)];
        if w.partitioned {
            options = options.table_partition_cols(partition_cols.to_vec());
        }
        self.ctx
            .register_parquet(name, dir_url(&w.dir), options)
            .await?;
        self.written.push((name.to_string(), w.rows));
        Ok(())
    }

    /// Runs each `(name, kind)` in order, except that consecutive steps and outputs none of
    /// which names another in its SQL run at the same time (e.g. `lead_scores` and
    /// `lead_product_scores`, which both read `lead_activity`): a query that writes one sorted
    /// file leaves a core idle while it writes, which the other then uses. Under
    /// `--memory-limit` each query runs alone, so that it has the whole pool.
    pub async fn run_all(&mut self, queries: &[(&str, Kind)]) -> Result<()> {
        let together = self.engine.memory_limit.is_none();
        let mut i = 0;
        while i < queries.len() {
            let mut end = i + 1;
            if together && queries[i].1 != Kind::View {
                // The results the next query may not read: those written in this wave (a
                // viewed output is read as a view, planned before the queries after it).
                let mut names = vec![];
                if queries[i].1 != Kind::ViewedOutput {
                    names.push(queries[i].0);
                }
                while let Some(&(next, kind)) = queries.get(end) {
                    if kind == Kind::View {
                        break;
                    }
                    let sql = self.source.expand(&self.template, next)?;
                    if names.iter().any(|n| names_table(&sql, n)) {
                        break;
                    }
                    if kind != Kind::ViewedOutput {
                        names.push(next);
                    }
                    end += 1;
                }
            }
            self.run_wave(&queries[i..end]).await?;
            i = end;
        }
        Ok(())
    }

    /// With `--timings`, prints the memory pool's peak and how often it made operators spill.
    pub fn report_memory(&self) {
        if self.engine.timings
            && let Some(line) = crate::context::memory_report(self.ctx, &self.engine)
        {
            eprintln!("{line}");
        }
    }

    /// The rows a step or output was written with.
    pub fn rows(&self, name: &str) -> u64 {
        self.written
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, r)| *r)
    }
}

/// What [`Pipeline::produce`] wrote.
struct Written {
    dir: std::path::PathBuf,
    schema: datafusion::arrow::datatypes::SchemaRef,
    rows: u64,
    partitioned: bool,
    /// The rows themselves, when a step stayed in memory (`dir` is then empty).
    batches: Option<Vec<Vec<RecordBatch>>>,
    /// The order each partition's rows come in, as the plan declared it (by column name).
    ordering: Vec<SortExpr>,
}

/// The most bytes of one step's rows kept in memory (see [`Pipeline::step_memory`]): `score`'s
/// largest step, `lead_activity`, takes about 180 bytes per lead, so up to about twelve million
/// leads; past that the step is written to the staging area as it is computed. Writing it costs
/// more than time: the Parquet encoders and the readers after it held more memory than the rows
/// (`many-leads` in benches/matrix.py, 5M leads, peaked higher with the step written).
const STEP_MEMORY: usize = 2048 << 20;

/// Whether `sql` names `table`: the name as a whole word (comments count too, which can only
/// make a query wait when it need not).
fn names_table(sql: &str, table: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(table).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + table.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The order of `plan`'s output partitions as sort expressions over its columns by name, as
/// far as it is plain columns (empty when there is none).
fn column_ordering(plan: &dyn ExecutionPlan) -> Vec<SortExpr> {
    let Some(ordering) = plan.output_ordering() else {
        return Vec::new();
    };
    ordering
        .iter()
        .map_while(|s| {
            let column = s.expr.downcast_ref::<Column>()?;
            Some(SortExpr::new(
                Expr::Column(datafusion::common::Column::new_unqualified(column.name())),
                !s.options.descending,
                s.options.nulls_first,
            ))
        })
        .collect()
}

/// A history table is written one file per day and partition, so the query's final ORDER BY (a
/// sort of every row, for `score`'s one-day tables) is dropped: rows within a day come in the
/// order the partitions produce them.
fn without_final_sort(df: DataFrame) -> DataFrame {
    let (state, plan) = df.into_parts();
    match plan {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => {
            DataFrame::new(state, sort.input.as_ref().clone())
        }
        plan => DataFrame::new(state, plan),
    }
}

/// Runs an ad-hoc aggregate over registered tables and returns the first column of the first row
/// as an integer (0 when null): used for run summaries.
pub async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    first_count(&batches)
}

/// The first column of the first row of `batches` as an integer (0 when there is none, or null).
pub fn first_count(batches: &[RecordBatch]) -> Result<u64> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(0);
    };
    let v = datafusion::common::ScalarValue::try_from_array(batch.column(0), 0)?;
    Ok(
        match v.cast_to(&datafusion::arrow::datatypes::DataType::UInt64)? {
            datafusion::common::ScalarValue::UInt64(Some(n)) => n,
            _ => 0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{names_table, query_error};

    #[test]
    fn a_lost_cluster_process_gets_a_hint() {
        let message = |e: &str| query_error("lead_scores", e).to_string();
        let unreachable = "Execution error: GrpcConnectionError(\"Error connecting to Ballista \
                           scheduler or executor at http://127.0.0.1:45021: connection refused\")";
        assert!(message(unreachable).contains("could not be reached"));
        assert!(message("Job abc failed: Cancelled").contains("cancelled the job"));
        let broken = "Arrow error: External error: code: 'Unknown error', message: \"h2 protocol \
                      error: error reading a body from connection\", source: hyper::Error(Body, \
                      Error { kind: Io(Custom { kind: BrokenPipe, error: \"stream closed because \
                      of a broken pipe\" }) })";
        assert!(message(broken).contains("could not be reached"));
        assert!(!message("Arrow error: divide by zero").contains("hint"));
    }

    #[test]
    fn a_table_is_named_as_a_whole_word() {
        assert!(names_table("select * from lead_scores s", "lead_scores"));
        assert!(names_table("from lead_scores\n", "lead_scores"));
        assert!(names_table("join lead_scores)", "lead_scores"));
        assert!(!names_table("from lead_score_history", "lead_scores"));
        assert!(!names_table("from my_lead_scores", "lead_scores"));
        assert!(!names_table("from lead_scores2", "lead_scores"));
        assert!(!names_table("from lead_activity", "lead_scores"));
    }
}
