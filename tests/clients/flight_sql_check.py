"""Drives `leadscore serve` with the ADBC Flight SQL driver (adbc-driver-flightsql), a client
nobody here wrote, and prints one JSON object with what it saw. Run by tests/clients.rs.

usage: flight_sql_check.py URI TOKEN
"""

import base64
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, **db_kwargs):
    return flight_sql.connect(uri, db_kwargs=db_kwargs)


def query(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def attempt(fn):
    try:
        fn()
        return None
    except Exception as e:  # the driver raises its own error classes
        return str(e)


def main():
    uri, token = sys.argv[1], sys.argv[2]
    out = {}
    bearer = {DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + token}
    with connect(uri, **bearer) as conn:
        t = query(conn, "select lead_id, score, is_mql from lead_scores order by lead_id")
        out["rows"] = t.num_rows
        out["columns"] = t.column_names
        out["first"] = [str(t.column(0)[0].as_py()), t.column(1)[0].as_py()]
        out["score_sum"] = sum(v for v in t.column("score").to_pylist() if v is not None)
        out["mqls"] = sum(1 for v in t.column("is_mql").to_pylist() if v)
        out["udf"] = query(conn, "select glob_match('/pricing/x', '/pricing*') as m").column(0)[0].as_py()
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = sorted(
            t["table_name"]
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for t in schema["db_schema_tables"] or []
        )
        out["tables"] = names
        out["table_schema"] = conn.adbc_get_table_schema("lead_scores").names
        info = conn.adbc_get_info()
        out["vendor"] = info.get("vendor_name")
        out["errors"] = {
            "create": attempt(lambda: query(conn, "create table x as select 1")),
            "insert": attempt(lambda: query(conn, "insert into lead_scores select * from lead_scores")),
            "copy": attempt(lambda: query(conn, "copy (select 1) to '/tmp/leak.csv'")),
            "drop": attempt(lambda: query(conn, "drop table lead_scores")),
            "set": attempt(lambda: query(conn, "set datafusion.execution.batch_size = 1")),
            "file": attempt(lambda: query(conn, "select * from '/etc/passwd'")),
            "ingest": attempt(lambda: conn.cursor().adbc_ingest("lead_scores", t, mode="append")),
        }
        out["after_errors_rows"] = query(conn, "select count(*) as n from lead_scores").column(0)[0].as_py()

    # Username and password: the driver does a Handshake and sends the token unpadded.
    with connect(uri, username="analyst", password=token) as conn:
        out["basic_rows"] = query(conn, "select count(*) as n from lead_scores").column(0)[0].as_py()

    wrong = {DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer not-the-token"}
    out["wrong_token"] = attempt(lambda: query(connect(uri, **wrong), "select 1"))
    out["wrong_password"] = attempt(
        lambda: query(connect(uri, username="analyst", password="nope"), "select 1")
    )
    out["no_token"] = attempt(lambda: query(connect(uri), "select 1"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
