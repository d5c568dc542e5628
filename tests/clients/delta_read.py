"""Reads a Delta table with the `deltalake` package (delta-rs's Python binding, a reader nobody
here wrote) and copies what it read into a plain Parquet file, so that the test can compare it
with leadscore's own rows. Prints the table's version and partition columns as JSON.
Run by tests/clients.rs.

usage: delta_read.py TABLE_DIR OUT.parquet [VERSION]
"""

import json
import os
import sys

import pyarrow.parquet as pq
from deltalake import DeltaTable


def main():
    path, out = sys.argv[1], sys.argv[2]
    version = int(sys.argv[3]) if len(sys.argv) > 3 else None
    dt = DeltaTable(path) if version is None else DeltaTable(path, version=version)
    table = dt.to_pyarrow_table()
    pq.write_table(table, out)
    print(json.dumps({
        "version": dt.version(),
        "partitions": dt.metadata().partition_columns,
        "columns": table.column_names,
        "rows": table.num_rows,
    }))


if __name__ == "__main__":
    main()
    # Leave without the interpreter's teardown: now and then the deltalake package's background
    # threads abort the process there ("terminate called without an active exception"), after
    # the table was read and the summary printed.
    sys.stdout.flush()
    os._exit(0)
