#!/usr/bin/env python3
"""Benchmark `leadscore score` against DuckDB on a matrix of log shapes and sizes.

What it measures
    For every requested size N (event rows) and every shape (how a real activity log may look:
    integer or text lead ids, rows in time or random order, few or many events per lead, with or
    without an event_id and duplicate rows, extra columns, one file, a directory of files or hive
    partitions, snappy or zstd, µs/ms/zoned timestamps), on data this script generates once with
    DuckDB SQL:
      * `leadscore score --events ... [--leads ...] --model ... --as-of 2026-09-30 --out ...`;
      * a DuckDB child process (Python + the `duckdb` package) running the SQL a data team would
        write for exactly that shape: the same per-lead numbers (and per-account ones when the
        shape has a leads file), written to Parquet;
      * with --general, leadscore again with a general model (linear decay, grace days, a floor,
        negative rules: what no closed form covers), reported as a ratio to the closed-form run;
    interleaved round by round (leadscore, DuckDB[, general], leadscore, DuckDB, ...), each run
    into a fresh output directory, measuring wall time and peak resident memory (ru_maxrss of the
    child, read with os.wait4). After the timed runs a separate DuckDB process (not timed)
    checks the last outputs of both: the same lead_ids, the same account_id, engagement and score
    per lead (relative tolerance 1e-9, absolute 1e-9 near zero), the same sum of scores, the same
    accounts with the same score sum and member count, and as many rejected rows. A mismatch marks
    the row MISMATCH, keeps both outputs, and makes the script exit 1 at the end.

    Stdout gets a Markdown table, one row per (shape, size), in shape order, then one line naming
    the worst shape (highest leadscore/DuckDB ratio) per size, the shapes' descriptions, the
    machine, and DuckDB's baseline (a bare interpreter plus `import duckdb`, measured once: part
    of every DuckDB measurement). Progress goes to stderr; --json FILE writes every measurement.

    The models are written by this script so that DuckDB can express the score in closed form:
    exponential decay (half-life 60 days) without grace or floor, positive points only, no fit
    rules, so for every lead
        engagement = score = sum over its matched, kept (deduplicated), good events with ts < C of
                     points x 2^(-(C - ts) / 60 days)        (points x value for a fraction rule)
    where C = 2026-10-01 00:00 UTC (as of 2026-09-30) and durations are real days
    (microseconds / 86 400 000 000). Every generated event lies in the two years before C.

    Not a like-for-like amount of work: leadscore also computes mql_at, tallies, stages, coldness,
    NPS, product scores, the stage report and the rejects table, and validates its input, which the
    DuckDB side skips; the DuckDB SQL also relies on what this script knows about each shape (which
    columns can hold bad rows, that copies are exact), as a data team that knows its log would.

How to run it (from the repository root)
    python3 benches/matrix.py --sizes 1M,20M,100M --runs 3
    python3 benches/matrix.py --sizes 1M --runs 1 --shapes plain,text-dups --leadscore target/release/leadscore
    python3 benches/matrix.py --list                       # the shapes, one line each
    python3 benches/matrix.py --generate-only --sizes 100M # only make the data

    Data for shape S at size N lives in DATA/matrix/<S>-<size>/ (default DATA = bench-data/ in
    the repository, git-ignored): `events.parquet` or `events/`, maybe `leads.parquet`, and
    `shape.json` (how it was made and what it holds). It is generated once, into a `.partial`
    directory that is renamed when complete, and reused afterwards; delete the directory to have
    it made again. Generation is SQL over range(N) with pseudo-random columns from hash(row, seed)
    (fixed seeds per shape), so the same DuckDB version makes the same rows; `generated` is
    `leadscore generate ... --seed 7`. Without --leadscore the script runs `cargo build --release
    --locked` (only when it needs the binary) and uses target/release/leadscore.

    Each run works in DATA/matrix-run-XXXXXXXX/ (outputs, models, DuckDB's spill directory),
    removed at the end unless --keep-outputs is given or a check failed. --memory-limit is given
    to both engines (leadscore --memory-limit, DuckDB's memory_limit); --threads to both, and to
    the generation.

What it installs
    A Python virtual environment in DATA/.venv with the `duckdb` package from PyPI (pip install
    duckdb), only when `import duckdb` does not already work there. Nothing else; this script
    itself needs only the Python 3 standard library.
"""

import argparse
import datetime as dt
import json
import os
import platform
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

AS_OF = "2026-09-30"
CUTOFF_DAY = dt.date(2026, 10, 1)  # the start of the day after AS_OF, UTC
MICROS_PER_DAY = 86_400_000_000
CUTOFF_US = (CUTOFF_DAY - dt.date(1970, 1, 1)).days * MICROS_PER_DAY
SPAN_US = 730 * MICROS_PER_DAY  # events lie in [C - 730 days, C): 2024-10-01 .. 2026-09-30
START_US = CUTOFF_US - SPAN_US
HALF_LIFE_DAYS = 60.0
TOLERANCE = 1e-9
STAGES = ["awareness", "consideration", "decision"]

# ------------------------------------------------------------------------------------------------
# Actions, assets and rules
# ------------------------------------------------------------------------------------------------

# The 20 actions of the generated shapes and their share of rows, in per mille (sums to 1000).
ACTIONS = [
    ("page_view", 305), ("email_open", 250), ("email_click", 80), ("ad_click", 60),
    ("social_click", 40), ("video_play", 40), ("download", 35), ("case_study_view", 30),
    ("webinar_signup", 25), ("form_submit", 25), ("webinar_attend", 15), ("chat_start", 15),
    ("pricing_calc", 15), ("nps_response", 15), ("event_visit", 10), ("survey_start", 10),
    ("unsubscribe", 10), ("free_trial", 8), ("contact_sales", 7), ("demo_request", 5),
]
assert sum(w for _, w in ACTIONS) == 1000

# One rule per action for 17 of the 20: nps_response, survey_start and unsubscribe match none.
PLAIN_RULES = [
    dict(action="page_view", points=1, stage="awareness"),
    dict(action="email_open", points=1, stage="awareness"),
    dict(action="email_click", points=2, stage="awareness"),
    dict(action="ad_click", points=2, stage="awareness"),
    dict(action="social_click", points=1, stage="awareness"),
    dict(action="video_play", points=5, stage="consideration"),
    dict(action="download", points=4, stage="consideration"),
    dict(action="case_study_view", points=6, stage="consideration"),
    dict(action="webinar_signup", points=10, stage="consideration"),
    dict(action="form_submit", points=8, stage="consideration"),
    dict(action="webinar_attend", points=15, stage="consideration"),
    dict(action="chat_start", points=5, stage="consideration"),
    dict(action="event_visit", points=10, stage="consideration"),
    dict(action="pricing_calc", points=12, stage="decision"),
    dict(action="free_trial", points=25, stage="decision"),
    dict(action="contact_sales", points=30, stage="decision"),
    dict(action="demo_request", points=30, stage="decision"),
]

# Rules with asset globs, each placed before its action's catch-all rule (the first match wins).
GLOB_RULES = [
    # Matches only the rare `nl_weekly_vip` opens: a LIKE translation that forgot to escape `_`
    # would also give the common `nl-weekly-digest-*` opens 50 points.
    dict(action="email_open", assets=["nl_weekly*"], points=50, stage="awareness"),
    dict(action="page_view", assets=["/pricing*"], points=15, stage="decision"),
    dict(action="page_view", assets=["/product/*", "/customers/*"], points=5,
         stage="consideration"),
    dict(action="email_click", assets=["product-update-*"], points=4, stage="consideration"),
    dict(action="download", assets=["wp-*", "ebook-*"], points=8, stage="consideration"),
]

FRACTION_RULE = dict(action="video_play", points=10, scale="fraction", stage="consideration")

# Rules for `leadscore generate` data (its actions and assets).
GENERATED_RULES = [
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
]


def rules_for(model):
    """The [[action]] rules, in file order, of model kind `plain`, `globs`, `globs+fraction` or
    `generated`."""
    if model == "generated":
        return [dict(r) for r in GENERATED_RULES]
    fraction = model.endswith("+fraction")
    out = []
    for rule in PLAIN_RULES:
        if model != "plain":
            out += [dict(g) for g in GLOB_RULES if g["action"] == rule["action"]]
        out.append(dict(FRACTION_RULE) if fraction and rule["action"] == "video_play"
                   else dict(rule))
    return out


