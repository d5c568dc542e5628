#!/usr/bin/env python3
"""Compare `leadscore score` with DuckDB computing the same numbers on the same Parquet.

What it measures
    For each requested size (number of good events), on data made by `leadscore generate`:
    the wall time and the peak resident memory (ru_maxrss of the child process, read with
    os.wait4) of
      * `leadscore score --events ... --leads ... --model ... --as-of ... --out ...`, and
      * a DuckDB child process (Python + the `duckdb` package) that runs the same pipeline in SQL
        and writes its per-lead and per-account results to Parquet,
    interleaved (leadscore, DuckDB, leadscore, DuckDB, ...), and prints one Markdown table row per
    size with the medians, the ratio leadscore/DuckDB (lower is better for leadscore) and the
    peaks. Each round also times leadscore with a general model (linear decay, grace days, a
    floor, negative rules: what no closed form covers) on the same data, and prints its median
    and its ratio to the closed-form model's run. After the timed runs it checks that both agree: the same lead_ids with the same
    engagement and score, the same accounts with the same score and member count (relative
    tolerance 1e-9, absolute 1e-9 near zero), and as many rejected rows. A mismatch exits 1.

    The model is written by this script so that DuckDB can express the score in closed form:
    exponential decay without grace or floor, no negative rules and no fit rules, so for every
    lead
        engagement = score = sum over its matched, kept, good events with ts < C of
                     points x 2^(-(C - ts) / half_life_days)
    where C is the start of the day after --as-of and durations are real days (microseconds /
    86 400 000 000). The DuckDB SQL does what queries/duplicate_events.sql, kept_events.sql,
    judged_events.sql, lead_activity.sql, lead_scores.sql and account_scores.sql do: event_id
    de-duplication, first-match rules with asset globs, rejects, the decayed sum, every lead of
    the leads table, and the per-account sum.

    Not a like-for-like amount of work: leadscore also computes mql_at, tallies, stages, coldness,
    NPS, product-interest scores, the stage report and the rejects table, which the DuckDB side
    skips. DuckDB's peak memory and wall time include the Python interpreter and `import duckdb`;
    the script measures those once on their own and prints them so that readers can subtract.

How to run it (from the repository root)
    python3 benches/compare_duckdb.py --events 1M,10M,20M
    python3 benches/compare_duckdb.py --events 1M --runs 3 --leadscore target/release/leadscore

    Without --leadscore it runs `cargo build --release --locked` first. Data for N events lives
    in DATA/<size>/ (default DATA = bench-data/ in the repository) and is generated, once, with
    `leadscore generate --leads N/20 --events N --seed 7`.

What it installs
    A Python virtual environment in DATA/.venv with the `duckdb` package from PyPI (pip install
    duckdb), only when `import duckdb` does not already work there. Nothing else; the script
    itself needs only the Python 3 standard library.
"""

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The generator's default --end (src/generate.rs, GenerateOptions::default): events lie in
# [end - 730 days, end + 1 day), so as of this day every generated event counts.
DEFAULT_AS_OF = "2026-09-30"
HALF_LIFE_DAYS = 60.0
MICROS_PER_DAY = 86_400_000_000
TOLERANCE = 1e-9

STAGES = ["awareness", "consideration", "decision"]

