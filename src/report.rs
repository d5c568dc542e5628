//! `leadscore report`: one self-contained HTML file (no network, no script) that a marketing
//! team can open or mail around: the score distribution with the MQL threshold, leads per stage,
//! MQLs and cold leads over time, top accounts, product interest, and the key tables. Charts are
//! inline SVG drawn here; the numbers come from SQL over the published tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;

use crate::cli::thousands;
use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::query::tables_session;
use crate::tables::TableInfo;

/// What `report` needs.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub tables: PathBuf,
    pub out: PathBuf,
    /// The model the tables were scored with: gives the exact MQL threshold and stage order.
    pub model: Option<PathBuf>,
    pub engine: EngineOptions,
}

/// What went into the report.
#[derive(Clone, Debug, Default)]
pub struct ReportSummary {
    pub leads: u64,
    pub sections: Vec<String>,
    pub bytes: usize,
}

const WIDTH: f64 = 760.0;
const ACCENT: &str = "#2f6fdf";
const HOT: &str = "#e4572e";
const MUTED: &str = "#9aa5b1";

/// Writes the report.
pub async fn report(opts: &ReportOptions) -> Result<ReportSummary> {
    let model = opts.model.as_deref().map(Model::load).transpose()?;
    let (ctx, tables) = tables_session(&opts.tables, &opts.engine).await?;
    let has = |name: &str| tables.iter().any(|t: &TableInfo| t.name == name);
    if !has("lead_scores") {
        return Err(Error::Config(format!(
            "--tables {}: no lead_scores table there (run `leadscore score --out {}` first)",
            opts.tables.display(),
            opts.tables.display()
        )));
    }
    let mut page = Page::default();
    let head = one_row(
        &ctx,
        "select max(as_of) as as_of, count(*) as leads, \
         count(*) filter (where is_mql) as mqls, \
         count(*) filter (where is_cold) as cold, max(model_version) as version \
         from lead_scores",
    )
    .await?;
    let leads = int(&head, "leads").unwrap_or(0);
    let as_of = text(&head, "as_of").unwrap_or_else(|| "-".into());
    let mut tiles = vec![
        ("leads", thousands(leads)),
        ("MQLs", thousands(int(&head, "mqls").unwrap_or(0))),
        ("cold leads", thousands(int(&head, "cold").unwrap_or(0))),
    ];
    if has("account_scores") {
        let acc = one_row(
            &ctx,
            "select count(*) as accounts, count(*) filter (where is_sales_ready) as ready \
             from account_scores",
        )
        .await?;
        tiles.push(("accounts", thousands(int(&acc, "accounts").unwrap_or(0))));
        tiles.push((
            "sales-ready accounts",
            thousands(int(&acc, "ready").unwrap_or(0)),
        ));
    }
    let version = int(&head, "version").map_or("-".to_string(), |v| v.to_string());
    let model_name = model
        .as_ref()
        .map_or(String::new(), |m| format!("{} ", m.name));
    page.title = format!("Lead scoring report: {model_name}v{version}, as of {as_of}");
    page.tiles = tiles;

    // Score distribution.
    let threshold = match &model {
        Some(m) => Some((m.threshold, "MQL threshold")),
        None => one_row(&ctx, "select min(score) as t from lead_scores where is_mql")
            .await
            .ok()
            .and_then(|r| float(&r, "t"))
            .map(|t| (t, "lowest MQL score")),
    };
    let scores = column_floats(
        &ctx,
        "select score from lead_scores where score is not null",
    )
    .await?;
    if !scores.is_empty() {
        page.section(
            "Score distribution",
            "Leads by score; bars at or above the threshold are MQLs.",
            histogram(&scores, threshold),
        );
    }

    // Funnel: leads per stage, in the model's order (or the order of the tally columns).
    let stages = stage_order(&ctx, model.as_ref()).await?;
    let per_stage = rows_of(
        &ctx,
        "select stage, count(*) as leads, count(*) filter (where is_mql) as mqls \
         from lead_scores group by stage",
    )
    .await?;
    let mut funnel: Vec<(String, f64, String)> = Vec::new();
    for s in &stages {
        let n = per_stage
            .iter()
            .find(|r| r.0.as_deref() == Some(s.as_str()))
            .map_or(0, |r| r.1);
        funnel.push((s.clone(), n as f64, thousands(n as u64)));
    }
    if let Some(r) = per_stage.iter().find(|r| r.0.is_none()) {
        funnel.push(("no stage yet".into(), r.1 as f64, thousands(r.1 as u64)));
    }
    if !funnel.is_empty() {
        page.section(
            "Leads per stage",
            "The furthest stage each lead has reached, in the model's order.",
            bar_chart(&funnel, ACCENT),
        );
    }

    // Over time, from the history.
    if has("lead_score_history") {
        let history = rows3(
            &ctx,
            "select cast(as_of as varchar) as day, count(*) filter (where is_mql) as mqls, \
             count(*) filter (where is_cold) as cold from lead_score_history \
             group by as_of order by as_of",
        )
        .await?;
        if !history.is_empty() {
            page.section(
                "MQLs and cold leads over time",
                "From lead_score_history, one point per snapshot day.",
                line_chart(&history, &[("MQLs", HOT), ("cold leads", MUTED)]),
            );
        }
    }

    // Top accounts.
    if has("account_scores") {
        let top = rows_of(
            &ctx,
            "select cast(account_id as varchar) as account, \
             cast(round(score * 10) as bigint) as tenths from account_scores \
             where score is not null order by score desc, account_id limit 10",
        )
        .await?;
        let bars: Vec<(String, f64, String)> = top
            .iter()
            .map(|(a, tenths)| {
                let v = *tenths as f64 / 10.0;
                (a.clone().unwrap_or_default(), v, format!("{v:.1}"))
            })
            .collect();
        if !bars.is_empty() {
            page.section(
                "Top accounts",
                "The ten accounts with the highest score.",
                bar_chart(&bars, ACCENT),
            );
        }
        let table = html_table(
            &ctx,
            "select account_id, round(score, 1) as score, leads, engaged_leads, mql_leads, \
             top_lead_id, stage, is_sales_ready, round(nps, 1) as nps from account_scores \
             order by score desc nulls last, account_id limit 20",
        )
        .await?;
        page.table("Accounts (top 20)", table);
    }

    // Product interest.
    if has("lead_product_scores") {
        let mix = rows_of(
            &ctx,
            "select cast(product as varchar) as product, \
             cast(round(sum(score)) as bigint) as total from lead_product_scores \
             where score > 0 group by product order by total desc, product limit 12",
        )
        .await?;
        let bars: Vec<(String, f64, String)> = mix
            .iter()
            .map(|(p, total)| {
                (
                    p.clone().unwrap_or_else(|| "(none)".into()),
                    *total as f64,
                    thousands(*total as u64),
                )
            })
            .collect();
        if !bars.is_empty() {
            page.section(
                "Product interest",
                "Sum of the leads' product-interest scores, per product.",
                bar_chart(&bars, "#3aa17e"),
            );
        }
    }

    let top_leads = html_table(
        &ctx,
        "select lead_id, account_id, round(score, 1) as score, is_mql, mql_at, stage, \
         last_activity, is_cold from lead_scores order by score desc nulls last, lead_id limit 20",
    )
    .await?;
    page.table("Leads (top 20 by score)", top_leads);
    if has("stage_report") {
        let t = html_table(
            &ctx,
            "select stage, leads, round(share * 100, 1) as percent from stage_report \
             order by leads desc",
        )
        .await?;
        page.table("Stage report", t);
    }
    if has("model_review") {
        let t = html_table(&ctx, "select * from model_review").await?;
        page.table("Model review", t);
    }

    let html = page.render();
    write_atomically(&opts.out, html.as_bytes())?;
    Ok(ReportSummary {
        leads,
        sections: page.names(),
        bytes: html.len(),
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io(format!("writing in {}", dir.display()), e))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Data access

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    crate::query::plan_read_only(ctx, sql)
        .await?
        .collect()
        .await
        .map_err(|e| Error::Config(crate::query::sql_message(&e)))
}

/// The first row, as (column name, value as text or null).
async fn one_row(ctx: &SessionContext, sql: &str) -> Result<Vec<(String, Option<String>)>> {
    let batches = collect(ctx, sql).await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    let schema = b.schema();
    b.columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            let v = if c.is_null(0) {
                None
            } else {
                Some(array_value_to_string(c, 0)?)
            };
            Ok((f.name().clone(), v))
        })
        .collect()
}