# ------------------------------------------------------------------------------------------------
# The shapes
# ------------------------------------------------------------------------------------------------
#
# ids:          int (dense 1..L), sparse (random positive 63-bit), email ('user123@example.com'),
#               padded ('lead-000000123'), uuid (36-char UUID-like text)
# order:        random (ts drawn independently per row) or time (ts non-decreasing in file order)
# per_lead:     events per lead on average (L = N / per_lead; each row picks its lead uniformly)
# event_id:     None, int-seq (1, 2, 3 ... in file order), int-scrambled (a bijection of the row
#               number onto 0..2^63), text-seq ('evt-0000000001'), text-uuid
# dup_share:    share of rows that are exact copies (every column) of the row before them
# columns:      optional columns present besides lead_id, ts, action (and event_id)
# bad:          null_lead / null_ts (shares of rows), bad_value (share of video_play and
#               nps_response rows whose value is null or out of range); clean shapes have none
# leads:        None, or the leads file: coverage of the event leads, extra leads without
#               events, leads per account, account id type, share without account, extras
# layout:       file (events.parquet), files8 (events/ with 8 files, split by row range),
#               hive-month (events/month=YYYY-MM/...)
SHAPES = {
    "plain": dict(
        seed=100, ids="int", order="random", per_lead=40, event_id=None, dup_share=0.0,
        columns=[], extra=["session_id"], bad={}, leads=None, layout="file",
        compression="snappy", ts_type="TIMESTAMP", model="plain",
        desc="int ids 1..L, random order, ~40 events/lead, no event_id, no asset/product/value "
             "(nps_response rows, lacking an answer, are rejected), extra session_id; "
             "17 rules, no globs; one file, snappy, ts µs"),
    "plain-id": dict(
        seed=200, ids="int", order="random", per_lead=40, event_id="int-scrambled",
        dup_share=0.0, columns=[], extra=["session_id"], bad={}, leads=None, layout="file",
        compression="snappy", ts_type="TIMESTAMP", model="plain",
        desc="as plain plus a unique int event_id (scrambled numbers, 0 % duplicates); "
             "17 rules, no globs; one file, snappy, ts µs"),
    "text-dups": dict(
        seed=300, ids="email", order="time", per_lead=40, event_id="text-seq", dup_share=0.005,
        columns=["asset", "product"], extra=["user_agent"], bad={},
        leads=dict(cover=0.95, extra=0.02, per_account=8, account="text", no_account=0.03,
                   role=True),
        layout="files8", compression="snappy", ts_type="TIMESTAMP", model="globs",
        desc="text ids 'user123@example.com', time order, ~40 events/lead, text event_id "
             "with 0.5 % exact copies, asset + product, extra user_agent; leads file (text "
             "account_id, role; 95 % of leads + 2 % without events); 22 rules, 5 with globs; "
             "8 files, snappy, ts µs"),
    "many-leads": dict(
        seed=400, ids="int", order="random", per_lead=4, event_id=None, dup_share=0.0,
        columns=[], extra=[], bad={},
        leads=dict(cover=0.90, extra=0.05, per_account=12, account="int", no_account=0.02,
                   role=False),
        layout="file", compression="zstd", ts_type="TIMESTAMP", model="plain",
        desc="int ids, random order, ~4 events/lead, no event_id, no asset/product/value; "
             "leads file (int account_id, ~12 leads/account, 90 % of leads + 5 % without "
             "events); 17 rules, no globs; one file, zstd, ts µs"),
    "heavy-leads": dict(
        seed=500, ids="int", order="time", per_lead=400, event_id="int-seq", dup_share=0.005,
        columns=["asset", "product", "value"], extra=["session_id"],
        bad=dict(null_lead=0.00005, null_ts=0.00005, bad_value=0.002), leads=None,
        layout="files8", compression="zstd", ts_type="TIMESTAMP", model="globs+fraction",
        desc="int ids, time order, ~400 events/lead, int event_id (1, 2, ... in file order) with "
             "0.5 % exact copies, asset + product + value (0.2 % of video/NPS values null or out "
             "of range, 0.005 % null lead_id, 0.005 % null ts), extra session_id; 22 rules, 5 "
             "with globs, a fraction rule; 8 files, zstd, ts µs"),
    "sparse-ids": dict(
        seed=600, ids="sparse", order="random", per_lead=40, event_id=None, dup_share=0.0,
        columns=["asset", "product", "value"], extra=["session_id"], bad={}, leads=None,
        layout="files8", compression="zstd", ts_type="TIMESTAMP_MS", model="globs+fraction",
        desc="int ids random 63-bit, random order, ~40 events/lead, no event_id, asset + "
             "product + value (all in range), extra session_id; 22 rules, 5 with globs, a "
             "fraction rule; 8 files, zstd, ts ms"),
    "text-random": dict(
        seed=700, ids="uuid", order="random", per_lead=4, event_id="text-uuid", dup_share=0.0,
        columns=[], extra=[], bad={}, leads=None, layout="hive-month", compression="snappy",
        ts_type="TIMESTAMPTZ", model="plain",
        desc="text ids (36-char UUIDs), random order, ~4 events/lead, unique text event_id "
             "(UUIDs), no asset/product/value; 17 rules, no globs; hive-partitioned by month "
             "(extra column month), snappy, ts µs with time zone UTC"),
    "text-heavy": dict(
        seed=800, ids="padded", order="random", per_lead=400, event_id=None, dup_share=0.0,
        columns=["asset", "product"], extra=[], bad={}, leads=None, layout="file",
        compression="snappy", ts_type="TIMESTAMP", model="globs",
        desc="text ids 'lead-000000123', random order, ~400 events/lead, no event_id, asset + "
             "product; 22 rules, 5 with globs; one file, snappy, ts µs"),
    "generated": dict(
        seed=7, generated=True, ids="int", per_lead=20, event_id="int",
        columns=["asset", "product", "value"], model="generated", layout="generated",
        desc="`leadscore generate --leads N/20 --events N --seed 7`: int ids, roughly time "
             "order, power-law events per lead, int event_id with copies (a few with another ts), "
             "about 0.1 % broken rows, asset + product + value + channel, leads file (text "
             "account_id, fit attributes); 15 rules, 8 with globs, a fraction rule"),
}

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
]
ROLES = ["vp", " VP ", "director", "Director", "manager", "analyst", "engineer", "consultant",
         "intern", None]


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_size(text):
    """'1M' -> 1000000, '100k' -> 100000, '1.5M' -> 1500000, '2000' -> 2000."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1M, 100k, 20M)")
    n = round(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()])
    if n < 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1000 events")
    return n


def size_label(n):
    """The canonical name of a size: 1000000 -> '1M', 100000 -> '100k', 1500000 -> '1500k'."""
    if n % 10**6 == 0:
        return f"{n // 10**6}M"
    if n % 10**3 == 0:
        return f"{n // 10**3}k"
    return str(n)


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def sql_list(items):
    return "[" + ", ".join("NULL" if x is None else sql_str(x) for x in items) + "]"


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


def run_measured(cmd, stdout_path, stderr_path):
    """Runs cmd as a child; returns (exit code, wall seconds, peak RSS in MiB) via os.wait4."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4: tell Popen not to wait again
    return code, wall, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def tail(path, chars=3000):
    try:
        return Path(path).read_text(errors="replace").strip()[-chars:]
    except OSError:
        return ""


def fail(msg, *files):
    log(f"error: {msg}")
    for f in files:
        text = tail(f)
        if text:
            log(f"--- {f}:\n{text}")
    sys.exit(1)


# ------------------------------------------------------------------------------------------------
# The DuckDB child process
# ------------------------------------------------------------------------------------------------

# The program the venv's Python runs. Modes: probe (import only), run (statements, timed inside
# too), query (named queries, results as JSON).
CHILD = textwrap.dedent(r"""
    import json, sys, time
    mode = sys.argv[1]
    import duckdb
    if mode == "probe":
        print(json.dumps({"version": duckdb.__version__}))
        sys.exit(0)
    job = json.load(open(sys.argv[2]))
    con = duckdb.connect()
    for setting in job["settings"]:
        con.execute(setting)
    start = time.perf_counter()
    if mode == "run":
        for stmt in job["statements"]:
            con.execute(stmt)
        print(json.dumps({"query_seconds": time.perf_counter() - start}))
    elif mode == "query":
        result = {}
        for name, sql in job["queries"].items():
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            result[name] = [dict(zip(cols, row)) for row in cur.fetchall()]
        print(json.dumps(result, default=str))
""")


