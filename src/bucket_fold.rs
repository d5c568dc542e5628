//! The bucketed fold without an exchange of rows: [`BucketFoldExec`] and the rule that plans it,
//! [`BucketFold`].
//!
//! `lead_activity.sql` groups its rows by bucket of leads (`lead_id >> lead_bits`, see
//! `udf::lead_buckets`) for `fold_events`. DataFusion plans that as a hash repartition of every
//! row by bucket followed by one aggregate per partition: each input row is hashed, copied column
//! by column into the batch of its partition (null masks bit by bit), and the batches coalesced,
//! only for the fold to copy the row once more into its own storage. At 1M events that exchange
//! was about a tenth of a `score` run's instructions.
//!
//! [`BucketFoldExec`] folds each input partition where it is read instead: a few workers (one per
//! output partition) take the input partitions one after another, each into an accumulator of
//! its own, all numbering the buckets alike (one shared numbering, first come first numbered).
//! When the input ends the accumulators merge: the same group of each holds different rows of
//! the same bucket, and the fold keeps a group's events in chunks, so merging moves chunks, not
//! events (`LeadBuckets::absorb`). The merged groups are then cut into one range per output
//! partition, and each partition emits its range: the same rows as the aggregate, one per
//! bucket, in other partitions and another order.
//!
//! The rule plans it only for a session of this process (not a cluster's scheduler, whose
//! executors could not run it) and only for a bucketed `fold_events` (`lead_bits` > 0, which
//! `score` never chooses under `--memory-limit`): like DataFusion's aggregate without a limit, it
//! keeps every group until the input ends.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::udaf::AggregateFunctionExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

use crate::udf::lead_buckets::LeadBuckets;

/// Plans [`BucketFoldExec`] in place of `AggregateExec(SinglePartitioned) <-
/// RepartitionExec(Hash)` when the aggregate is one bucketed `fold_events` grouped by one
/// integer key (what `plan_rules::OnePhaseFold` leaves of `lead_activity.sql`'s fold).
#[derive(Debug, Default)]
pub struct BucketFold;