# [[action]] rules, in file order (the first match wins). Actions and assets are the ones that
# src/generate.rs writes. All points are positive (no negative rules), so with floor 0 the decay
# fold equals the closed-form sum.
RULES = [
    # Never matches: generated campaign ids use '-', not '_'. A LIKE translation that forgot to
    # escape '_' would match "nl-weekly-digest" here and give those opens 50 points.
    dict(action="email_open", assets=["nl_weekly*"], points=50, stage="awareness"),
    dict(action="page_view", assets=["/pricing*"], points=15, stage="decision"),
    dict(action="page_view", assets=["/product/*"], points=5, stage="consideration"),
    dict(action="page_view", assets=["/blog/*", "/"], points=1, stage="awareness"),
    dict(action="email_open", points=1, stage="awareness"),
    dict(action="email_click", assets=["product-update-*"], points=4, stage="consideration"),
    dict(action="email_click", points=2, stage="awareness"),
    dict(action="ad_click", assets=["google-*", "linkedin-*"], points=2, stage="awareness"),
    dict(action="webinar_signup", points=15, stage="consideration"),
    dict(action="download", assets=["wp-*", "ebook-*"], points=8, stage="consideration"),
    dict(action="download", points=4, stage="consideration"),
    dict(action="video_play", points=10, scale="fraction", stage="consideration"),
    dict(action="demo_request", points=30, stage="decision"),
    dict(action="free_trial", assets=["trial-*"], points=25, stage="decision"),
    dict(action="contact_sales", points=30, stage="decision"),
    # Unmatched on purpose: careers pages, unsubscribe, nps_response, other ad placements.
]


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_size(text):
    """'1M' -> 1000000, '500k' -> 500000, '1.5M' -> 1500000, '2000' -> 2000."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1M, 500k, 20M)")
    mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()]
    n = round(float(m.group(1)) * mult)
    if n < 20:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 20 events")
    return n


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def toml_str(s):
    return json.dumps(s)  # a TOML basic string for the plain ASCII used here


def glob_to_like(glob):
    """leadscore glob (`*` = any run, everything else literal) -> LIKE pattern with ESCAPE '\\'."""
    out = []
    for ch in glob:
        if ch == "*":
            out.append("%")
        elif ch in "\\%_":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def run_measured(cmd, stdout_path, stderr_path, cwd=None, env=None):
    """Runs cmd as a child; returns (exit code, wall seconds, peak RSS in MiB) via os.wait4."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4: tell Popen not to wait again
    return code, wall, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def fail(msg, *files):
    log(f"error: {msg}")
    for f in files:
        try:
            text = Path(f).read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            log(f"--- {f}:\n{text[-4000:]}")
    sys.exit(1)


# ------------------------------------------------------------------------------------------------
# Setup: binary, venv, data, model
# ------------------------------------------------------------------------------------------------


def build_leadscore():
    log("building leadscore: cargo build --release --locked")
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = (REPO / target) if target else (REPO / "target")  # REPO / absolute = absolute
    binary = base / "release" / "leadscore"
    if not binary.exists():
        fail(f"cargo build succeeded but {binary} does not exist")
    return binary


