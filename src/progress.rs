//! Progress bars on stderr for long runs: events read, events per second and the time left.
//!
//! DataFusion has no progress callback, so a query's bar watches its physical plan: every scan of
//! the events files reports the rows it has produced in its metrics, and a background task polls
//! them a few times a second against the row count read from the Parquet footers (times the
//! number of scans of the events in that plan). Queries that do not read the events show a
//! spinner with their name. Nothing is drawn when stderr is not a terminal, or with `--quiet`.

use std::sync::Arc;
use std::time::Duration;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar template shared by every command that reads or writes events.
pub const EVENTS_TEMPLATE: &str = "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events  {rate}  ETA {eta}";

/// A rate such as `3.2M events/s`.
fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.1}M events/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.0}k events/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} events/s")
    }
}

const SPINNER_TEMPLATE: &str = "{spinner} {prefix} [{elapsed_precise}] {msg}";

/// A bar counting events, drawn on stderr when it is a terminal.
pub fn events_bar(total: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(EVENTS_TEMPLATE) {
        bar.set_style(
            style
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&rate(state.per_sec()));
                    },
                )
                .progress_chars("=> "),
        );
    }
    bar.set_prefix(prefix.to_string());
    bar
}

/// Where a run's events are, to tell their scans from the others.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    enabled: bool,
    /// The events path as object-store locations read it (absolute, without the leading `/`).
    events_prefix: String,
    events_rows: u64,
    /// Queries that run at the same time show one bar each, one under the other.
    bars: MultiProgress,
}

impl Progress {
    /// No bars at all.
    pub fn off() -> Self {
        Self::default()
    }

    /// Bars for a run over the events at `path` (`rows` rows in their footers).
    pub fn new(enabled: bool, path: &std::path::Path, rows: u64) -> Self {
        // Scans name their files by object-store key: the path without its leading `/` (or, for
        // a URL, without its scheme and bucket).
        let prefix = match crate::storage::url_of(path) {
            Some(url) => url.path().to_string(),
            None => std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .to_string_lossy()
                .to_string(),
        };
        Progress {
            enabled,
            events_prefix: prefix.trim_start_matches('/').to_string(),
            events_rows: rows,
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        }
    }

    /// Shows the progress of query `label` while `plan` runs; the bar goes when the returned
    /// guard is dropped.
    pub fn watch(&self, label: &str, plan: &Arc<dyn ExecutionPlan>) -> Watch {
        if !self.enabled {
            return Watch {
                bar: None,
                task: None,
            };
        }
        let mut scans = Vec::new();
        self.event_scans(plan, &mut scans);
        if scans.is_empty() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(SPINNER_TEMPLATE) {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_string());
            bar.set_message("running");
            let bar = self.bars.add(bar);
            bar.enable_steady_tick(Duration::from_millis(120));
            return Watch {
                bar: Some(bar),
                task: None,
            };
        }
        let bar = self
            .bars
            .add(events_bar(self.events_rows * scans.len() as u64, label));
        let ticking = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let read: usize = scans
                    .iter()
                    .filter_map(|s| s.metrics().and_then(|m| m.output_rows()))
                    .sum();
                ticking.set_position(read as u64);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Watch {
            bar: Some(bar),
            task: Some(task),
        }
    }

    /// The nodes of `plan` that scan the events files.
    fn event_scans(&self, plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<Arc<dyn ExecutionPlan>>) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
            && config.file_groups.iter().any(|g| {
                g.iter().any(|f| {
                    f.object_meta
                        .location
                        .as_ref()
                        .starts_with(&self.events_prefix)
                })
            })
        {
            out.push(plan.clone());
        }
        for child in plan.children() {
            self.event_scans(child, out);
        }
    }
}

/// A query's bar; cleared when dropped.
pub struct Watch {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_well() {
        assert_eq!(rate(3_210_000.0), "3.2M events/s");
        assert_eq!(rate(45_600.0), "46k events/s");
        assert_eq!(rate(12.4), "12 events/s");
    }
}
