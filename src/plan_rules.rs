//! leadscore's own physical plan rules: [`OnePhaseFold`], added to every session that plans
//! queries (local, the cluster's scheduler), and, in local sessions without a memory limit,
//! [`crate::lead_fold_exec::LeadFoldRule`] (see [`with_local_rules`]).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, internal_err};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::Partitioning;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;

/// The aggregates whose partial state is every input row: splitting them into a partial and a
/// final phase only copies the rows into lists and back.
const HOLISTIC: &[&str] = &[crate::udf::lead_fold::NAME, crate::udf::fold_events::NAME];

/// Adds leadscore's plan rules to a session being built.
pub fn with_rules(builder: SessionStateBuilder) -> SessionStateBuilder {
    builder.with_physical_optimizer_rule(Arc::new(OnePhaseFold))
}

/// [`with_rules`] and the rules whose operators only this process runs (never a cluster's
/// scheduler, whose executors would have to decode them): [`crate::lead_fold_exec::LeadFoldRule`],
/// unless the session's memory is `bounded` (its operator holds every event and cannot spill).
pub fn with_local_rules(builder: SessionStateBuilder, bounded: bool) -> SessionStateBuilder {
    let builder = with_rules(builder);
    if bounded {
        return builder;
    }
    builder.with_physical_optimizer_rule(Arc::new(crate::lead_fold_exec::LeadFoldRule))
}

/// Groups by lead in one phase: a `lead_fold` aggregate gets its input rows hash-partitioned by
/// the grouping columns and folds each partition's leads itself.
///
/// DataFusion plans every grouped aggregate over unpartitioned input in two phases: a partial
/// aggregate per input partition, its states hash-partitioned by group, and a final aggregate
/// merging them. `lead_fold`'s state is the lead's events themselves, so the partial phase
/// would build a hash table over every lead, copy each event into a list and send the lists on,
/// for the final phase to unpack and group again. This rule turns
///
/// ```text
/// AggregateExec(FinalPartitioned) <- RepartitionExec(Hash(keys)) <- AggregateExec(Partial) <- input
/// ```
///
/// into `AggregateExec(SinglePartitioned) <- RepartitionExec(Hash(keys)) <- input` when one of
/// the aggregates is `lead_fold` (without grouping sets or a limit). The result is the same; the
/// rows are hashed, sent and grouped once. Without the rule (e.g. on a scheduler that does not
/// have it) the two-phase plan gives the same numbers, more slowly.
///
/// With one thread (`--threads 1`) DataFusion joins the phases by coalescing the partial
/// states (`AggregateExec(Final) <- CoalescePartitionsExec <- AggregateExec(Partial) <- input`);
/// that becomes `AggregateExec(Single) <- CoalescePartitionsExec <- input` (a one-thread
/// `score` at 1M events: 14 % fewer instructions, most of them the states' building and merging).
#[derive(Debug, Default)]
pub struct OnePhaseFold;