fn text(row: &[(String, Option<String>)], name: &str) -> Option<String> {
    row.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
}

fn int(row: &[(String, Option<String>)], name: &str) -> Option<u64> {
    text(row, name).and_then(|v| v.parse().ok())
}

fn float(row: &[(String, Option<String>)], name: &str) -> Option<f64> {
    text(row, name).and_then(|v| v.parse().ok())
}

async fn column_floats(ctx: &SessionContext, sql: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for b in collect(ctx, sql).await? {
        let c = cast(b.column(0), &DataType::Float64)?;
        let c = c.as_primitive::<Float64Type>();
        out.extend((0..c.len()).filter(|&i| c.is_valid(i)).map(|i| c.value(i)));
    }
    Ok(out)
}

/// Rows of (text or null, integer) from a two-column query.
async fn rows_of(ctx: &SessionContext, sql: &str) -> Result<Vec<(Option<String>, i64)>> {
    let mut out = Vec::new();
    for b in collect(ctx, sql).await? {
        let label = cast(b.column(0), &DataType::Utf8)?;
        let label = label.as_string::<i32>();
        let n = cast(b.column(1), &DataType::Int64)?;
        let n = n.as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                label.is_valid(i).then(|| label.value(i).to_string()),
                if n.is_valid(i) { n.value(i) } else { 0 },
            ));
        }
    }
    Ok(out)
}

