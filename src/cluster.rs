//! Running on Apache DataFusion Ballista: the scheduler and executor processes
//! (`leadscore scheduler`, `leadscore executor`), built from the Ballista crates with every
//! leadscore function registered, and the client session that `--cluster` gives the scoring
//! commands.
//!
//! Ballista sends functions by name: the client plans with them, the scheduler's session builder
//! knows them (to plan stages), and each executor's function registry has them (to run tasks).
//! leadscore's functions take their parameters (rules, decay, snapshot days) as constant
//! arguments, so the default codecs carry them and no extension codec is needed.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::RuntimeProducer;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::{BallistaCluster, ClusterStateEvent, ClusterStateEventStream};
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service};
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use futures::StreamExt;

use crate::error::{Error, Result};

/// Where `--cluster` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// A Ballista scheduler at `df://host:port`.
    Remote(String),
    /// A scheduler and an executor started inside this process (for trying it out and tests).
    Standalone,
}

impl std::str::FromStr for Cluster {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "standalone" {
            return Ok(Cluster::Standalone);
        }
        let rest = s.strip_prefix("df://").ok_or_else(|| {
            Error::Usage(format!(
                "--cluster {s:?}: use df://HOST:PORT (a Ballista scheduler) or standalone"
            ))
        })?;
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Cluster::Remote(s.to_string()))
            }
            _ => Err(Error::Usage(format!(
                "--cluster {s:?}: use df://HOST:PORT, e.g. df://127.0.0.1:50050"
            ))),
        }
    }
}

/// A session state with DataFusion's defaults and every leadscore function.
/// Object-store URLs resolve through this process's registry (see `storage`).
fn state_with_functions(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(crate::storage::registry())
        .build_arc()?;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    let mut state = crate::plan_rules::with_rules(state).build();
    crate::udf::register_all(&mut state)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    Ok(state)
}

/// A client session on `cluster`, configured like a local one (`local` gives the settings).
pub async fn client_session(cluster: &Cluster, local: &SessionContext) -> Result<SessionContext> {
    // Without the rules of operators that only a local session runs (a cluster's executors
    // could not decode them), should any plan be made from the client's state.
    let local_only = crate::lead_fold_exec::LeadFoldRule.name().to_string();
    let rules = local
        .state()
        .physical_optimizers()
        .iter()
        .filter(|rule| rule.name() != local_only)
        .cloned()
        .collect();
    let state = SessionStateBuilder::new_from_existing(local.state())
        .with_physical_optimizer_rules(rules)
        .build();
    let cannot = |e: datafusion::error::DataFusionError| {
        Error::Config(format!("cannot use the cluster: {e}"))
    };
    let mut ctx = match cluster {
        Cluster::Remote(url) => SessionContext::remote_with_state(url, state)
            .await
            .map_err(cannot)?,
        Cluster::Standalone => SessionContext::standalone_with_state(state)
            .await
            .map_err(cannot)?,
    };
    // Turning the state into a Ballista client may reset its function lists.
    crate::udf::register_all(&mut ctx)?;
    // The static distributed planner. With adaptive planning (Ballista 55's default), losing an
    // executor mid-job rolled its stages back and the job never resumed (also with short
    // heartbeats). leadscore's scheduler cancels running jobs on such a loss anyway (see
    // `cancel_jobs_on_lost_executors`); the static planner is the one measured there.
    ctx.sql("set ballista.planner.adaptive.enabled = false")
        .await
        .map_err(cannot)?
        .collect()
        .await
        .map_err(cannot)?;
    Ok(ctx)
}

/// What `leadscore scheduler` needs.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// Seconds without a heartbeat after which an executor is taken as lost (its running tasks
    /// are scheduled again on the others).
    pub executor_timeout: u64,
}

/// Runs a Ballista scheduler that knows leadscore's functions, and cancels the running jobs
/// when an executor is lost, until the process stops.
pub async fn run_scheduler(opts: &SchedulerOptions) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: opts.bind.ip().to_string(),
        bind_port: opts.bind.port(),
        external_host: opts.bind.ip().to_string(),
        override_session_builder: Some(Arc::new(state_with_functions)),
        // Ballista's defaults (180 s, checked every 15 s, with executors beating every 60 s)
        // leave a job waiting minutes for the tasks of an executor that died; leadscore's
        // executors beat every few seconds, so a lost one is noticed within the timeout.
        executor_timeout_seconds: opts.executor_timeout,
        expire_dead_executor_interval_seconds: (opts.executor_timeout / 6).max(1),
        no_executors_grace_period_seconds: opts.executor_timeout,
        ..SchedulerConfig::default()
    };
    let cannot = |e: ballista_core::error::BallistaError| {
        Error::Config(format!("cannot start the scheduler: {e}"))
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(cannot)?;
    config.validate().map_err(cannot)?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(cannot)?;
    let events = scheduler.cluster_state_events().await.map_err(cannot)?;
    tokio::spawn(cancel_jobs_on_lost_executors(scheduler.clone(), events));
    start_grpc_service(opts.bind, scheduler)
        .await
        .map_err(|e| Error::Config(format!("the scheduler stopped: {e}")))
}

/// The message a client gets for a job cancelled by [`cancel_jobs_on_lost_executors`] ends with
/// this (Ballista's own wording).
pub const CANCELLED: &str = "failed: Cancelled";