impl PhysicalOptimizerRule for BucketFold {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::plan_rules::rewrite_nodes(plan, |node| {
            Ok(BucketFoldExec::replacing(node)?
                .map(|exec| Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        "leadscore_bucket_fold"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A bucketed `fold_events` grouped by bucket, over unpartitioned input (see the module's text).
#[derive(Debug)]
pub struct BucketFoldExec {
    input: Arc<dyn ExecutionPlan>,
    /// The bucket of a row (`lead_id >> lead_bits`), an `Int64`.
    key: Arc<dyn PhysicalExpr>,
    fold: Arc<AggregateFunctionExpr>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
    /// What one execution shares between its output partitions.
    run: Arc<OnceCell<Shared>>,
}

/// Each output partition's rows, or the error that ended the fold.
type Shared = std::result::Result<Vec<Mutex<Option<Vec<RecordBatch>>>>, Arc<DataFusionError>>;

/// Bucket numbers by key (`None` for the null key), with [`KeyHasher`].
type Buckets = HashMap<Option<i64>, usize, BuildHasherDefault<KeyHasher>>;

impl BucketFoldExec {
    /// The fold that replaces `plan`, if `plan` is a bucketed fold over an exchange by bucket.
    pub fn replacing(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Self>> {
        let Some(aggregate) = plan.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let Some(exchange) = aggregate.input().downcast_ref::<RepartitionExec>() else {
            return Ok(None);
        };
        let (group_by, folds, filters) = (
            aggregate.group_expr(),
            aggregate.aggr_expr(),
            aggregate.filter_expr(),
        );
        let partitions = match exchange.partitioning() {
            Partitioning::Hash(_, n) => *n,
            _ => return Ok(None),
        };
        let ([(key, _)], [fold], [filter]) = (group_by.expr(), folds, filters) else {
            return Ok(None);
        };
        let input = exchange.input();
        if *aggregate.mode() != AggregateMode::SinglePartitioned
            || group_by.has_grouping_set()
            || aggregate.limit_options().is_some()
            || fold.fun().name() != crate::udf::fold_events::NAME
            || key.data_type(&input.schema())? != DataType::Int64
        {
            return Ok(None);
        }
        if !buckets_of(fold).is_ok_and(|b| b.lead_bits() > 0) {
            return Ok(None);
        }
        let schema = aggregate.schema();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Some(Self {
            input: Arc::clone(input),
            key: Arc::clone(key),
            fold: Arc::clone(fold),
            filter: filter.clone(),
            properties: Arc::new(properties),
            run: Arc::new(OnceCell::new()),
        }))
    }

    fn with_input(&self, input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            input,
            key: Arc::clone(&self.key),
            fold: Arc::clone(&self.fold),
            filter: self.filter.clone(),
            properties: Arc::clone(&self.properties),
            run: Arc::new(OnceCell::new()),
        }
    }

    fn partitions(&self) -> usize {
        self.properties.partitioning.partition_count()
    }

    /// Reads and folds every input partition, merges the workers' folds, cuts them into one
    /// range of groups per output partition and emits the ranges side by side. (Each in a task
    /// of its own: an output partition's consumer would find the others' consumers waiting, woken
    /// where the runtime does not hand them to another thread while it emits.)
    async fn fold_all(
        self: Arc<Self>,
        context: Arc<TaskContext>,
    ) -> Result<Vec<Mutex<Option<Vec<RecordBatch>>>>> {
        let inputs = self.input.output_partitioning().partition_count();
        let workers = self.partitions().min(inputs).max(1);
        let next = Arc::new(AtomicUsize::new(0));
        let numbering = Arc::new(Mutex::new(Numbering::default()));
        let tasks: Vec<SpawnedTask<Result<LeadBuckets>>> = (0..workers)
            .map(|_| {
                let worker = Worker {
                    plan: Arc::clone(&self),
                    next: Arc::clone(&next),
                    numbering: Arc::clone(&numbering),
                    context: Arc::clone(&context),
                };
                SpawnedTask::spawn(worker.run(inputs))
            })
            .collect();
        let mut merged: Option<LeadBuckets> = None;
        for task in tasks {
            let fold = task
                .join_unwind()
                .await
                .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
            match merged.as_mut() {
                None => merged = Some(fold),
                Some(all) => all.absorb(fold)?,
            }
        }
        let Some(mut all) = merged else {
            return internal_err!("bucket fold: no worker ran");
        };
        let mut keys = std::mem::take(&mut lock(&numbering)?.keys);
        all.reserve(keys.len());
        // Ranges of about equal size, cut where whole chunks of events move.
        let step = all.split_groups();
        let per = keys.len().div_ceil(self.partitions()).div_ceil(step) * step;
        let mut pieces = Vec::with_capacity(self.partitions());
        for _ in 1..self.partitions() {
            let n = per.min(keys.len());
            let rest = keys.split_off(n);
            pieces.push((all.split_first(n), std::mem::replace(&mut keys, rest)));
        }
        pieces.push((all, keys));
        let batch_rows = context.session_config().batch_size();
        let emitting: Vec<SpawnedTask<Result<Vec<RecordBatch>>>> = pieces
            .into_iter()
            .enumerate()
            .map(|(p, (fold, keys))| {
                let memory = MemoryConsumer::new(format!("BucketFoldExec[{p}]"))
                    .register(context.memory_pool());
                let schema = self.schema();
                SpawnedTask::spawn(async move {
                    memory.try_grow(fold.size())?;
                    emit(fold, keys, &schema, batch_rows)
                })
            })
            .collect();
        let mut ranges = Vec::with_capacity(emitting.len());
        for task in emitting {
            let batches = task
                .join_unwind()
                .await
                .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
            ranges.push(Mutex::new(Some(batches)));
        }
        Ok(ranges)
    }
}

/// One worker: takes input partitions until none is left, folding their rows into its own
/// accumulator with the shared numbering of buckets.
struct Worker {
    plan: Arc<BucketFoldExec>,
    next: Arc<AtomicUsize>,
    numbering: Arc<Mutex<Numbering>>,
    context: Arc<TaskContext>,
}

impl Worker {
    async fn run(self, inputs: usize) -> Result<LeadBuckets> {
        let mut fold = buckets_of(&self.plan.fold)?;
        let memory =
            MemoryConsumer::new("BucketFoldExec[worker]").register(self.context.memory_pool());
        let mut known = Buckets::default();
        let mut groups: Vec<usize> = Vec::new();
        let arguments = self.plan.fold.expressions();
        loop {
            let partition = self.next.fetch_add(1, Ordering::Relaxed);
            if partition >= inputs {
                return Ok(fold);
            }
            let mut stream = self.read_ahead(partition);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let rows = batch.num_rows();
                let keys = self.plan.key.evaluate(&batch)?.into_array(rows)?;
                let total =
                    self.number(keys.as_primitive::<Int64Type>(), &mut known, &mut groups)?;
                let values = arguments
                    .iter()
                    .map(|e| e.evaluate(&batch)?.into_array(rows))
                    .collect::<Result<Vec<ArrayRef>>>()?;
                let filter = self.filter_of(&batch)?;
                fold.update_batch(&values, &groups, filter.as_ref(), total)?;
                memory.try_resize(fold.size())?;
            }
        }
    }

    /// Input partition `partition`, read by a task of its own a few batches ahead of the fold,
    /// so that the fold does not wait for the reads (the exchange it replaces did the same).
    fn read_ahead(&self, partition: usize) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStream::builder(self.plan.input.schema(), 2);
        let (tx, input, context) = (
            builder.tx(),
            Arc::clone(&self.plan.input),
            Arc::clone(&self.context),
        );
        builder.spawn(async move {
            let mut stream = input.execute(partition, context)?;
            while let Some(batch) = stream.next().await {
                if tx.send(batch).await.is_err() {
                    break; // the fold stopped
                }
            }
            Ok(())
        });
        builder.build()
    }

    /// Numbers the rows' buckets into `groups` (the worker remembers the numbers it has seen;
    /// others come from the shared numbering) and returns how many groups there are now.
    fn number(
        &self,
        keys: &Int64Array,
        known: &mut Buckets,
        groups: &mut Vec<usize>,
    ) -> Result<usize> {
        groups.clear();
        groups.reserve(keys.len());
        let mut shared = None;
        for (i, &key) in keys.values().iter().enumerate() {
            let key = keys.is_valid(i).then_some(key);
            let g = match known.get(&key) {
                Some(&g) => g,
                None => {
                    if shared.is_none() {
                        shared = Some(lock(&self.numbering)?);
                    }
                    let g = shared.as_mut().expect("locked").number(key);
                    known.insert(key, g);
                    g
                }
            };
            groups.push(g);
        }
        let total = match shared {
            Some(numbering) => numbering.keys.len(),
            None => lock(&self.numbering)?.keys.len(),
        };
        Ok(total)
    }

    fn filter_of(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        let Some(filter) = &self.plan.filter else {
            return Ok(None);
        };
        let rows = filter.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(Some(rows.as_boolean().clone()))
    }
}

/// The buckets seen so far, numbered in the order first seen.
#[derive(Default)]
struct Numbering {
    number: Buckets,
    keys: Vec<Option<i64>>,
}

impl Numbering {
    fn number(&mut self, key: Option<i64>) -> usize {
        *self.number.entry(key).or_insert_with(|| {
            self.keys.push(key);
            self.keys.len() - 1
        })
    }
}

/// A hasher for bucket numbers: a multiplication per word (the keys are small integers, and
/// few: DataFusion's hash of a row would be several times the work).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    // An `Option`'s discriminant.
    fn write_isize(&mut self, n: isize) {
        self.write_i64(n as i64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_i64(n as i64);
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| DataFusionError::Execution("bucket fold: a worker panicked".to_string()))
}

/// A fresh accumulator of `fold`, which must be `fold_events` with lead arguments.
fn buckets_of(fold: &AggregateFunctionExpr) -> Result<LeadBuckets> {
    let accumulator: Box<dyn Any + Send> = fold.create_groups_accumulator()?;
    match accumulator.downcast::<LeadBuckets>() {
        Ok(buckets) => Ok(*buckets),
        Err(_) => internal_err!("bucket fold: {} is not a fold over buckets", fold.name()),
    }
}

impl DisplayAs for BucketFoldExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "BucketFoldExec: key={}, fold={}, partitions={}",
                self.key,
                self.fold.name(),
                self.partitions()
            ),
            DisplayFormatType::TreeRender => write!(f, "key={}", self.key),
        }
    }
}