def ensure_duckdb(venv):
    """A venv at `venv` where `import duckdb` works; returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating a virtual environment in {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import duckdb"], capture_output=True)
    if probe.returncode != 0:
        log("installing duckdb into the virtual environment (pip install duckdb)")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "duckdb"], check=True)
    return python


def ensure_data(leadscore, data_dir, label, n_events):
    """DATA/<label>/ with events/ and leads.parquet; generated (atomically) when missing."""
    target = data_dir / label
    if (target / "leads.parquet").exists() and any((target / "events").glob("**/*.parquet")):
        return target
    if target.exists():
        fail(f"{target} exists but holds no complete data set (events/ and leads.parquet); "
             "remove it to have it generated")
    partial = data_dir / f".{label}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    leads = max(1, n_events // 20)
    cmd = [str(leadscore), "generate", "--leads", str(leads), "--events", str(n_events),
           "--seed", "7", "--out", str(partial), "--quiet"]
    log(f"generating {label}: {' '.join(cmd)}")
    subprocess.run(cmd, check=True)
    partial.rename(target)
    return target


def model_toml(general=False):
    """The closed-form model; with general=True the same rules under a decay no closed form
    covers (linear, with grace days and a floor) plus two negative rules, to time the general
    fold on the same data."""
    if general:
        decay = ['kind = "linear"', "points = 5", "period_days = 30", "grace_days = 7",
                 "floor = 0.25"]
        rules = RULES + [dict(action="page_view", assets=["/careers*"], points=-10),
                         dict(action="unsubscribe", points=-20)]
    else:
        decay = ['kind = "exponential"', f"half_life_days = {HALF_LIFE_DAYS}", "grace_days = 0",
                 "floor = 0"]
        rules = RULES
    lines = [
        "# Written by benches/compare_duckdb.py: a model whose score DuckDB can compute in closed",
        "# form (exponential decay, no grace, no floor, no negative rules, no fit rules)"
        + (", made general: linear decay, grace, floor, negative rules." if general else "."),
        'name = "duckdb_compare"',
        "version = 1",
        "threshold = 100",
        "stages = [" + ", ".join(toml_str(s) for s in STAGES) + "]",
        "",
        "[decay]",
        *decay,
        "",
        "[account]",
        'aggregate = "sum"',
    ]
    for r in rules:
        lines += ["", "[[action]]", f"action = {toml_str(r['action'])}"]
        if "assets" in r:
            lines.append("assets = [" + ", ".join(toml_str(a) for a in r["assets"]) + "]")
        lines.append(f"points = {r['points']}")
        if "scale" in r:
            lines.append(f"scale = {toml_str(r['scale'])}")
        if "stage" in r:
            lines.append(f"stage = {toml_str(r['stage'])}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# The DuckDB SQL
# ------------------------------------------------------------------------------------------------


def pipeline_ctes(events_glob, as_of):
    """WITH clause ending in `judged` (every kept row, its rule, points and verdict) and
    `lead_activity` (per-lead engagement), mirroring queries/*.sql for this model."""
    cutoff_day = dt.date.fromisoformat(as_of) + dt.timedelta(days=1)
    cutoff_us = (cutoff_day - dt.date(1970, 1, 1)).days * MICROS_PER_DAY
    cutoff_ts = f"TIMESTAMPTZ '{cutoff_day.isoformat()} 00:00:00+00'"

    whens = []
    for i, r in enumerate(RULES, start=1):
        cond = f"k.action = {sql_str(r['action'])}"
        if "assets" in r:
            # A rule with globs never matches a null asset: LIKE on null is null, i.e. not true.
            globs = " OR ".join(f"k.asset LIKE {sql_str(glob_to_like(g))} ESCAPE '\\'"
                                for g in r["assets"])
            cond += f" AND ({globs})"
        whens.append(f"WHEN {cond} THEN {i}")
    match_case = "CASE\n" + "\n".join("            " + w for w in whens) + "\n        END"
    rules_values = ",\n        ".join(
        f"({i}, CAST({float(r['points'])!r} AS DOUBLE), {'true' if r.get('scale') == 'fraction' else 'false'})"
        for i, r in enumerate(RULES, start=1))

    return f"""
WITH events AS (
    SELECT lead_id, ts, action, asset, product, value, event_id
    FROM read_parquet({sql_str(events_glob)})
),
-- duplicate_events.sql: every copy of a repeated event_id, numbered; copy 1 is kept.
repeated AS (
    SELECT event_id FROM events
    WHERE event_id IS NOT NULL
    GROUP BY event_id HAVING count(*) > 1
),
duplicate_events AS (
    SELECT e.*,
           row_number() OVER (
               PARTITION BY e.event_id
               ORDER BY e.ts NULLS LAST, e.lead_id NULLS LAST, e.action NULLS LAST,
                        e.asset NULLS LAST, e.product NULLS LAST, e.value NULLS LAST
           ) AS copy
    FROM events e SEMI JOIN repeated r ON r.event_id = e.event_id
),
-- kept_events.sql
kept AS (
    SELECT e.* FROM events e ANTI JOIN repeated r ON r.event_id = e.event_id
    UNION ALL
    SELECT lead_id, ts, action, asset, product, value, event_id
    FROM duplicate_events WHERE copy = 1
),
rules(rule_id, points, is_fraction) AS (
    VALUES
        {rules_values}
),
-- judged_events.sql: first matching rule in file order, points, verdict.
matched AS (
    SELECT k.*,
        {match_case} AS rule_id
    FROM kept k
),
judged AS (
    SELECT m.lead_id, m.ts, m.action, m.asset, m.value, m.rule_id,
           CASE WHEN r.is_fraction THEN r.points * m.value ELSE r.points END AS points,
           CASE
               WHEN m.lead_id IS NULL THEN 'null lead_id'
               WHEN m.ts IS NULL THEN 'null ts'
               WHEN m.action IS NULL THEN 'null action'
               WHEN r.is_fraction AND (m.value IS NULL OR m.value < 0 OR m.value > 1)
                   THEN 'fraction outside 0..1'
               WHEN m.action = 'nps_response' AND (m.value IS NULL OR m.value < 0 OR m.value > 10)
                   THEN 'nps answer outside 0..10'
           END AS reason
    FROM matched m LEFT JOIN rules r ON r.rule_id = m.rule_id
),
-- lead_activity.sql, in closed form: with floor 0 and no negative points the decay fold is
-- sum(points x 2^(-(C - ts) / half_life)). Leads with only unmatched good events get 0.
lead_activity AS (
    SELECT lead_id,
           coalesce(sum(points * pow(2.0::DOUBLE,
                        -(CAST({cutoff_us} - epoch_us(ts) AS DOUBLE) / {MICROS_PER_DAY}.0::DOUBLE)
                        / {HALF_LIFE_DAYS!r}::DOUBLE))
                    FILTER (WHERE rule_id IS NOT NULL), 0.0::DOUBLE) AS engagement
    FROM judged
    WHERE reason IS NULL AND ts < {cutoff_ts}
    GROUP BY lead_id
)"""


def score_statements(events_glob, leads_path, as_of, out_dir):
    leads_sql = f"""
leads AS (
    SELECT lead_id, account_id FROM read_parquet({sql_str(leads_path)})
    WHERE lead_id IS NOT NULL
)"""
    create = (pipeline_ctes(events_glob, as_of) + "," + leads_sql + """
-- lead_scores.sql: every lead with a good event before C, and every lead of the leads table.
SELECT coalesce(a.lead_id, l.lead_id) AS lead_id,
       l.account_id,
       coalesce(a.engagement, 0.0::DOUBLE) AS engagement,
       coalesce(a.engagement, 0.0::DOUBLE) AS score
FROM lead_activity a FULL OUTER JOIN leads l ON l.lead_id = a.lead_id""")
    return [
        "CREATE TEMP TABLE lead_scores AS " + create,
        f"""COPY (SELECT * FROM lead_scores ORDER BY lead_id)
            TO {sql_str(str(out_dir / 'lead_scores.parquet'))} (FORMAT parquet)""",
        # account_scores.sql with aggregate = "sum".
        f"""COPY (
            SELECT account_id, sum(score) AS score, count(*) AS leads,
                   count(*) FILTER (WHERE engagement > 0) AS engaged_leads
            FROM lead_scores WHERE account_id IS NOT NULL
            GROUP BY account_id ORDER BY account_id
        ) TO {sql_str(str(out_dir / 'account_scores.parquet'))} (FORMAT parquet)""",
    ]


def check_statements(events_glob, as_of, ls_out, duck_out):
    tol = f"{TOLERANCE!r}"

    def cmp(col):
        a, b = f"a.{col}", f"b.{col}"
        return f"""
            count(*) FILTER (WHERE a.k IS NOT NULL AND b.k IS NOT NULL
                AND NOT (abs({a} - {b}) <= {tol} * greatest(1.0, abs({a}), abs({b})))) AS bad_{col},
            coalesce(max(CASE WHEN {a} = {b} THEN 0.0
                ELSE abs({a} - {b}) / greatest(abs({a}), abs({b})) END), 0.0) AS max_rel_{col},
            sum({a}) AS sum_leadscore_{col}, sum({b}) AS sum_duckdb_{col}"""

    def compare(name, key, cols, ls_cols, duck_cols):
        ls = f"read_parquet({sql_str(str(ls_out / name / '*.parquet'))})"
        dk = f"read_parquet({sql_str(str(duck_out / (name + '.parquet')))})"
        return f"""
        WITH a AS (SELECT {key} AS k, {ls_cols} FROM {ls}),
             b AS (SELECT {key} AS k, {duck_cols} FROM {dk})
        SELECT
            (SELECT count(*) FROM a) AS rows_leadscore,
            (SELECT count(DISTINCT k) FROM a) AS distinct_leadscore,
            (SELECT count(*) FROM b) AS rows_duckdb,
            count(*) FILTER (WHERE a.k IS NULL) AS only_duckdb,
            count(*) FILTER (WHERE b.k IS NULL) AS only_leadscore,
            {",".join(cmp(c) for c in cols)}
        FROM a FULL OUTER JOIN b ON a.k = b.k"""

    def examples(name, key, col):
        ls = f"read_parquet({sql_str(str(ls_out / name / '*.parquet'))})"
        dk = f"read_parquet({sql_str(str(duck_out / (name + '.parquet')))})"
        return f"""
        SELECT coalesce(a.{key}, b.{key}) AS {key}, a.{col} AS leadscore, b.{col} AS duckdb
        FROM {ls} a FULL OUTER JOIN {dk} b ON a.{key} = b.{key}
        WHERE a.{key} IS NULL OR b.{key} IS NULL
           OR NOT (abs(a.{col} - b.{col}) <= {tol} * greatest(1.0, abs(a.{col}), abs(b.{col})))
        ORDER BY 1 LIMIT 5"""

    rejects_dir = ls_out / "rejects"
    return {
        "leads": compare("lead_scores", "lead_id", ["engagement", "score"],
                         "engagement, score", "engagement, score"),
        "accounts": compare("account_scores", "account_id", ["score", "leads"],
                            "score, CAST(leads AS DOUBLE) AS leads",
                            "score, CAST(leads AS DOUBLE) AS leads"),
        "lead_examples": examples("lead_scores", "lead_id", "engagement"),
        "account_examples": examples("account_scores", "account_id", "score"),
        "rejects_duckdb": pipeline_ctes(events_glob, as_of)
        + " SELECT count(*) FILTER (WHERE reason IS NOT NULL) AS rejected, count(*) AS kept FROM judged",
        "rejects_leadscore": (
            f"SELECT count(*) FROM read_parquet({sql_str(str(rejects_dir / '*.parquet'))})"
            if any(rejects_dir.glob("*.parquet")) else "SELECT 0"),
    }


# The program the venv's Python runs. Modes: probe (import only), score (timed), check.
CHILD = textwrap.dedent(r"""
    import json, sys, time
    mode = sys.argv[1]
    import duckdb
    if mode == "probe":
        print(json.dumps({"version": duckdb.__version__}))
        sys.exit(0)
    job = json.load(open(sys.argv[2]))
    con = duckdb.connect()
    con.execute(f"SET threads = {int(job['threads'])}")
    con.execute("SET TimeZone = 'UTC'")
    if mode == "score":
        start = time.perf_counter()
        for stmt in job["statements"]:
            con.execute(stmt)
        print(json.dumps({"query_seconds": time.perf_counter() - start}))
    elif mode == "check":
        result = {}
        for name, sql in job["queries"].items():
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            result[name] = [dict(zip(cols, row)) for row in cur.fetchall()]
        print(json.dumps(result, default=str))
""")


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1M,10M",
                    help="comma-separated sizes in good events, e.g. 1M,10M,20M (default 1M,10M)")
    ap.add_argument("--runs", type=int, default=5,
                    help="timed runs of each engine, interleaved (default 5)")
    ap.add_argument("--data", type=Path, default=REPO / "bench-data",
                    help="data directory; data for N events lives in DATA/<size>/ (default "
                         "bench-data/ in the repository); also holds the DuckDB venv (.venv)")
    ap.add_argument("--leadscore", type=Path,
                    help="leadscore binary (default: cargo build --release --locked and use it)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for both engines (default: all cores)")
    ap.add_argument("--as-of", default=DEFAULT_AS_OF,
                    help=f"scoring day (default {DEFAULT_AS_OF}, the generator's last day)")
    args = ap.parse_args()

    sizes = []
    for s in args.events.split(","):
        if s.strip():
            sizes.append((s.strip().lower(), parse_size(s)))
    if not sizes or args.runs < 1 or args.threads < 1:
        ap.error("need at least one size, --runs >= 1 and --threads >= 1")
    dt.date.fromisoformat(args.as_of)

    leadscore = args.leadscore.resolve() if args.leadscore else build_leadscore()
    if not os.access(leadscore, os.X_OK):
        fail(f"{leadscore} is not an executable")
    data_dir = args.data.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    python = ensure_duckdb(data_dir / ".venv")

    work = Path(tempfile.mkdtemp(prefix="leadscore-vs-duckdb-"))
    child = work / "duck_child.py"
    child.write_text(CHILD)
    model = work / "model.toml"
    model.write_text(model_toml())
    general_model = work / "general.toml"
    general_model.write_text(model_toml(general=True))

    # The interpreter + `import duckdb` alone: part of every DuckDB measurement below.
    code, probe_wall, probe_rss = run_measured(
        [str(python), str(child), "probe"], work / "probe.out", work / "probe.err")
    if code != 0:
        fail("the DuckDB probe failed", work / "probe.err")
    duck_version = json.loads((work / "probe.out").read_text())["version"]

    rows = []
    failed = False
    for label, n_events in sizes:
        data = ensure_data(leadscore, data_dir, label, n_events)
        events_glob = str(data / "events" / "**" / "*.parquet")
        leads_path = data / "leads.parquet"
        ls_times, ls_peaks, dk_times, dk_peaks, dk_query = [], [], [], [], []
        gen_times = []
        ls_out = duck_out = None
        for run in range(1, args.runs + 1):
            # leadscore, into a fresh output directory.
            if ls_out:
                shutil.rmtree(ls_out, ignore_errors=True)
            ls_out = work / f"ls-{label}-{run}"
            cmd = [str(leadscore), "score", "--events", str(data / "events"),
                   "--leads", str(leads_path), "--model", str(model), "--as-of", args.as_of,
                   "--out", str(ls_out), "--quiet", "--threads", str(args.threads)]
            code, wall, rss = run_measured(cmd, work / "ls.out", work / "ls.err")
            if code != 0:
                fail(f"leadscore exited with {code}: {' '.join(cmd)}", work / "ls.err")
            ls_times.append(wall)
            ls_peaks.append(rss)

            # leadscore with the general model (not checked against DuckDB: no closed form).
            gen_out = work / f"gen-{label}-{run}"
            gen_cmd = [c if c != str(model) else str(general_model) for c in cmd]
            gen_cmd[gen_cmd.index(str(ls_out))] = str(gen_out)
            code, gwall, _ = run_measured(gen_cmd, work / "gen.out", work / "gen.err")
            if code != 0:
                fail(f"leadscore (general model) exited with {code}", work / "gen.err")
            gen_times.append(gwall)
            shutil.rmtree(gen_out, ignore_errors=True)

            # DuckDB, likewise.
            if duck_out:
                shutil.rmtree(duck_out, ignore_errors=True)
            duck_out = work / f"duck-{label}-{run}"
            duck_out.mkdir()
            job = work / "score.json"
            job.write_text(json.dumps({
                "threads": args.threads,
                "statements": score_statements(events_glob, str(leads_path), args.as_of, duck_out),
            }))
            code, dwall, drss = run_measured(
                [str(python), str(child), "score", str(job)], work / "dk.out", work / "dk.err")
            if code != 0:
                fail(f"DuckDB exited with {code}", work / "dk.err")
            dk_times.append(dwall)
            dk_peaks.append(drss)
            dk_query.append(json.loads((work / "dk.out").read_text())["query_seconds"])
            log(f"{label} run {run}/{args.runs}: leadscore {wall:.3f} s {rss:.0f} MiB, "
                f"duckdb {dwall:.3f} s (queries {dk_query[-1]:.3f} s) {drss:.0f} MiB")

        # Check: both outputs of the last run, compared by a separate DuckDB process.
        job = work / "check.json"
        job.write_text(json.dumps({
            "threads": args.threads,
            "queries": check_statements(events_glob, args.as_of, ls_out, duck_out),
        }))
        code, _, _ = run_measured([str(python), str(child), "check", str(job)],
                                  work / "check.out", work / "check.err")
        if code != 0:
            fail("the comparison query failed", work / "check.err")
        res = json.loads((work / "check.out").read_text())
        ok = report_check(label, res)
        if not ok:
            failed = True
            log(f"outputs kept for inspection: {ls_out} and {duck_out}")
        rows.append((label, n_events, ls_times, dk_times, dk_query, ls_peaks, dk_peaks, ok,
                     gen_times))

    print()
    print(f"leadscore: {leadscore}")
    print(f"DuckDB {duck_version} (Python {sys.version.split()[0]} venv), threads = {args.threads}, "
          f"as of {args.as_of}, {args.runs} interleaved runs each, medians")
    # DuckDB runs as `python child.py`, so its wall time and peak include the interpreter and
    # `import duckdb`; this is that baseline on its own, to subtract.
    print(f"DuckDB baseline (bare interpreter + import duckdb): {probe_wall:.3f} s, "
          f"{probe_rss:.0f} MiB peak")
    # Times are medians over the runs; peaks are the largest ru_maxrss over the runs (MiB).
    print()
    print("| events | leadscore s | DuckDB s | ratio (leadscore/DuckDB) | leadscore peak MiB "
          "| DuckDB peak MiB | DuckDB in-process s | check | leadscore general model s "
          "| general / closed form |")
    print("|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|")
    for label, n, lt, dtm, dq, lp, dp, ok, gt in rows:
        lm, dm, gm = statistics.median(lt), statistics.median(dtm), statistics.median(gt)
        print(f"| {n:,} | {lm:.3f} | {dm:.3f} | {lm / dm:.2f} | {max(lp):.0f} | {max(dp):.0f} "
              f"| {statistics.median(dq):.3f} | {'ok' if ok else 'MISMATCH'} | {gm:.3f} "
              f"| {gm / lm:.2f} |")
    if failed:
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


def report_check(label, res):
    leads, accounts = res["leads"][0], res["accounts"][0]
    rej_dk = res["rejects_duckdb"][0]
    rej_ls = list(res["rejects_leadscore"][0].values())[0]
    ok = True
    for what, r, cols in (("leads", leads, ["engagement", "score"]),
                          ("accounts", accounts, ["score", "leads"])):
        same_keys = (r["only_duckdb"] == 0 and r["only_leadscore"] == 0
                     and r["rows_leadscore"] == r["distinct_leadscore"])
        bad = sum(r[f"bad_{c}"] for c in cols)
        status = "ok" if same_keys and bad == 0 else "MISMATCH"
        ok &= status == "ok"
        detail = ", ".join(
            f"{c}: max rel diff {r[f'max_rel_{c}']:.3g}, {r[f'bad_{c}']} beyond {TOLERANCE:g}, "
            f"sums {r[f'sum_leadscore_{c}']!r} vs {r[f'sum_duckdb_{c}']!r}" for c in cols)
        log(f"check {label} {what}: {status}: {r['rows_leadscore']} rows in leadscore "
            f"({r['distinct_leadscore']} distinct), {r['rows_duckdb']} in DuckDB, "
            f"{r['only_leadscore']} only in leadscore, {r['only_duckdb']} only in DuckDB; {detail}")
    if rej_ls != rej_dk["rejected"]:
        ok = False
        log(f"check {label} rejects: MISMATCH: leadscore {rej_ls}, DuckDB {rej_dk['rejected']}")
    else:
        log(f"check {label} rejects: ok: {rej_ls} rejected of {rej_dk['kept']} kept rows")
    if not ok:
        for name in ("lead_examples", "account_examples"):
            for row in res[name]:
                log(f"  {name[:-9]} differs: {row}")
    return ok


if __name__ == "__main__":
    main()
