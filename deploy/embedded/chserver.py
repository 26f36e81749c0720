"""ClickHouse served over HTTP from chdb-core, run as its own process by the launcher.

Recipe (verified in ../shared/reference/dev-stack.md): clickhouse-local reads ``./config.xml`` from the
working directory; a query that runs ``SYSTEM START LISTEN HTTP`` followed by an endless keep-alive
``SELECT`` keeps the HTTP handler pool serving until that query is killed, after which the engine shuts
down cleanly. ``chdb._chdb.query`` is not a public API, hence the exact pin of chdb-core.

Run: ``python -m deploy.embedded.chserver --data DIR --port PORT --host 127.0.0.1``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The unique tag lets the launcher kill exactly this query (and lets readers filter it out of
# system.processes).
KEEPALIVE_TAG = "liveboard-embedded-keepalive"

CONFIG_TEMPLATE = """<clickhouse>
    <listen_host>{host}</listen_host>
    <http_port>{port}</http_port>
    <logger>
        <level>warning</level>
        <log>{log}</log>
        <errorlog>{errlog}</errorlog>
        <console>0</console>
    </logger>
    <max_concurrent_queries>200</max_concurrent_queries>
</clickhouse>
"""


def keepalive_sql() -> str:
    return (
        "SYSTEM START LISTEN HTTP; "
        f"SELECT sleepEachRow(1) /* {KEEPALIVE_TAG} */ FROM system.numbers "
        "SETTINGS max_block_size = 1, max_execution_time = 0 FORMAT Null"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)

    data = args.data.resolve()
    run_dir = data.parent / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.xml").write_text(
        CONFIG_TEMPLATE.format(
            host=args.host,
            port=args.port,
            log=run_dir / "clickhouse.log",
            errlog=run_dir / "clickhouse.err.log",
        ),
        encoding="utf-8",
    )
    os.chdir(run_dir)

    import chdb._chdb as engine  # imported late: 555 MB library, only this process needs it

    try:
        engine.query(keepalive_sql(), "TabSeparated", path=str(data))
    except Exception as exc:  # the keep-alive query ends with an error when it is killed
        msg = str(exc)
        if "QUERY_WAS_CANCELLED" in msg or "Query was cancelled" in msg:
            return 0
        print(f"clickhouse engine stopped: {msg}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
