"""Embedded stack start-up time and memory: `python bench/bench_stack.py [--runs 5]`.

Starts the stack on free ports under a temporary home, measures wall time until both engines answer a real
request, idle RSS of each engine, and the time `down` takes; prints one line per run and a summary.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from deploy.embedded.processes import free_port
from deploy.embedded.stack import Stack
from liveboard.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    ups, downs, broker_rss, ch_rss = [], [], [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            s = Settings(home=Path(home), broker_port=free_port(), clickhouse_port=free_port(), _env_file=None)
            st = Stack(s)
            t0 = time.perf_counter()
            statuses = st.up()
            up_s = time.perf_counter() - t0
            time.sleep(1.0)  # let both settle before reading idle memory
            by = {c.name: c for c in st.status()}
            t1 = time.perf_counter()
            st.down()
            down_s = time.perf_counter() - t1
            assert all(c.running for c in statuses)
            ups.append(up_s)
            downs.append(down_s)
            broker_rss.append(by["broker"].rss_bytes / 2**20)
            ch_rss.append(by["clickhouse"].rss_bytes / 2**20)
            print(
                f"run {i + 1}: up {up_s:.2f} s, down {down_s:.2f} s, "
                f"RSS broker {broker_rss[-1]:.0f} MB, clickhouse {ch_rss[-1]:.0f} MB"
            )
    print(
        f"median: up {statistics.median(ups):.2f} s (max {max(ups):.2f}), down {statistics.median(downs):.2f} s, "
        f"RSS broker {statistics.median(broker_rss):.0f} MB, clickhouse {statistics.median(ch_rss):.0f} MB"
    )


if __name__ == "__main__":
    main()