/// Rows of (label, first number, second number) from a three-column query.
async fn rows3(ctx: &SessionContext, sql: &str) -> Result<Vec<(String, f64, f64)>> {
    let mut out = Vec::new();
    for b in collect(ctx, sql).await? {
        let label = cast(b.column(0), &DataType::Utf8)?;
        let label = label.as_string::<i32>();
        let a = cast(b.column(1), &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        let c = cast(b.column(2), &DataType::Float64)?;
        let c = c.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push((label.value(i).to_string(), a.value(i), c.value(i)));
        }
    }
    Ok(out)
}

/// The stages in order: the model's, or else the order of the `tally_<stage>` columns.
async fn stage_order(ctx: &SessionContext, model: Option<&Model>) -> Result<Vec<String>> {
    if let Some(m) = model {
        return Ok(m.stages.clone());
    }
    let schema = ctx.table("lead_scores").await?.schema().as_arrow().clone();
    Ok(schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_prefix("tally_").map(String::from))
        .collect())
}

/// An HTML table of a query's result.
async fn html_table(ctx: &SessionContext, sql: &str) -> Result<String> {
    let batches = collect(ctx, sql).await?;
    let mut out = String::from("<table>");
    let Some(first) = batches.first() else {
        return Ok("<p class=\"note\">No rows.</p>".into());
    };
    out.push_str("<thead><tr>");
    for f in first.schema().fields() {
        let _ = write!(out, "<th>{}</th>", esc(f.name()));
    }
    out.push_str("</tr></thead><tbody>");
    let mut rows = 0;
    for b in &batches {
        for r in 0..b.num_rows() {
            rows += 1;
            out.push_str("<tr>");
            for c in b.columns() {
                let numeric = c.data_type().is_numeric();
                let v = if c.is_null(r) {
                    String::new()
                } else {
                    array_value_to_string(c, r)?
                };
                let class = if numeric { " class=\"num\"" } else { "" };
                let _ = write!(out, "<td{class}>{}</td>", esc(&v));
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</tbody></table>");
    if rows == 0 {
        return Ok("<p class=\"note\">No rows.</p>".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The page

#[derive(Default)]
struct Page {
    title: String,
    tiles: Vec<(&'static str, String)>,
    /// (heading, caption, svg or table html)
    parts: Vec<(String, String, String)>,
}

impl Page {
    fn section(&mut self, heading: &str, caption: &str, svg: String) {
        self.parts
            .push((heading.to_string(), caption.to_string(), svg));
    }

    fn table(&mut self, heading: &str, html: String) {
        self.parts.push((heading.to_string(), String::new(), html));
    }

    fn names(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.0.clone()).collect()
    }

    fn render(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{}</style></head><body><main>\
             <h1>{}</h1><div class=\"tiles\">",
            esc(&self.title),
            CSS,
            esc(&self.title)
        );
        for (label, value) in &self.tiles {
            let _ = write!(
                h,
                "<div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
                esc(value),
                esc(label)
            );
        }
        h.push_str("</div>");
        for (heading, caption, body) in &self.parts {
            let _ = write!(h, "<section><h2>{}</h2>", esc(heading));
            if !caption.is_empty() {
                let _ = write!(h, "<p class=\"note\">{}</p>", esc(caption));
            }
            h.push_str(body);
            h.push_str("</section>");
        }
        h.push_str(
            "<footer>Made by leadscore from the tables it published; every number can be \
             recomputed with <code>leadscore query</code>.</footer></main></body></html>\n",
        );
        h
    }
}

const CSS: &str = "body{margin:0;background:#f6f7f9;color:#1f2933;\
font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
main{max-width:820px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 16px}\
h2{font-size:17px;margin:0 0 4px}section{background:#fff;border-radius:8px;padding:16px;\
margin:16px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}.tiles{display:flex;flex-wrap:wrap;gap:12px}\
.tile{background:#fff;border-radius:8px;padding:12px 16px;min-width:120px;\
box-shadow:0 1px 2px rgba(0,0,0,.08)}.value{font-size:22px;font-weight:600}\
.label{color:#52606d}.note{color:#52606d;margin:0 0 8px}table{border-collapse:collapse;\
width:100%;font-size:12px}th,td{padding:4px 6px;border-bottom:1px solid #e4e7eb;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}svg{display:block;max-width:100%}\
svg text{font:11px sans-serif;fill:#52606d}footer{color:#7b8794;font-size:12px;margin-top:24px}";

/// HTML (and SVG) text escaping.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" step (1, 2 or 5 times a power of ten) splitting `span` into about `parts`.
fn nice_step(span: f64, parts: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / parts;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * p
}

fn num_label(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A histogram of `values`, with a dashed line at the threshold.
fn histogram(values: &[f64], threshold: Option<(f64, &str)>) -> String {
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A long tail would squeeze everything else into a few bars: the axis ends at the 99th
    // percentile (or past the threshold), and the last bar holds everything above.
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted[(sorted.len() - 1) * 99 / 100];
    let mut hi = p99;
    if let Some((t, _)) = threshold {
        hi = hi.max(t * 1.25);
    }
    let clipped = hi < max;
    let hi = hi.min(max).max(threshold.map_or(hi, |(t, _)| t));
    let step = nice_step(hi - lo, 24.0);
    let start = (lo / step).floor() * step;
    let bins = (((hi - start) / step).floor() as usize + 1).max(1);
    let bins = if clipped { bins + 1 } else { bins };
    let mut counts = vec![0u64; bins];
    for v in values {
        let i = (((v - start) / step).floor() as usize).min(bins - 1);
        counts[i] += 1;
    }
    let (w, h, left, bottom, top) = (WIDTH, 240.0, 48.0, 28.0, 16.0);
    let plot_w = w - left - 12.0;
    let plot_h = h - bottom - top;
    let max = *counts.iter().max().unwrap_or(&1) as f64;
    let bar_w = plot_w / bins as f64;
    let x_of = |v: f64| left + (v - start) / step * bar_w;
    let mut s = svg_open(w, h, "Histogram of lead scores");
    axis_y(&mut s, left, top, plot_h, max, w - 12.0);
    for (i, &c) in counts.iter().enumerate() {
        let bh = c as f64 / max * plot_h;
        let x0 = start + i as f64 * step;
        let color = match threshold {
            Some((t, _)) if x0 >= t => HOT,
            _ => ACCENT,
        };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
             <title>{} to {}: {} leads</title></rect>",
            left + i as f64 * bar_w + 0.5,
            top + plot_h - bh,
            (bar_w - 1.0).max(0.5),
            bh,
            num_label(x0),
            if clipped && i == bins - 1 {
                "more".to_string()
            } else {
                num_label(x0 + step)
            },
            thousands(c)
        );
    }
    // x labels: about eight.
    let every = (bins / 8).max(1);
    for i in (0..=bins).step_by(every) {
        let v = start + i as f64 * step;
        let more = if clipped && i == bins { "+" } else { "" };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}{more}</text>",
            x_of(v),
            h - 10.0,
            num_label(v)
        );
    }
    if let Some((t, label)) = threshold {
        let x = x_of(t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#1f2933\" \
             stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             style=\"fill:#1f2933\">{} {}</text>",
            top + plot_h,
            x + 4.0,
            top + 10.0,
            esc(label),
            num_label(t)
        );
    }
    s.push_str("</svg>");
    s
}

fn svg_open(w: f64, h: f64, label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    )
}

/// Horizontal grid lines and labels for a y axis from 0 to `max`.
fn axis_y(s: &mut String, left: f64, top: f64, plot_h: f64, max: f64, right: f64) {
    let step = nice_step(max, 4.0);
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let y = top + plot_h - v / max.max(1e-9) * plot_h;
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            thousands(v as u64)
        );
        v += step;
    }
}

/// Horizontal bars: (label, value, value as shown).
fn bar_chart(bars: &[(String, f64, String)], color: &str) -> String {
    let row = 26.0;
    let left = 170.0;
    let h = bars.len() as f64 * row + 8.0;
    let plot_w = WIDTH - left - 90.0;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9);
    let mut s = svg_open(WIDTH, h, "Bar chart");
    for (i, (label, v, shown)) in bars.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let bw = (v.max(0.0) / max * plot_w).max(1.0);
        let short: String = if label.chars().count() > 26 {
            label.chars().take(25).collect::<String>() + "…"
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" rx=\"3\" \
             fill=\"{color}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left - 8.0,
            y + row / 2.0 + 4.0,
            esc(&short),
            y + 3.0,
            row - 6.0,
            esc(label),
            esc(shown),
            left + bw + 6.0,
            y + row / 2.0 + 4.0,
            esc(shown)
        );
    }
    s.push_str("</svg>");
    s
}