class Duck:
    """Runs jobs in a DuckDB child process (the venv's Python)."""

    def __init__(self, python, work, threads, memory_limit):
        self.python = python
        self.work = work
        self.child = work / "duck_child.py"
        self.child.write_text(CHILD)
        self.threads = threads
        self.memory_limit = memory_limit
        (work / "duck_tmp").mkdir(exist_ok=True)

    def settings(self, threads=None, memory_limit=True):
        out = [f"SET threads = {int(threads or self.threads)}", "SET TimeZone = 'UTC'",
               f"SET temp_directory = {sql_str(self.work / 'duck_tmp')}"]
        if memory_limit and self.memory_limit:
            out.append(f"SET memory_limit = {sql_str(self.memory_limit)}")
        return out

    def probe(self):
        code, wall, rss = run_measured([str(self.python), str(self.child), "probe"],
                                       self.work / "probe.out", self.work / "probe.err")
        if code != 0:
            fail("the DuckDB probe failed", self.work / "probe.err")
        return json.loads((self.work / "probe.out").read_text())["version"], wall, rss

    def _job(self, mode, name, payload, threads=None, memory_limit=True):
        job = self.work / f"{name}.json"
        job.write_text(json.dumps(dict(payload, settings=self.settings(threads, memory_limit))))
        out, err = self.work / f"{name}.out", self.work / f"{name}.err"
        code, wall, rss = run_measured([str(self.python), str(self.child), mode, str(job)],
                                       out, err)
        return code, wall, rss, out, err

    def run(self, name, statements, **kw):
        """Runs statements; returns (exit code, wall s, peak MiB, in-process s or None, stderr)."""
        code, wall, rss, out, err = self._job("run", name, {"statements": statements}, **kw)
        query_s = json.loads(out.read_text())["query_seconds"] if code == 0 else None
        return code, wall, rss, query_s, err

    def query(self, name, queries, **kw):
        """Runs named queries; returns {name: [row dicts]} or fails the script."""
        code, _, _, out, err = self._job("query", name, {"queries": queries},
                                         memory_limit=False, **kw)
        if code != 0:
            fail(f"DuckDB query job {name} failed", err)
        return json.loads(out.read_text())


# ------------------------------------------------------------------------------------------------
# Generating the data
# ------------------------------------------------------------------------------------------------


def u53(h):
    """A uniform double in [0, 1) from a UBIGINT hash expression."""
    return f"(({h}) >> 11)::DOUBLE / 9007199254740992.0"


def lead_id_expr(kind, no, seed):
    """SQL for the lead_id of lead number `no` (an expression, 1..L)."""
    if kind == "int":
        return f"({no})::BIGINT"
    if kind == "sparse":
        return f"(hash({no}, {seed + 11}) >> 1)::BIGINT"
    if kind == "email":
        return f"'user' || ({no})::VARCHAR || '@example.com'"
    if kind == "padded":
        return f"'lead-' || lpad(({no})::VARCHAR, 9, '0')"
    if kind == "uuid":
        return uuid_expr(f"hash({no}, {seed + 11})", f"hash({no}, {seed + 12})")
    raise ValueError(kind)


def uuid_expr(h1, h2):
    """A 36-character UUID-like text from two UBIGINT hashes (DuckDB's UUID -> text cast)."""
    return f"((({h1})::UHUGEINT << 64) | ({h2}))::UUID::VARCHAR"


def action_expr(col):
    """CASE picking an action from `col`, a number 0..999, by the ACTIONS shares."""
    cases, acc = [], 0
    for name, weight in ACTIONS[:-1]:
        acc += weight
        cases.append(f"WHEN {col} < {acc} THEN {sql_str(name)}")
    return f"CASE {' '.join(cases)} ELSE {sql_str(ACTIONS[-1][0])} END"


ASSET_SQL = """CASE action
    WHEN 'page_view' THEN CASE
        WHEN ak < 8 THEN '/pricing'
        WHEN ak < 10 THEN '/pricing/enterprise'
        WHEN ak < 22 THEN '/product/' || ['analytics', 'crm', 'ads'][1 + an % 3]
        WHEN ak < 25 THEN '/customers/case-' || (an % 40)::VARCHAR
        WHEN ak < 60 THEN '/blog/post-' || (an % 800)::VARCHAR
        WHEN ak < 70 THEN '/'
        WHEN ak < 75 THEN '/careers/job-' || (an % 30)::VARCHAR
        WHEN ak < 90 THEN '/docs/page_' || (an % 200)::VARCHAR
        WHEN ak < 95 THEN '/productivity-tips'
        END
    WHEN 'email_open' THEN CASE
        WHEN ak < 1 THEN 'nl_weekly_vip'
        WHEN ak < 60 THEN 'nl-weekly-digest-' || (an % 104)::VARCHAR
        WHEN ak < 80 THEN 'nl-monthly-roundup'
        ELSE 'product-update-' || (an % 24)::VARCHAR
        END
    WHEN 'email_click' THEN CASE
        WHEN ak < 35 THEN 'product-update-' || (an % 24)::VARCHAR
        WHEN ak < 97 THEN 'nl-weekly-digest-' || (an % 104)::VARCHAR
        END
    WHEN 'ad_click' THEN ['google-search-', 'linkedin-', 'facebook-', 'bing-'][1 + ak % 4]
        || (an % 50)::VARCHAR
    WHEN 'download' THEN CASE
        WHEN ak < 25 THEN 'wp-' || ['roi-guide', 'security', 'migration', 'benchmark'][1 + an % 4]
        WHEN ak < 45 THEN 'ebook-' || (an % 12)::VARCHAR
        WHEN ak < 80 THEN 'datasheet-' || (an % 20)::VARCHAR
        ELSE 'case-study-' || (an % 40)::VARCHAR
        END
    WHEN 'video_play' THEN 'video-' || (an % 60)::VARCHAR
    WHEN 'webinar_signup' THEN 'webinar-' || (an % 36)::VARCHAR
    WHEN 'webinar_attend' THEN 'webinar-' || (an % 36)::VARCHAR
    WHEN 'case_study_view' THEN '/customers/case-' || (an % 40)::VARCHAR
    WHEN 'free_trial' THEN 'trial-' || ['analytics', 'crm', 'ads'][1 + an % 3]
    WHEN 'form_submit' THEN 'form-' || (an % 15)::VARCHAR
    WHEN 'social_click' THEN ['linkedin-post-', 'x-post-', 'youtube-'][1 + ak % 3]
        || (an % 300)::VARCHAR
    WHEN 'event_visit' THEN 'event-' || (an % 25)::VARCHAR
    END"""


