#!/usr/bin/env python3
"""Draws the growth curves of an e2e_bench results file as PNG images with gnuplot.

    plot.py results.json    ->  results-growth-rows.png, results-growth-memory.png,
                                results-growth-sources.png, results-load-users.png

Each image is drawn only when the run has its suite. Prints the images written.
"""
import json
import os
import shutil
import subprocess
import sys

STYLE = """set terminal pngcairo size 800,480 font "DejaVu Sans,11"
set grid
set key top left
set style data linespoints
"""

# The x axis of both curves over the dataset's size.
ROWS_AXIS = """set logscale xy
set xtics ("10k" 1e4, "100k" 1e5, "1M" 1e6, "10M" 1e7)
set offsets graph 0.05, graph 0.05
set xlabel "rows (about 100 bytes each)"
"""


def block(name, rows):
    return f"${name} << EOD\n" + "\n".join(" ".join(str(c) for c in r) for r in rows) + "\nEOD\n"


def draw(path, script):
    subprocess.run(["gnuplot"], input=STYLE + f'set output "{path}"\n' + script, text=True,
                   check=True)
    return path


def growth_rows(d, base):
    points = [p for p in d.get("growth", {}).get("by_rows", []) if "ready_s" in p]
    if not points:
        return []
    rows = [[p["rows"], p["ready_s"], p["psql_copy_s"]] for p in points]
    mem = [[p["rows"], p["enclave_peak_rss_bytes"] / 2**20, p["source_bytes"] / 2**20]
           for p in points]
    return [
        draw(base + "-growth-rows.png", block("d", rows) + ROWS_AXIS + """
set title "Approval to ready against psql \\\\copy, one PostgreSQL dataset"
set ylabel "seconds"
plot $d using 1:2 title "enclave: approval to ready" lw 2 pt 7, \\
     $d using 1:3 title "psql \\\\copy to /dev/null" lw 2 pt 5
"""),
        draw(base + "-growth-memory.png", block("d", mem) + ROWS_AXIS + """
set title "Enclave peak memory against the raw data delivered"
set ylabel "MiB"
plot $d using 1:2 title "enclave peak RSS" lw 2 pt 7, \\
     $d using 1:3 title "raw data from the connector" lw 2 pt 5, \\
     $d using 1:($3 * 1.2) title "1.2 x raw (target)" dt 2 lw 1 pt 0
"""),
    ]


def growth_sources(d, base):
    s = d.get("growth", {})
    points = [p for p in s.get("by_sources", []) if "ready_s" in p]
    if not points:
        return []
    rows = [[p["sources"], p["ready_s"]] for p in points]
    return [draw(base + "-growth-sources.png", block("d", rows) + f"""
set title "Approval to ready as the sources grow ({s.get('rows_per_source', 0):,} rows each)"
set xlabel "sources in the request (pulled in parallel)"
set ylabel "seconds"
set xtics (1, 2, 4, 8)
set offsets graph 0.05, graph 0.05
set yrange [0:*]
plot $d using 1:2 title "approval to ready" lw 2 pt 7
""")]


def load_users(d, base):
    ld = d.get("load", {})
    series = {t: [[l["users"], l["p50_ms"], l["p99_ms"]] for l in ld.get(t, [])]
              for t in ("https", "pgwire") if isinstance(ld.get(t), list)}
    if not series:
        return []
    data = "".join(block(t, rows) for t, rows in series.items())
    plots = []
    for t in series:
        plots.append(f'${t} using 1:2 title "{t} p50" lw 2 pt 7')
        plots.append(f'${t} using 1:3 title "{t} p99" dt 2 lw 1 pt 6')
    return [draw(base + "-load-users.png", data + """
set title "Query latency as users grow (full query set, keep-alive clients)"
set logscale xy
set offsets graph 0.05, graph 0.05
set xlabel "concurrent users"
set ylabel "milliseconds"
plot """ + ", \\\n     ".join(plots) + "\n")]


def main(path):
    if shutil.which("gnuplot") is None:
        sys.exit("plot.py: gnuplot is not installed (bench/install-bench-deps.sh installs it)")
    d = json.load(open(path))
    base = os.path.splitext(path)[0]
    for image in growth_rows(d, base) + growth_sources(d, base) + load_users(d, base):
        print(image)


if __name__ == "__main__":
    main(sys.argv[1])