impl ExecutionPlan for BucketFoldExec {
    fn name(&self) -> &str {
        "BucketFoldExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut exprs = vec![Arc::clone(&self.key)];
        exprs.extend(self.fold.expressions());
        exprs.extend(self.filter.clone());
        for e in &exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.len() {
            1 => Ok(Arc::new(self.with_input(children.swap_remove(0)))),
            n => internal_err!("BucketFoldExec has one input, given {n}"),
        }
    }

    // A new execution folds afresh (the rows of one are handed out once).
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(self.with_input(Arc::clone(&self.input))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.partitions() {
            return internal_err!("BucketFoldExec has no partition {partition}");
        }
        let me = Arc::new(self.with_input(Arc::clone(&self.input)));
        let run = Arc::clone(&self.run);
        let batches = futures::stream::once(async move {
            let ranges = run
                .get_or_init(|| async { Box::pin(me.fold_all(context)).await.map_err(Arc::new) })
                .await
                .as_ref()
                .map_err(|e| DataFusionError::Shared(Arc::clone(e)))?;
            let batches = lock(&ranges[partition])?.take();
            match batches {
                Some(batches) => Ok(batches),
                None => internal_err!("BucketFoldExec partition {partition} ran twice"),
            }
        })
        .flat_map(|batches| {
            futures::stream::iter(match batches {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }
}

/// The rows of a range of groups, `fold` and their `keys` (`None` for the null key's group):
/// each group's key and fold, `batch_rows` groups to a batch (slices of one evaluation, as
/// DataFusion's aggregate emits).
fn emit(
    mut fold: LeadBuckets,
    keys: Vec<Option<i64>>,
    schema: &SchemaRef,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let folded = fold.evaluate(EmitTo::All)?;
    let keys: ArrayRef = Arc::new(Int64Array::from(keys));
    let all = RecordBatch::try_new(Arc::clone(schema), vec![keys, folded])?;
    let rows = all.num_rows();
    Ok((0..rows)
        .step_by(batch_rows.max(1))
        .map(|at| all.slice(at, batch_rows.min(rows - at)))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::context::{EngineOptions, session};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// 30,000 rows of 12,000 leads scattered over 750 buckets of 16: page views worth 10 or 1
    /// points, answers, four products (seen in a different order by each input partition),
    /// copies marked dropped, and a leads-table row (fit, account) for every third lead.
    const ROWS: &str = "create table rows as
        with e as (
            select value as i, (value * 7919) % 12000 as lead_id from range(0, 30000)
        )
        select lead_id,
            arrow_cast(1767225600000000 + (i % 30) * 86400000000 + i,
                       'Timestamp(Microsecond, Some(\"UTC\"))') as ts,
            case when i % 5 = 0 then 'nps_response' else 'page_view' end as action,
            case when i % 3 = 0 then '/pricing' else '/blog' end as asset,
            case i % 4 when 0 then 'crm' when 1 then 'ads' when 2 then null else 'mail' end
                as product,
            cast(i % 11 as double) as value,
            cast(null as double) as fit, cast(null as varchar) as account_id,
            i % 97 = 0 as dropped
        from e
        union all
        select lead_id, null, null, null, null, null, 1.0, 'acct' || (lead_id % 50), false
        from (select value * 3 as lead_id from range(0, 4000))";

    fn fold(bits: u32) -> String {
        format!(
            "select s['lead_id'] as lead, s['as_of'] as as_of, s['account_id'] as account,
                s['engagement'] as engagement, s['fit'] as fit, s['mql_at'] as mql_at,
                s['matched'] as matched, s['unmatched'] as unmatched, s['nps'] as nps,
                s['products'] as products, s['product_scores'] as product_scores
             from (
                select unnest(fold_events(ts, action, asset, product, value, fit,
                    '[{{\"action\":\"page_view\",\"assets\":[\"/pricing*\"],\"points\":10,\"stage_rank\":1}},
                      {{\"action\":\"page_view\",\"points\":1}}]',
                    '{{\"threshold\":30,\"floor\":0,\"decay\":{{\"kind\":\"exponential\",\"half_life_days\":7}},
                       \"from\":\"2026-01-20\",\"to\":\"2026-01-31\",\"every_days\":3,\"stages\":1,
                       \"products\":true,\"lead_bits\":{bits}}}',
                    dropped, lead_id, account_id) filter (where lead_id is not null)) as s
                from rows group by lead_id >> {bits}
             ) order by lead, as_of"
        )
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        ctx.sql(ROWS).await.unwrap().collect().await.unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        let batches = df.collect().await.unwrap();
        (shown, pretty_format_batches(&batches).unwrap().to_string())
    }

    #[tokio::test]
    async fn a_bucketed_fold_without_an_exchange_gives_the_aggregates_rows() {
        let options = EngineOptions {
            threads: 3,
            batch_size: 1000,
            ..EngineOptions::default()
        };
        let (plan, rows) = run(&session(&options).unwrap(), &fold(4)).await;
        assert!(plan.contains("BucketFoldExec"), "{plan}");
        assert!(
            !plan.contains("RepartitionExec: partitioning=Hash"),
            "{plan}"
        );

        // DataFusion alone: an exchange by bucket and an aggregate (in two phases).
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(1000);
        let mut plain = SessionContext::new_with_config(config);
        crate::udf::register_all(&mut plain).unwrap();
        let (exchanged, expected) = run(&plain, &fold(4)).await;
        assert!(!exchanged.contains("BucketFoldExec"), "{exchanged}");
        assert_eq!(rows, expected);
        // Snapshots of the 12,000 leads: four for a lead with a leads-table row, one for each
        // snapshot after the first event for the others.
        assert_eq!(rows.lines().count(), 4 + 41_600, "{}", &rows[..2000]);
        assert!(rows.contains("| acct"), "{}", &rows[..2000]);
        assert!(rows.contains("crm"), "{}", &rows[..2000]);
    }

    #[tokio::test]
    async fn a_group_of_two_buckets_is_refused() {
        let options = EngineOptions {
            threads: 3,
            batch_size: 1000,
            ..EngineOptions::default()
        };
        let ctx = session(&options).unwrap();
        ctx.sql(ROWS).await.unwrap().collect().await.unwrap();
        let sql = fold(4).replace("group by lead_id >> 4", "group by lead_id >> 5");
        let df = ctx.sql(&sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        assert!(shown.contains("BucketFoldExec"), "{shown}");
        let error = df.collect().await.unwrap_err().to_string();
        assert!(error.contains("of different buckets"), "{error}");
    }
}