/// Lines over labelled x positions: `points` are (x label, series 1, series 2).
fn line_chart(points: &[(String, f64, f64)], series: &[(&str, &str); 2]) -> String {
    let (w, h, left, bottom, top) = (WIDTH, 260.0, 56.0, 44.0, 28.0);
    let plot_w = w - left - 16.0;
    let plot_h = h - bottom - top;
    let max = points
        .iter()
        .map(|p| p.1.max(p.2))
        .fold(0.0, f64::max)
        .max(1.0);
    let n = points.len();
    let x_of = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + i as f64 / (n - 1) as f64 * plot_w
        }
    };
    let y_of = |v: f64| top + plot_h - v / max * plot_h;
    let mut s = svg_open(w, h, "Line chart over snapshot days");
    axis_y(&mut s, left, top, plot_h, max, w - 16.0);
    for (k, (name, color)) in series.iter().enumerate() {
        let coords: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = if k == 0 { p.1 } else { p.2 };
                format!("{:.1},{:.1}", x_of(i), y_of(v))
            })
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            coords.join(" ")
        );
        if n <= 60 {
            for (i, p) in points.iter().enumerate() {
                let v = if k == 0 { p.1 } else { p.2 };
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\">\
                     <title>{} {}: {}</title></circle>",
                    x_of(i),
                    y_of(v),
                    esc(&p.0),
                    esc(name),
                    thousands(v as u64)
                );
            }
        }
        // Legend.
        let lx = left + k as f64 * 140.0;
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"16\">{}</text>",
            lx + 16.0,
            esc(name)
        );
    }
    let every = n.div_ceil(8).max(1);
    for i in (0..n).step_by(every) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            h - 16.0,
            esc(&points[i].0)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(100.0, 10.0), 10.0);
        assert_eq!(nice_step(130.0, 10.0), 20.0);
        assert_eq!(nice_step(3.0, 10.0), 0.5);
        assert_eq!(nice_step(0.0, 10.0), 1.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_histogram_counts_every_value_and_marks_the_threshold() {
        let values = [0.0, 1.0, 5.0, 10.0, 99.9, 100.0, 150.0, -20.0];
        let svg = histogram(&values, Some((100.0, "MQL threshold")));
        let total: u64 = svg
            .match_indices(" leads</title>")
            .map(|(i, _)| {
                let head = &svg[..i];
                let n = head.rsplit(": ").next().unwrap();
                n.replace(',', "").parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(total, values.len() as u64);
        assert!(svg.contains("MQL threshold 100"), "{svg}");
        assert!(svg.contains(HOT));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn charts_handle_one_point_and_empty_values() {
        let line = line_chart(
            &[("2026-01-04".into(), 3.0, 0.0)],
            &[("a", HOT), ("b", MUTED)],
        );
        assert!(line.contains("<polyline") && !line.contains("NaN"));
        let bars = bar_chart(&[("x".into(), 0.0, "0".into())], ACCENT);
        assert!(!bars.contains("NaN") && !bars.contains("inf"));
    }
}