def events_select(shape, n, lo, hi):
    """SELECT of event rows lo..hi (of n) of `shape`, as one SQL query."""
    s = shape["seed"]
    leads = max(1, n // shape["per_lead"])
    cols = shape["columns"]
    bad = shape["bad"]
    dup = shape["dup_share"]
    if dup:
        every = round(1 / (2 * dup))  # even rows, one in `every`: dup share of all rows
        src = f"CASE WHEN i % 2 = 0 AND i > 0 AND hash(i, {s}) % {every} = 0 THEN i - 1 ELSE i END"
    else:
        src = "i"
    if shape["order"] == "time":
        step = SPAN_US // n
        ts_us = f"{START_US} + s * {step} + hash(s, {s + 2}) % {step}"
    else:
        ts_us = f"{START_US} + hash(s, {s + 2}) % {SPAN_US}"
    ts = {"TIMESTAMP": "make_timestamp(ts_us)",
          "TIMESTAMP_MS": "make_timestamp(ts_us)::TIMESTAMP_MS",
          "TIMESTAMPTZ": "make_timestamp(ts_us)::TIMESTAMPTZ"}[shape["ts_type"]]
    if bad.get("null_ts"):
        ts = f"CASE WHEN (hb >> 20) % {round(1 / bad['null_ts'])} = 0 THEN NULL ELSE {ts} END"
    lead = lead_id_expr(shape["ids"], "lead_no", s)
    if bad.get("null_lead"):
        lead = f"CASE WHEN hb % {round(1 / bad['null_lead'])} = 0 THEN NULL ELSE {lead} END"

    select = ["lead_id", "ts", "action"]
    inner = [f"{lead} AS lead_id", f"{ts} AS ts", "action"]
    if "asset" in cols:
        inner.append(f"{ASSET_SQL} AS asset")
        select.append("asset")
    if "product" in cols:
        inner.append("[NULL, 'analytics', 'crm', 'ads', 'analytics', 'crm'][1 + ((ha >> 40) % 6)::BIGINT] "
                     "AS product")
        select.append("product")
    if "value" in cols:
        frac = "round(" + u53("hv") + ", 3)"
        nps = "(hv % 11)::DOUBLE"
        if bad.get("bad_value"):
            every = round(1 / bad["bad_value"])
            broken = f"(hv >> 40) % {every} = 0"
            frac = (f"CASE WHEN {broken} THEN [NULL, 1.5, -0.25, 2.0][1 + ((hv >> 20) % 4)::BIGINT] "
                    f"ELSE {frac} END")
            nps = f"CASE WHEN {broken} THEN [NULL, 11.0, -1.0, 42.0][1 + ((hv >> 20) % 4)::BIGINT] ELSE {nps} END"
        inner.append(f"CASE action WHEN 'video_play' THEN {frac} WHEN 'nps_response' THEN {nps} "
                     "END::DOUBLE AS value")
        select.append("value")
    eid = shape["event_id"]
    if eid:
        inner.append({
            "int-seq": "(s + 1)::BIGINT",
            "int-scrambled": "((s::HUGEINT * 6364136223846793005) % 9223372036854775783)::BIGINT",
            "text-seq": "'evt-' || lpad((s + 1)::VARCHAR, 10, '0')",
            "text-uuid": uuid_expr(f"hash(s, {s + 7})", f"hash(s, {s + 8})"),
        }[eid] + " AS event_id")
        select.append("event_id")
    if "session_id" in shape["extra"]:
        inner.append("((hb >> 24) % 1000000000)::BIGINT AS session_id")
        select.append("session_id")
    if "user_agent" in shape["extra"]:
        inner.append(f"{sql_list(USER_AGENTS)}[1 + ((hb >> 44) % {len(USER_AGENTS)})::BIGINT] AS user_agent")
        select.append("user_agent")
    if shape["layout"] == "hive-month":
        select.append("strftime(ts, '%Y-%m') AS month")

    inner_sql = ",\n        ".join(inner)
    return f"""
SELECT {', '.join(select)} FROM (
    SELECT {inner_sql}
    FROM (
        SELECT s, ts_us, hb, ha, hv, an, ak, lead_no, {action_expr("ac")} AS action
        FROM (
            SELECT s,
                   ({ts_us})::BIGINT AS ts_us,
                   1 + hash(s, {s + 1}) % {leads} AS lead_no,
                   (hash(s, {s + 3}) % 1000)::BIGINT AS ac,
                   hash(s, {s + 4}) AS ha,
                   ((hash(s, {s + 4}) >> 8) % 100)::BIGINT AS ak,
                   ((hash(s, {s + 4}) >> 20) % 100000)::BIGINT AS an,
                   hash(s, {s + 5}) AS hv,
                   hash(s, {s + 6}) AS hb
            FROM (SELECT {src} AS s FROM range({lo}, {hi}) t(i))
        )
    )
)"""


def leads_select(shape, n):
    """SELECT of the leads file of `shape` at size n."""
    s = shape["seed"]
    spec = shape["leads"]
    leads = max(1, n // shape["per_lead"])
    extra = round(leads * spec["extra"])
    accounts = max(1, round((leads * spec["cover"] + extra) / spec["per_account"]))
    acct_no = f"1 + hash(lead_no, {s + 32}) % {accounts}"
    acct = f"({acct_no})::BIGINT" if spec["account"] == "int" else f"'acct-' || ({acct_no})::VARCHAR"
    cols = [f"{lead_id_expr(shape['ids'], 'lead_no', s)} AS lead_id",
            f"CASE WHEN {u53(f'hash(lead_no, {s + 33})')} < {spec['no_account']} THEN NULL "
            f"ELSE {acct} END AS account_id"]
    if spec["role"]:
        cols.append(f"{sql_list(ROLES)}[1 + (hash(lead_no, {s + 34}) % {len(ROLES)})::BIGINT] AS role")
    else:
        cols.append(f"(10 * (1 + hash(lead_no, {s + 34}) % 500))::BIGINT AS company_size")
    return f"""
SELECT {', '.join(cols)}
FROM range(1, {leads + extra + 1}) t(lead_no)
WHERE lead_no > {leads} OR {u53(f'hash(lead_no, {s + 31})')} < {spec['cover']}
ORDER BY lead_no"""


def generation_statements(shape, n, target):
    comp = f"COMPRESSION {shape['compression']}"
    stmts = []
    if shape["layout"] == "file":
        stmts.append(f"COPY ({events_select(shape, n, 0, n)}) TO "
                     f"{sql_str(target / 'events.parquet')} (FORMAT parquet, {comp})")
    elif shape["layout"] == "files8":
        (target / "events").mkdir()
        for k in range(8):
            lo, hi = n * k // 8, n * (k + 1) // 8
            stmts.append(f"COPY ({events_select(shape, n, lo, hi)}) TO "
                         f"{sql_str(target / 'events' / f'part-{k:05d}.parquet')} "
                         f"(FORMAT parquet, {comp})")
    elif shape["layout"] == "hive-month":
        stmts.append(f"COPY ({events_select(shape, n, 0, n)}) TO {sql_str(target / 'events')} "
                     f"(FORMAT parquet, {comp}, PARTITION_BY (month))")
    else:
        raise ValueError(shape["layout"])
    if shape["leads"]:
        stmts.append(f"COPY ({leads_select(shape, n)}) TO {sql_str(target / 'leads.parquet')} "
                     f"(FORMAT parquet, {comp})")
    return stmts


def events_path(data):
    return data / "events.parquet" if (data / "events.parquet").exists() else data / "events"


def events_source(data, shape):
    """DuckDB read_parquet(...) of a data set's events."""
    path = events_path(data)
    hive = shape.get("layout") == "hive-month"
    if path.is_file():
        glob = path
    elif hive:
        glob = path / "*" / "*.parquet"
    else:
        glob = path / "**" / "*.parquet"
    return f"read_parquet({sql_str(glob)}, hive_partitioning = {'true' if hive else 'false'})"


def ensure_data(name, shape, n, data_dir, duck, leadscore_fn, threads, quiet=False):
    """DATA/matrix/<name>-<size>/, generated (atomically) when missing; returns (dir, info)."""
    label = f"{name}-{size_label(n)}"
    target = data_dir / "matrix" / label
    info_path = target / "shape.json"
    if info_path.exists():
        return target, json.loads(info_path.read_text())
    if target.exists():
        fail(f"{target} exists but has no shape.json (an incomplete data set?); remove it to have "
             "it generated")
    partial = data_dir / "matrix" / f"{label}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if shape.get("generated"):
        leadscore = leadscore_fn()
        cmd = [str(leadscore), "generate", "--leads", str(max(1, n // 20)), "--events", str(n),
               "--seed", str(shape["seed"]), "--out", str(partial), "--quiet"]
        log(f"generating {label}: {' '.join(cmd)}")
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            fail(f"leadscore generate failed ({res.returncode}): {res.stderr.strip()[-3000:]}")
    else:
        log(f"generating {label} with DuckDB ({threads} threads)")
        partial.mkdir()
        code, _, _, _, err = duck.run(f"gen-{label}", generation_statements(shape, n, partial),
                                      threads=threads, memory_limit=False)
        if code != 0:
            fail(f"generating {label} failed", err)
    gen_seconds = time.perf_counter() - start
    summary = inspect_data(partial, shape, duck, label, threads)
    inspect_seconds = time.perf_counter() - start - gen_seconds
    info = {
        "shape": name, "size": n, "label": label,
        "description": shape["desc"],
        "spec": {k: v for k, v in shape.items() if k != "desc"},
        "layout": shape["layout"],
        "events": str(events_path(partial).relative_to(partial)),
        "leads": "leads.parquet" if (partial / "leads.parquet").exists() else None,
        "generate_seconds": round(gen_seconds, 2),
        "inspect_seconds": round(inspect_seconds, 2),
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duckdb_version": duck_version_cached,
        "summary": summary,
    }
    (partial / "shape.json").write_text(json.dumps(info, indent=2) + "\n")
    partial.rename(target)
    log(f"generated {label} in {gen_seconds:.1f} s (and inspected in {inspect_seconds:.1f} s)"
        + ("" if quiet else f": {summary_line(summary)}"))
    return target, info


def inspect_data(data, shape, duck, label, threads):
    """What the generated data holds (DuckDB queries over the files): stored in shape.json."""
    src = events_source(data, shape)
    cols = set(shape["columns"])
    has_eid = bool(shape.get("event_id"))
    all_cols = ["lead_id", "ts", "action"] + [c for c in ("asset", "product", "value")
                                              if c in cols] + (["event_id"] if has_eid else [])
    q = {}
    q["rows"] = f"""
        SELECT count(*) AS rows, count(DISTINCT lead_id) AS leads,
               count(*) FILTER (WHERE lead_id IS NULL) AS null_lead_id,
               count(*) FILTER (WHERE ts IS NULL) AS null_ts,
               count(*) FILTER (WHERE action IS NULL) AS null_action,
               count(DISTINCT action) AS actions,
               min(ts)::VARCHAR AS min_ts, max(ts)::VARCHAR AS max_ts,
               count(*) FILTER (WHERE action = 'page_view') / count(*) AS share_page_view,
               count(*) FILTER (WHERE action = 'email_open') / count(*) AS share_email_open,
               count(*) FILTER (WHERE action = 'demo_request') / count(*) AS share_demo_request,
               min(lead_id)::VARCHAR AS min_lead_id, max(lead_id)::VARCHAR AS max_lead_id
        FROM {src}"""
    if has_eid:
        # Per event_id: its rows, and whether its copies differ anywhere (hashes of the rows).
        row_hash = f"hash({', '.join(c for c in all_cols if c != 'event_id')})"
        q["event_id"] = f"""
            SELECT count(*) AS distinct_event_ids, sum(n) AS with_event_id,
                   count(*) FILTER (WHERE n > 1) AS repeated_ids,
                   count(*) FILTER (WHERE lo <> hi) AS ids_with_differing_copies
            FROM (SELECT event_id, count(*) AS n, min({row_hash}) AS lo, max({row_hash}) AS hi
                  FROM {src} WHERE event_id IS NOT NULL GROUP BY event_id)"""
    if "value" in cols:
        q["value"] = f"""
            SELECT count(*) FILTER (WHERE action = 'video_play') AS video_rows,
                   count(*) FILTER (WHERE action = 'video_play' AND (value IS NULL OR value < 0
                       OR value > 1)) AS video_bad,
                   count(*) FILTER (WHERE action = 'nps_response') AS nps_rows,
                   count(*) FILTER (WHERE action = 'nps_response' AND (value IS NULL OR value < 0
                       OR value > 10)) AS nps_bad
            FROM {src}"""
    if "asset" in cols:
        q["asset"] = f"""
            SELECT count(*) FILTER (WHERE asset IS NULL) / count(*) AS share_null_asset,
                   count(DISTINCT asset) AS distinct_assets,
                   count(*) FILTER (WHERE asset = 'nl_weekly_vip') AS nl_weekly_vip
            FROM {src}"""
    # Order: rows whose ts is below the previous row's in the same file (first 100k rows of each).
    q["order"] = f"""
        SELECT count(*) FILTER (WHERE ts < prev) AS out_of_order, count(prev) AS pairs FROM (
            SELECT ts, lag(ts) OVER (PARTITION BY filename ORDER BY file_row_number) AS prev
            FROM read_parquet({sql_str(events_glob_of(data, shape))}, filename = true,
                              file_row_number = true,
                              hive_partitioning = {'true' if shape['layout'] == 'hive-month' else 'false'})
            WHERE file_row_number < 100000)"""
    q["files"] = f"""
        SELECT count(DISTINCT file_name) AS files, count(*) AS row_groups_x_columns,
               string_agg(DISTINCT compression, ',') AS compression
        FROM parquet_metadata({sql_str(events_glob_of(data, shape))})"""
    q["ts_type"] = f"""
        SELECT DISTINCT type, logical_type::VARCHAR AS logical_type
        FROM parquet_schema({sql_str(events_glob_of(data, shape))}) WHERE name = 'ts'"""
    if (data / "leads.parquet").exists():
        lp = f"read_parquet({sql_str(data / 'leads.parquet')})"
        q["leads_file"] = f"""
            WITH ev AS (SELECT DISTINCT lead_id FROM {src} WHERE lead_id IS NOT NULL)
            SELECT (SELECT count(*) FROM {lp}) AS rows,
                   (SELECT count(*) FROM {lp} WHERE account_id IS NULL) AS no_account,
                   (SELECT count(DISTINCT account_id) FROM {lp}) AS accounts,
                   (SELECT count(*) FROM {lp} l SEMI JOIN ev ON ev.lead_id = l.lead_id)
                       AS with_events,
                   (SELECT count(*) FROM ev) AS event_leads"""
    res = duck.query(f"inspect-{label}", q, threads=threads)
    out = {k: (v[0] if len(v) == 1 else v) for k, v in res.items()}
    out["bytes"] = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    return out


def events_glob_of(data, shape):
    path = events_path(data)
    if path.is_file():
        return path
    return path / ("*/*.parquet" if shape.get("layout") == "hive-month" else "**/*.parquet")


def ts_type_name(logical):
    """'TimestampType(isAdjustedToUTC=1, unit=...MICROS=MicroSeconds()...)' -> 'µs UTC'."""
    unit = next((u for k, u in (("MILLIS=Milli", "ms"), ("MICROS=Micro", "µs"),
                                ("NANOS=Nano", "ns")) if k in logical), logical)
    return unit + (" adjusted to UTC" if "isAdjustedToUTC=1" in logical else " no zone")


def summary_line(s):
    """One line saying what a data set holds (from its shape.json summary)."""
    try:
        return _summary_line(s)
    except (KeyError, TypeError) as e:
        return f"(summary in an older format: {e!r}; delete the directory to regenerate)"


def _summary_line(s):
    r = s["rows"]
    parts = [f"{r['rows']:,} rows", f"{r['leads']:,} leads ({r['rows'] / max(1, r['leads']):.1f} "
             f"per lead)", f"ids {r['min_lead_id']}..{r['max_lead_id']}",
             f"ts {r['min_ts']} .. {r['max_ts']}",
             f"page_view {100 * r['share_page_view']:.1f} %, email_open "
             f"{100 * r['share_email_open']:.1f} %, demo_request "
             f"{100 * r['share_demo_request']:.2f} % ({r['actions']} actions)"]
    if r["null_lead_id"] or r["null_ts"] or r["null_action"]:
        parts.append(f"null lead_id {r['null_lead_id']}, null ts {r['null_ts']}, "
                     f"null action {r['null_action']}")
    if "event_id" in s:
        e = s["event_id"]
        dups = r["rows"] - e["distinct_event_ids"]
        if dups == 0:
            parts.append("event_id unique")
        else:
            differ = e["ids_with_differing_copies"]
            exact = "all exact copies" if differ == 0 else \
                f"{differ} of {e['repeated_ids']:,} repeated ids have copies that differ"
            parts.append(f"event_id: {dups:,} repeated rows ({100 * dups / r['rows']:.2f} %, "
                         f"{exact})")
    if "value" in s:
        v = s["value"]
        parts.append(f"video_play bad values {v['video_bad']}/{v['video_rows']}, nps bad "
                     f"{v['nps_bad']}/{v['nps_rows']}")
    if "asset" in s:
        a = s["asset"]
        parts.append(f"{a['distinct_assets']} assets, {100 * a['share_null_asset']:.1f} % null, "
                     f"nl_weekly_vip {a['nl_weekly_vip']}")
    o = s["order"]
    parts.append(f"{100 * o['out_of_order'] / max(1, o['pairs']):.1f} % of rows before their "
                 "predecessor's ts")
    f = s["files"]
    t = s["ts_type"]
    t = t if isinstance(t, list) else [t]
    parts.append(f"{f['files']} file(s), {f['compression']}, ts "
                 + "/".join(ts_type_name(x['logical_type']) for x in t)
                 + f", {s['bytes'] / 2**20:.1f} MiB")
    if "leads_file" in s:
        lf = s["leads_file"]
        parts.append(f"leads file {lf['rows']:,} rows ({lf['with_events']:,} with events = "
                     f"{100 * lf['with_events'] / max(1, lf['event_leads']):.1f} % of event leads, "
                     f"{lf['rows'] - lf['with_events']:,} without), {lf['accounts']:,} accounts, "
                     f"{lf['no_account']:,} without account")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------


def model_toml(rules, general=False):
    """The closed-form model; with general=True the same rules, two negative ones first, under a
    decay no closed form covers (linear, with grace days and a floor)."""
    if general:
        decay = ['kind = "linear"', "points = 5", "period_days = 30", "grace_days = 7",
                 "floor = 0.25"]
        rules = [dict(action="page_view", assets=["/careers*"], points=-10),
                 dict(action="unsubscribe", points=-20)] + rules
    else:
        decay = ['kind = "exponential"', f"half_life_days = {HALF_LIFE_DAYS}", "grace_days = 0",
                 "floor = 0"]
    lines = [
        "# Written by benches/matrix.py"
        + (": the closed-form model made general (linear decay, grace, floor, negative rules)."
           if general else ": a model DuckDB can compute in closed form (exponential decay, no "
           "grace, no floor, positive points, no fit rules)."),
        'name = "bench"',
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
# The DuckDB SQL a data team would write for each shape
# ------------------------------------------------------------------------------------------------


def rule_condition(r, prefix=""):
    cond = f"{prefix}action = {sql_str(r['action'])}"
    if "assets" in r:
        # A rule with globs never matches a null asset: LIKE on null is null, i.e. not true.
        globs = " OR ".join(f"{prefix}asset LIKE {sql_str(glob_to_like(g))} ESCAPE '\\'"
                            for g in r["assets"])
        cond += f" AND ({globs})"
    return cond


def points_case(rules, prefix=""):
    """CASE giving a row's points under the first matching rule (null when none matches)."""
    if not any("assets" in r or "scale" in r for r in rules):
        whens = "\n".join(f"            WHEN {sql_str(r['action'])} THEN {float(r['points'])!r}"
                          for r in rules)
        return f"CASE {prefix}action\n{whens}\n        END"
    whens = []
    for r in rules:
        pts = f"{float(r['points'])!r}"
        if r.get("scale") == "fraction":
            pts = f"{pts} * {prefix}value"
        whens.append(f"            WHEN {rule_condition(r, prefix)} THEN {pts}")
    return "CASE\n" + "\n".join(whens) + "\n        END"


def rule_id_case(rules, prefix=""):
    whens = "\n".join(f"            WHEN {rule_condition(r, prefix)} THEN {i}"
                      for i, r in enumerate(rules, start=1))
    return f"CASE\n{whens}\n        END"


def decay_factor(ts="ts"):
    return (f"pow(2.0, (epoch_us({ts}) - {CUTOFF_US}) / {float(MICROS_PER_DAY * HALF_LIFE_DAYS)!r})")


CUTOFF_SQL = {"TIMESTAMP": f"TIMESTAMP '{CUTOFF_DAY} 00:00:00'",
              "TIMESTAMP_MS": f"TIMESTAMP '{CUTOFF_DAY} 00:00:00'",
              "TIMESTAMPTZ": f"TIMESTAMPTZ '{CUTOFF_DAY} 00:00:00+00'"}


def lead_activity_sql(shape, data, rules):
    """WITH ... lead_activity(lead_id, engagement): the closed-form engagement per lead, for a
    shape this script generated, with exactly the cleaning that shape needs."""
    src = events_source(data, shape)
    cols = set(shape["columns"])
    need = ["lead_id", "ts", "action"] + [c for c in ("asset", "value") if c in cols]
    if shape["dup_share"]:
        # Copies are exact in every column: DISTINCT over the columns scoring reads plus event_id
        # (at 10M rows as fast as QUALIFY row_number() OVER (PARTITION BY event_id) = 1, and
        # faster than GROUP BY event_id with any_value()).
        events = f"SELECT DISTINCT {', '.join(need + ['event_id'])} FROM {src}"
    else:
        # Unique event_ids or none: nothing to de-duplicate.
        events = f"SELECT {', '.join(need)} FROM {src}"
    where = [f"ts < {CUTOFF_SQL[shape['ts_type']]}"]
    if shape["bad"].get("null_lead"):
        where.append("lead_id IS NOT NULL")
    if "value" not in cols:
        # No answer column: every nps_response row is rejected (a null answer).
        where.append("action <> 'nps_response'")
    elif shape["bad"].get("bad_value"):
        fractions = sorted({r["action"] for r in rules if r.get("scale") == "fraction"})
        for a in fractions:
            where.append(f"(action <> {sql_str(a)} OR value BETWEEN 0 AND 1)")
        where.append("(action <> 'nps_response' OR value BETWEEN 0 AND 10)")
    return f"""
WITH events AS (
    {events}
),
lead_activity AS (
    SELECT lead_id,
           coalesce(sum(
               {points_case(rules)} * {decay_factor()}
           ), 0.0) AS engagement
    FROM events
    WHERE {' AND '.join(where)}
    GROUP BY lead_id
)"""


def generated_lead_activity_sql(data, rules):
    """For `leadscore generate` data (copies that differ in ts, null actions, ...): the whole
    pipeline, as queries/*.sql do it for this model."""
    return pipeline_ctes(events_source(data, {}), rules) + """,
lead_activity AS (
    SELECT lead_id,
           coalesce(sum(points * """ + decay_factor() + f""") FILTER (WHERE rule_id IS NOT NULL),
                    0.0) AS engagement
    FROM judged
    WHERE reason IS NULL AND ts < {CUTOFF_SQL['TIMESTAMPTZ']}
    GROUP BY lead_id
)"""


def pipeline_ctes(src, rules, dedup="general", columns=("asset", "product", "value", "event_id")):
    """WITH clause ending in `judged`: every kept row, its rule, points and reject reason, as
    queries/duplicate_events.sql, kept_events.sql and judged_events.sql define them. dedup is
    `general` (the first copy by ts, lead_id, ...), `exact` (DISTINCT) or None."""
    sel = ["lead_id", "ts", "action"] + [
        c if c in columns else f"NULL::{'DOUBLE' if c == 'value' else 'VARCHAR'} AS {c}"
        for c in ("asset", "product", "value", "event_id")]
    fraction_ids = [str(i) for i, r in enumerate(rules, start=1) if r.get("scale") == "fraction"]
    is_fraction = f"m.rule_id IN ({', '.join(fraction_ids)})" if fraction_ids else "false"
    rule_points = "\n".join(
        f"            WHEN {i} THEN {float(r['points'])!r}"
        + (" * m.value" if r.get("scale") == "fraction" else "")
        for i, r in enumerate(rules, start=1))
    if dedup == "general":
        kept = f"""
events AS (SELECT {', '.join(sel)} FROM {src}),
repeated AS (
    SELECT event_id FROM events WHERE event_id IS NOT NULL
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
kept AS (
    SELECT e.* FROM events e ANTI JOIN repeated r ON r.event_id = e.event_id
    UNION ALL
    SELECT lead_id, ts, action, asset, product, value, event_id
    FROM duplicate_events WHERE copy = 1
)"""
    elif dedup == "exact":
        kept = f"kept AS (SELECT DISTINCT {', '.join(sel)} FROM {src})"
    else:
        kept = f"kept AS (SELECT {', '.join(sel)} FROM {src})"
    return f"""
WITH {kept},
matched AS (
    SELECT k.*, {rule_id_case(rules, 'k.')} AS rule_id
    FROM kept k
),
judged AS (
    SELECT m.lead_id, m.ts, m.action, m.asset, m.value, m.rule_id,
           CASE m.rule_id
{rule_points}
           END AS points,
           CASE
               WHEN m.lead_id IS NULL THEN 'null lead_id'
               WHEN m.ts IS NULL THEN 'null ts'
               WHEN m.action IS NULL THEN 'null action'
               WHEN {is_fraction} AND (m.value IS NULL OR m.value < 0 OR m.value > 1)
                   THEN 'fraction outside 0..1'
               WHEN m.action = 'nps_response' AND (m.value IS NULL OR m.value < 0 OR m.value > 10)
                   THEN 'nps answer outside 0..10'
           END AS reason
    FROM matched m
)"""


def score_statements(shape, info, data, rules, out_dir):
    if shape.get("generated"):
        activity = generated_lead_activity_sql(data, rules)
    else:
        activity = lead_activity_sql(shape, data, rules)
    lead_out = sql_str(out_dir / "lead_scores.parquet")
    if not info["leads"]:
        return [f"""COPY ({activity}
SELECT lead_id, NULL::VARCHAR AS account_id, engagement, engagement AS score
FROM lead_activity ORDER BY lead_id) TO {lead_out} (FORMAT parquet)"""]
    leads = f"read_parquet({sql_str(data / info['leads'])})"
    return [
        f"""CREATE TEMP TABLE lead_scores AS {activity}
SELECT coalesce(a.lead_id, l.lead_id) AS lead_id, l.account_id,
       coalesce(a.engagement, 0.0) AS engagement, coalesce(a.engagement, 0.0) AS score
FROM lead_activity a FULL OUTER JOIN (SELECT lead_id, account_id FROM {leads}) l
    ON l.lead_id = a.lead_id""",
        f"COPY (SELECT * FROM lead_scores ORDER BY lead_id) TO {lead_out} (FORMAT parquet)",
        f"""COPY (
    SELECT account_id, sum(score) AS score, count(*) AS leads,
           count(*) FILTER (WHERE engagement > 0) AS engaged_leads
    FROM lead_scores WHERE account_id IS NOT NULL
    GROUP BY account_id ORDER BY account_id
) TO {sql_str(out_dir / 'account_scores.parquet')} (FORMAT parquet)""",
    ]


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------


def check_queries(shape, info, data, rules, ls_out, duck_out):
    tol = f"{TOLERANCE!r}"

    def close(a, b):
        return f"abs({a} - {b}) <= {tol} * greatest(1.0, abs({a}), abs({b}))"

    def compare(name, key, cols, text_cols=()):
        ls = f"read_parquet({sql_str(ls_out / name / '*.parquet')})"
        dk = f"read_parquet({sql_str(duck_out / (name + '.parquet'))})"
        sel = ", ".join([*cols, *(f"{c}::VARCHAR AS {c}" for c in text_cols)])
        parts = []
        for c in cols:
            a, b = f"a.{c}", f"b.{c}"
            parts.append(f"""
            count(*) FILTER (WHERE a.k IS NOT NULL AND b.k IS NOT NULL
                AND NOT ({close(a, b)})) AS bad_{c},
            coalesce(max(CASE WHEN {a} = {b} THEN 0.0
                ELSE abs({a} - {b}) / greatest(abs({a}), abs({b})) END), 0.0) AS max_rel_{c},
            sum({a}) AS sum_leadscore_{c}, sum({b}) AS sum_duckdb_{c}""")
        for c in text_cols:
            parts.append(f"""
            count(*) FILTER (WHERE a.k IS NOT NULL AND b.k IS NOT NULL
                AND a.{c} IS DISTINCT FROM b.{c}) AS bad_{c}""")
        return f"""
        WITH a AS (SELECT {key} AS k, true AS present, {sel} FROM {ls}),
             b AS (SELECT {key} AS k, true AS present, {sel} FROM {dk})
        SELECT
            (SELECT count(*) FROM a) AS rows_leadscore,
            (SELECT count(DISTINCT k) FROM a) AS distinct_leadscore,
            (SELECT count(*) FROM b) AS rows_duckdb,
            count(*) FILTER (WHERE a.present IS NULL) AS only_duckdb,
            count(*) FILTER (WHERE b.present IS NULL) AS only_leadscore,
            {",".join(parts)}
        FROM a FULL OUTER JOIN b ON a.k = b.k"""

    def examples(name, key, cols):
        ls = f"read_parquet({sql_str(ls_out / name / '*.parquet')})"
        dk = f"read_parquet({sql_str(duck_out / (name + '.parquet'))})"
        shown = ", ".join(f"a.{c} AS leadscore_{c}, b.{c} AS duckdb_{c}" for c in cols)
        bad = " OR ".join(f"NOT ({close('a.' + c, 'b.' + c)})" for c in cols if c != "account_id")
        if "account_id" in cols:
            bad += " OR a.account_id::VARCHAR IS DISTINCT FROM b.account_id::VARCHAR"
        return f"""
        SELECT coalesce(a.{key}, b.{key})::VARCHAR AS {key}, {shown}
        FROM {ls} a FULL OUTER JOIN {dk} b ON a.{key} = b.{key}
        WHERE a.{key} IS NULL OR b.{key} IS NULL OR {bad}
        ORDER BY 1 LIMIT 5"""

    src = events_source(data, shape)
    if shape.get("generated"):
        ctes = pipeline_ctes(src, rules, dedup="general")
    else:
        ctes = pipeline_ctes(src, rules, dedup="exact" if shape["dup_share"] else None,
                             columns=set(shape["columns"]) | ({"event_id"} if shape["event_id"]
                                                              else set()))
    rejects_dir = ls_out / "rejects"
    q = {
        "leads": compare("lead_scores", "lead_id", ["engagement", "score"], ["account_id"]),
        "lead_examples": examples("lead_scores", "lead_id", ["engagement", "score", "account_id"]),
        "rejects_duckdb": ctes + """
            SELECT count(*) FILTER (WHERE reason IS NOT NULL) AS rejected, count(*) AS kept,
                   count(*) FILTER (WHERE reason IS NULL AND rule_id IS NULL) AS unmatched
            FROM judged""",
        "rejects_leadscore": (
            f"SELECT count(*) AS n FROM read_parquet({sql_str(rejects_dir / '*.parquet')})"
            if any(rejects_dir.glob("*.parquet")) else "SELECT 0 AS n"),
    }
    if info["leads"]:
        q["accounts"] = compare("account_scores", "account_id", ["score", "leads"])
        q["account_examples"] = examples("account_scores", "account_id", ["score", "leads"])
    return q


def close_enough(a, b):
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def report_check(label, res):
    """Logs the check's findings; returns (ok, details dict)."""
    ok = True
    details = {}
    parts = [("leads", ["engagement", "score"], ["account_id"])]
    if "accounts" in res:
        parts.append(("accounts", ["score", "leads"], []))
    for what, cols, text_cols in parts:
        r = res[what][0]
        same_keys = (r["only_duckdb"] == 0 and r["only_leadscore"] == 0
                     and r["rows_leadscore"] == r["distinct_leadscore"]
                     and r["rows_leadscore"] == r["rows_duckdb"])
        bad = sum(r[f"bad_{c}"] for c in cols + text_cols)
        sums_close = all(close_enough(r[f"sum_leadscore_{c}"] or 0.0, r[f"sum_duckdb_{c}"] or 0.0)
                         for c in cols)
        status = "ok" if same_keys and bad == 0 and sums_close else "MISMATCH"
        ok &= status == "ok"
        details[what] = r
        detail = ", ".join(
            f"{c}: max rel diff {r[f'max_rel_{c}']:.3g}, {r[f'bad_{c}']} beyond {TOLERANCE:g}, "
            f"sums {r[f'sum_leadscore_{c}']!r} (leadscore) vs {r[f'sum_duckdb_{c}']!r} (DuckDB)"
            for c in cols)
        for c in text_cols:
            detail += f", {c}: {r[f'bad_{c}']} differ"
        log(f"check {label} {what}: {status}: {r['rows_leadscore']} rows in leadscore "
            f"({r['distinct_leadscore']} distinct), {r['rows_duckdb']} in DuckDB, "
            f"{r['only_leadscore']} only in leadscore, {r['only_duckdb']} only in DuckDB; {detail}")
    rej_dk = res["rejects_duckdb"][0]
    rej_ls = res["rejects_leadscore"][0]["n"]
    details["rejects"] = {"leadscore": rej_ls, "duckdb": rej_dk["rejected"],
                          "kept_rows": rej_dk["kept"], "unmatched": rej_dk["unmatched"]}
    if rej_ls != rej_dk["rejected"]:
        ok = False
        log(f"check {label} rejects: MISMATCH: leadscore {rej_ls}, DuckDB {rej_dk['rejected']}")
    else:
        log(f"check {label} rejects: ok: {rej_ls} rejected of {rej_dk['kept']} kept rows "
            f"({rej_dk['unmatched']} good rows unmatched)")
    if not ok:
        for name in ("lead_examples", "account_examples"):
            for row in res.get(name, []):
                log(f"  {name[:-9]} differs: {row}")
    return ok, details


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

duck_version_cached = None


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


def machine_line(duck_version, leadscore):
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "duckdb": duck_version,
            "python": platform.python_version(), "leadscore": str(leadscore),
            "git": rev + (" (modified)" if dirty else "")}


def list_shapes():
    for name, shape in SHAPES.items():
        print(f"{name:12} {shape['desc']}")


def main():
    global duck_version_cached
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--sizes", default="1M",
                    help="comma-separated sizes in event rows, e.g. 1M,20M,100M (default 1M)")
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs of each engine per shape and size, interleaved (default 3)")
    ap.add_argument("--shapes", help="comma-separated shapes (default: all; see --list)")
    ap.add_argument("--data", type=Path, default=REPO / "bench-data",
                    help="data directory (default bench-data/ in the repository): data in "
                         "DATA/matrix/<shape>-<size>/, the DuckDB venv in DATA/.venv")
    ap.add_argument("--leadscore", type=Path,
                    help="leadscore binary (default: cargo build --release --locked, and use it)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for both engines and for generating (default: all cores)")
    ap.add_argument("--general", action="store_true",
                    help="also time leadscore with a general model (no closed form), reported as "
                         "a ratio to the closed-form run")
    ap.add_argument("--memory-limit", help="e.g. 2GB: leadscore --memory-limit and DuckDB's "
                                           "memory_limit")
    ap.add_argument("--keep-outputs", action="store_true",
                    help="keep the last outputs of every engine (a mismatch keeps them anyway)")
    ap.add_argument("--json", type=Path, help="write every measurement to this JSON file")
    ap.add_argument("--list", action="store_true", help="list the shapes and exit")
    ap.add_argument("--generate-only", action="store_true",
                    help="only make (or reuse) the data, and print what it holds")
    args = ap.parse_args()

    if args.list:
        list_shapes()
        return
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    shapes = [s.strip() for s in args.shapes.split(",")] if args.shapes else list(SHAPES)
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shape(s): {', '.join(unknown)} (see --list)")
    if not sizes or args.runs < 1 or args.threads < 1:
        ap.error("need at least one size, --runs >= 1 and --threads >= 1")

    data_dir = args.data.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    python = ensure_duckdb(data_dir / ".venv")
    work = Path(tempfile.mkdtemp(prefix="matrix-run-", dir=data_dir))
    duck = Duck(python, work, args.threads, args.memory_limit)
    duck_version, probe_wall, probe_rss = duck.probe()
    duck_version_cached = duck_version

    leadscore_path = []

    def leadscore():
        if not leadscore_path:
            binary = args.leadscore.resolve() if args.leadscore else build_leadscore()
            if not os.access(binary, os.X_OK):
                fail(f"{binary} is not an executable")
            leadscore_path.append(binary)
        return leadscore_path[0]

    if args.generate_only:
        for n in sizes:
            for name in shapes:
                data, info = ensure_data(name, SHAPES[name], n, data_dir, duck, leadscore,
                                         args.threads, quiet=True)
                print(f"{info['label']} ({info['generate_seconds']} s to generate): "
                      f"{summary_line(info['summary'])}")
        shutil.rmtree(work, ignore_errors=True)
        return

    binary = leadscore()
    results = []
    failed = False
    for n in sizes:
        for name in shapes:
            shape = SHAPES[name]
            data, info = ensure_data(name, shape, n, data_dir, duck, leadscore, args.threads)
            res = bench_one(args, name, shape, n, data, info, binary, duck, work)
            results.append(res)
            failed |= res["check"] != "ok"

    machine = machine_line(duck_version, binary)
    print_report(args, results, sizes, shapes, machine, probe_wall, probe_rss)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine, "threads": args.threads, "runs": args.runs,
            "memory_limit": args.memory_limit, "as_of": AS_OF,
            "duckdb_baseline": {"seconds": probe_wall, "peak_mib": probe_rss},
            "results": results}, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    if failed:
        log(f"outputs kept in {work}")
        sys.exit(1)
    if args.keep_outputs:
        log(f"outputs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def bench_one(args, name, shape, n, data, info, binary, duck, work):
    label = info["label"]
    rules = rules_for(shape["model"])
    case_dir = work / label
    case_dir.mkdir()
    model = case_dir / "model.toml"
    model.write_text(model_toml(rules))
    general_model = case_dir / "general.toml"
    general_model.write_text(model_toml(rules, general=True))
    leads = data / info["leads"] if info["leads"] else None

    def ls_cmd(model_path, out):
        cmd = [str(binary), "score", "--events", str(events_path(data))]
        if leads:
            cmd += ["--leads", str(leads)]
        cmd += ["--model", str(model_path), "--as-of", AS_OF, "--out", str(out), "--quiet",
                "--threads", str(args.threads)]
        if args.memory_limit:
            cmd += ["--memory-limit", args.memory_limit]
        return cmd

    res = {"shape": name, "size": n, "label": label, "rows": info["summary"]["rows"]["rows"],
           "runs": [], "check": "not run", "data": str(data)}
    ls_out = duck_out = None
    for run in range(1, args.runs + 1):
        rec = {}
        # leadscore, closed-form model.
        if ls_out:
            shutil.rmtree(ls_out, ignore_errors=True)
        ls_out = case_dir / f"leadscore-{run}"
        cmd = ls_cmd(model, ls_out)
        code, wall, rss = run_measured(cmd, case_dir / "ls.out", case_dir / "ls.err")
        if code != 0:
            log(f"leadscore exited with {code}: {' '.join(cmd)}\n{tail(case_dir / 'ls.err')}")
            res["check"] = f"leadscore failed ({code})"
            res["error"] = tail(case_dir / "ls.err")
            return res
        rec.update(leadscore_s=wall, leadscore_mib=rss)

        # DuckDB.
        if duck_out:
            shutil.rmtree(duck_out, ignore_errors=True)
        duck_out = case_dir / f"duckdb-{run}"
        duck_out.mkdir()
        code, dwall, drss, dq, derr = duck.run(
            f"{label}-score", score_statements(shape, info, data, rules, duck_out))
        if code != 0:
            log(f"DuckDB exited with {code}\n{tail(derr)}")
            res["check"] = f"DuckDB failed ({code})"
            res["error"] = tail(derr)
            return res
        rec.update(duckdb_s=dwall, duckdb_mib=drss, duckdb_query_s=dq)

        # leadscore, general model (not checked: no closed form).
        if args.general:
            gen_out = case_dir / f"general-{run}"
            code, gwall, grss = run_measured(ls_cmd(general_model, gen_out),
                                             case_dir / "gen.out", case_dir / "gen.err")
            shutil.rmtree(gen_out, ignore_errors=True)
            if code != 0:
                log(f"leadscore (general model) exited with {code}\n{tail(case_dir / 'gen.err')}")
                res["check"] = f"general model failed ({code})"
                res["error"] = tail(case_dir / "gen.err")
                return res
            rec.update(general_s=gwall, general_mib=grss)
        res["runs"].append(rec)
        log(f"{label} run {run}/{args.runs}: leadscore {wall:.3f} s {rss:.0f} MiB, DuckDB "
            f"{dwall:.3f} s (queries {dq:.3f} s) {drss:.0f} MiB, ratio {wall / dwall:.2f}"
            + (f", general {rec['general_s']:.3f} s ({rec['general_s'] / wall:.2f}x)"
               if args.general else ""))

    # The check: the last outputs of both, compared by a separate DuckDB process (not timed).
    found = duck.query(f"{label}-check",
                       check_queries(shape, info, data, rules, ls_out, duck_out))
    ok, details = report_check(label, found)
    res["check"] = "ok" if ok else "MISMATCH"
    res["check_details"] = details
    res["leads"] = details["leads"]["rows_leadscore"]
    if ok and not args.keep_outputs:
        shutil.rmtree(case_dir, ignore_errors=True)
    elif not ok:
        log(f"outputs kept for inspection: {ls_out} and {duck_out}")
    return res


def print_report(args, results, sizes, shapes, machine, probe_wall, probe_rss):
    print()
    head = ["shape", "events", "leads", "leadscore s", "DuckDB s", "ratio (leadscore/DuckDB)",
            "leadscore peak MiB", "DuckDB peak MiB", "leadscore µs per 1k events", "check"]
    align = ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"]
    if args.general:
        head.append("general / closed form")
        align.append("---:")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(align) + "|")
    worst = {}
    for r in results:
        runs = r["runs"]
        if len(runs) < args.runs:
            cells = [r["shape"], f"{r['rows']:,}", "", "", "", "", "", "", "", r["check"]]
            if args.general:
                cells.append("")
            print("| " + " | ".join(cells) + " |")
            continue
        lm = statistics.median(x["leadscore_s"] for x in runs)
        dm = statistics.median(x["duckdb_s"] for x in runs)
        ratio = lm / dm
        r["median"] = {"leadscore_s": lm, "duckdb_s": dm, "ratio": ratio}
        if r["size"] not in worst or ratio > worst[r["size"]][1]:
            worst[r["size"]] = (r["shape"], ratio)
        cells = [r["shape"], f"{r['rows']:,}", f"{r.get('leads', 0):,}", f"{lm:.3f}",
                 f"{dm:.3f}", f"{ratio:.2f}", f"{max(x['leadscore_mib'] for x in runs):.0f}",
                 f"{max(x['duckdb_mib'] for x in runs):.0f}",
                 f"{lm * 1e6 / (r['rows'] / 1000):.1f}", r["check"]]
        if args.general:
            gm = statistics.median(x["general_s"] for x in runs)
            r["median"]["general_s"] = gm
            cells.append(f"{gm / lm:.2f}")
        print("| " + " | ".join(cells) + " |")
    print()
    for n in sizes:
        if n in worst:
            print(f"Worst ratio at {size_label(n)}: {worst[n][0]} ({worst[n][1]:.2f}).")
    print()
    print(f"Medians of {args.runs} interleaved runs each; peaks are the largest ru_maxrss of the "
          f"runs; threads = {args.threads}"
          + (f", memory limit {args.memory_limit}" if args.memory_limit else "")
          + f"; as of {AS_OF}. Shapes:")
    print()
    for name in shapes:
        print(f"- `{name}`: {SHAPES[name]['desc']}")
    print()
    print(f"Machine: {machine['nproc']} cores ({machine['cpu']}), DuckDB {machine['duckdb']} "
          f"(Python {machine['python']}), leadscore {machine['leadscore']} at {machine['git']}.")
    print(f"DuckDB baseline (bare interpreter + import duckdb), included in every DuckDB number: "
          f"{probe_wall:.3f} s, {probe_rss:.0f} MiB peak.")


if __name__ == "__main__":
    main()