impl PhysicalOptimizerRule for OnePhaseFold {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite_nodes(plan, one_phase)
    }

    fn name(&self) -> &str {
        "leadscore_one_phase_fold"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with each node that `rewrite` has a replacement for replaced, from the root down.
pub(crate) fn rewrite_nodes(
    plan: Arc<dyn ExecutionPlan>,
    rewrite: impl Fn(&Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|plan| {
        Ok(match rewrite(&plan)? {
            Some(rewritten) => Transformed::yes(rewritten),
            None => Transformed::no(plan),
        })
    })
    .data()
}

/// The one-phase form of `plan`, when it is the final aggregate of a two-phase fold.
fn one_phase(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = plan.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let (first, partitions) = match last.mode() {
        AggregateMode::FinalPartitioned => {
            let Some(exchange) = last.input().downcast_ref::<RepartitionExec>() else {
                return Ok(None);
            };
            let Partitioning::Hash(_, partitions) = exchange.partitioning() else {
                return Ok(None);
            };
            (exchange.input(), Some(*partitions))
        }
        AggregateMode::Final => {
            let Some(coalesce) = last.input().downcast_ref::<CoalescePartitionsExec>() else {
                return Ok(None);
            };
            (coalesce.input(), None)
        }
        _ => return Ok(None),
    };
    let Some(first) = first.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let group_by = first.group_expr();
    let holistic = first
        .aggr_expr()
        .iter()
        .any(|a| HOLISTIC.contains(&a.fun().name()));
    if *first.mode() != AggregateMode::Partial
        || !holistic
        || group_by.has_grouping_set()
        || group_by.expr().is_empty()
        || first.limit_options().is_some()
    {
        return Ok(None);
    }
    let (rows, mode): (Arc<dyn ExecutionPlan>, _) = match partitions {
        Some(partitions) => (
            Arc::new(RepartitionExec::try_new(
                Arc::clone(first.input()),
                Partitioning::Hash(group_by.input_exprs(), partitions),
            )?),
            AggregateMode::SinglePartitioned,
        ),
        None => (
            Arc::new(CoalescePartitionsExec::new(Arc::clone(first.input()))),
            AggregateMode::Single,
        ),
    };
    let single = AggregateExec::try_new(
        mode,
        group_by.clone(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        rows,
        first.input_schema(),
    )?;
    if single.schema().fields() != last.schema().fields() {
        return internal_err!(
            "one-phase fold: the rewritten aggregate's columns differ from the original's"
        );
    }
    Ok(Some(Arc::new(single)))
}

#[cfg(test)]
mod tests {
    use crate::context::{EngineOptions, session};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Events of three leads over several batches (so several input partitions), and a fold of
    /// them grouped by lead.
    const EVENTS: &str = "create table ev as select * from (values
        (1, 0, 10.0), (2, 1, 5.0), (1, 2, 20.0), (3, 3, null), (2, 4, -1.0),
        (1, 5, 1.0), (3, 6, 7.0), (2, 7, 2.0), (1, 8, 4.0), (3, 9, 3.0)
    ) t(lead, day, points)";
    const FOLD: &str = "select lead, count(*) as n, lead_fold(
            arrow_cast(day * 86400000000, 'Timestamp(Microsecond, Some(\"UTC\"))'),
            points, null, null, null, 0.0,
            '{\"threshold\":10,\"floor\":0,\"decay\":{\"kind\":\"exponential\",\"half_life_days\":2},\"from\":\"1970-01-11\",\"to\":\"1970-01-11\"}'
        ) as f
        from ev group by lead order by lead";

    async fn run(ctx: &SessionContext) -> (String, String) {
        run_fold(ctx, FOLD).await
    }

    async fn run_fold(ctx: &SessionContext, fold: &str) -> (String, String) {
        ctx.sql(EVENTS).await.unwrap().collect().await.unwrap();
        let df = ctx.sql(fold).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (shown, rows)
    }

    #[tokio::test]
    async fn a_fold_groups_in_one_phase_with_the_same_rows() {
        let options = EngineOptions {
            threads: 3,
            batch_size: 2,
            ..EngineOptions::default()
        };
        let (plan, rows) = run(&session(&options).unwrap()).await;
        assert!(plan.contains("mode=SinglePartitioned"), "{plan}");
        assert!(!plan.contains("mode=Partial"), "{plan}");
        assert!(
            plan.contains("RepartitionExec: partitioning=Hash([lead@0], 3)"),
            "{plan}"
        );

        // The same query planned by DataFusion alone: a partial and a final phase.
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(2);
        let mut plain = SessionContext::new_with_config(config);
        crate::udf::register_all(&mut plain).unwrap();
        let (two_phase, expected) = run(&plain).await;
        assert!(two_phase.contains("mode=Partial"), "{two_phase}");
        assert_eq!(rows, expected);
        assert!(rows.contains("| 1    | 4 |"), "{rows}");
    }

    #[tokio::test]
    async fn a_fold_on_one_thread_groups_in_one_phase_with_the_same_rows() {
        // The events in two inputs (as `lead_activity.sql`'s union gives them): one thread still
        // gets two partitions, which DataFusion folds in two phases joined by a coalesce.
        let fold = FOLD.replace(
            "from ev",
            "from (select * from ev where lead < 3 union all select * from ev where lead >= 3)",
        );
        let options = EngineOptions {
            threads: 1,
            batch_size: 2,
            ..EngineOptions::default()
        };
        let (plan, rows) = run_fold(&session(&options).unwrap(), &fold).await;
        assert!(plan.contains("AggregateExec: mode=Single,"), "{plan}");
        assert!(!plan.contains("mode=Partial"), "{plan}");
        assert!(!plan.contains("mode=Final"), "{plan}");

        let config = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(2);
        let mut plain = SessionContext::new_with_config(config);
        crate::udf::register_all(&mut plain).unwrap();
        let (two_phase, expected) = run_fold(&plain, &fold).await;
        assert!(two_phase.contains("mode=Partial"), "{two_phase}");
        assert!(two_phase.contains("CoalescePartitionsExec"), "{two_phase}");
        assert_eq!(rows, expected);
        assert!(rows.contains("| 1    | 4 |"), "{rows}");
    }
}