/// The message a client gets when it cannot reach an executor (e.g. to fetch a finished stage's
/// rows from one that has just died) or the scheduler contains this (Ballista's own wording).
pub const UNREACHABLE: &str = "Error connecting to Ballista scheduler or executor";

/// Parts of the messages a client gets when a connection to an executor breaks while it streams
/// rows (the executor died mid-transfer): the HTTP/2 layer's own wording.
pub const CONNECTION_LOST: [&str; 3] = [
    "h2 protocol error",
    "error reading a body from connection",
    "stream closed because of a broken pipe",
];

/// Cancels every running job whenever an executor leaves the cluster (it died, stopped
/// heartbeating, or could not be reached). Ballista 55 would instead roll the jobs' stages back
/// and rerun the lost tasks, but in our tests of killing an executor mid-run that recovery
/// sometimes never resumed and, worse, sometimes finished with wrong numbers (about half of the
/// rows of a history differed from a local run). A cancelled job fails the client's run with a
/// message and leaves `--out` as it was; jobs submitted afterwards run on the executors left.
async fn cancel_jobs_on_lost_executors(
    scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
    mut events: ClusterStateEventStream,
) {
    while let Some(event) = events.next().await {
        let ClusterStateEvent::RemovedExecutor { executor_id } = event else {
            continue;
        };
        // The jobs being executed (Ballista's cache of active jobs, not its job history).
        let jobs = scheduler.state.task_manager.get_running_job_cache();
        for job_id in jobs.keys() {
            log::warn!(
                "executor {executor_id} left the cluster: cancelling job {job_id} rather than \
                 recovering it, whose results could be incomplete"
            );
            if let Err(e) = scheduler.cancel_job(job_id.clone()).await {
                log::error!("cannot cancel job {job_id}: {e}");
            }
        }
    }
}

/// What `leadscore executor` needs.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    /// The scheduler, `host:port`.
    pub scheduler: String,
    /// Tasks run at once (default: all cores).
    pub slots: usize,
    /// Address to bind (the Flight port that serves shuffle data); the gRPC port is the next one.
    pub bind: SocketAddr,
    /// Host name other executors and the client reach this one by (default: the bind address).
    pub external_host: Option<String>,
    /// Where shuffle files go (default: a temporary directory).
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat: u64,
}

/// Runs a Ballista executor with leadscore's functions, until the process stops.
pub async fn run_executor(opts: &ExecutorOptions) -> Result<()> {
    let (host, port) = opts.scheduler.rsplit_once(':').ok_or_else(|| {
        Error::Usage(format!(
            "--scheduler {:?}: use HOST:PORT, e.g. 127.0.0.1:50050",
            opts.scheduler
        ))
    })?;
    let scheduler_port: u16 = port.parse().map_err(|_| {
        Error::Usage(format!(
            "--scheduler {:?}: the port is not a number",
            opts.scheduler
        ))
    })?;
    let state = state_with_functions(SessionConfig::new())?;
    // Shuffle and spill files go to the work directory (a temporary one, removed when the
    // process ends, unless --work-dir says where).
    let (work_dir, scratch) = match &opts.work_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("leadscore-executor-")
                .tempdir()
                .map_err(|e| Error::io("creating the executor's work directory", e))?;
            (temp.path().to_string_lossy().to_string(), Some(temp))
        }
    };
    let spill_dir = work_dir.clone();
    let runtime: RuntimeProducer = Arc::new(move |_| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(spill_dir.clone())
            .with_object_store_registry(crate::storage::registry())
            .build_arc()
    });
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        port: opts.bind.port(),
        grpc_port: opts.bind.port().checked_add(1).ok_or_else(|| {
            Error::Usage("--bind: the port must leave room for the next one (gRPC)".into())
        })?,
        external_host: opts.external_host.clone(),
        scheduler_host: host.to_string(),
        scheduler_port,
        vcores: opts.slots,
        work_dir: Some(work_dir),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        override_runtime_producer: Some(runtime),
        executor_heartbeat_interval_seconds: opts.heartbeat,
        ..ExecutorProcessConfig::default()
    };
    let stopped = start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::Config(format!("the executor stopped: {e}")));
    drop(scratch);
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_parse() {
        assert_eq!(
            "df://127.0.0.1:50050".parse::<Cluster>().unwrap(),
            Cluster::Remote("df://127.0.0.1:50050".into())
        );
        assert_eq!(
            "standalone".parse::<Cluster>().unwrap(),
            Cluster::Standalone
        );
        for bad in [
            "127.0.0.1:50050",
            "df://host",
            "df://:1",
            "http://h:1",
            "df://h:x",
        ] {
            assert!(bad.parse::<Cluster>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_node_knows_the_functions() {
        let state = state_with_functions(SessionConfig::new()).unwrap();
        let registry = BallistaFunctionRegistry::from(&state);
        for f in ["match_rule", "glob_match", "decay", "event_key"] {
            assert!(registry.scalar_functions.contains_key(f), "{f}");
        }
        for f in ["lead_fold", "stable_sum", "top_lead", "repeated_keys"] {
            assert!(registry.aggregate_functions.contains_key(f), "{f}");
        }
        // DataFusion's own functions stay.
        assert!(registry.scalar_functions.contains_key("abs"));
    }
}
