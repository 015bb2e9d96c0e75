#!/usr/bin/env python3
"""Renders an e2e_bench results file (JSON) as the markdown tables of docs/benchmarks.md.

    report.py results.json [image.png ...]   (the images plot.py drew, linked at the end)
"""
import json
import os
import sys


def f(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main(path):
    d = json.load(open(path))
    m = d.get("machine", {})
    out = [f"# End-to-end benchmarks — {d.get('date', '?')} ({d.get('scale', '?')} scale)", ""]
    out.append(f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
               f"{m.get('memory_bytes', 0) / 2**30:.1f} GiB memory, {m.get('kernel', '')}; "
               f"load average at start {m.get('load_average_at_start', 0):.2f}. "
               f"Whole run: {d.get('duration_s', 0):.0f} s.")
    if "error" in d:
        out += ["", f"**Run error:** {d['error']}"]
    targets = []

    lc = d.get("lifecycle")
    if lc and "phases" in lc:
        out += ["", f"## 1. Request lifecycle ({lc['repetitions']} repetitions, "
                f"{lc['rows_per_source']:,} rows × 3 sources, `{lc['isolator']}` isolator, "
                f"{lc['tunnel']} tunnel; failures: {lc['failures']})", ""]
        order = ["create", "decision", "approve", "provision", "ingest", "seal", "first_query",
                 "total", "query_set"]
        rows = [[p, f(lc["phases"][p]["p50_ms"]), f(lc["phases"][p]["p95_ms"]),
                 f(lc["phases"][p]["p99_ms"]), f(lc["phases"][p]["mean_ms"])]
                for p in order if p in lc["phases"]]
        out.append(table(["phase", "p50 ms", "p95 ms", "p99 ms", "mean ms"], rows))
        p50 = lc["phases"]["total"]["p50_ms"]
        targets.append(["lifecycle p50 (create → first query), 10k rows × 3", "< 150 ms",
                        f"{p50:.0f} ms", "yes" if p50 < 150 else "no"])
        sq = d.get("join", {}).get("sqlite3_shell", {}).get("join_ms", 0)
        if sq:
            targets.append(["lifecycle p50 against the sqlite3 shell's join (same run)",
                            "≤ 0.12×", f"{p50 / sq:.2f}× ({p50:.0f} / {sq:.0f} ms)",
                            "yes" if p50 / sq <= 0.12 else "no"])

    ld = d.get("load")
    if ld:
        for transport in ("https", "pgwire"):
            levels = ld.get(transport)
            if not isinstance(levels, list):
                continue
            out += ["", f"## 2. Load sweep through {transport} ({ld['seconds_per_level']} s per "
                    f"level, full query set, {ld['rows_per_source']:,} rows × 3 sources)", ""]
            rows = [[l["users"], f(l["successes"]), f(l["failures"]), f"{100 * l['error_rate']:.2f} %",
                     f(l["avg_ms"]), f(l["p50_ms"]), f(l["p95_ms"]), f(l["p99_ms"]),
                     f(l["queries_per_s"], 0)] for l in levels]
            out.append(table(["users", "successes", "failures", "error rate", "avg ms", "p50 ms",
                              "p95 ms", "p99 ms", "queries/s"], rows))
            errs = [l for l in levels if l["failures"] > 0]
            for l in errs[:3]:
                out.append(f"\n- {l['users']} users, first error: `{l.get('first_error', '')[:160]}`")
            targets.append([f"0 errors at every load level ({transport})", "0",
                            f"{sum(l['failures'] for l in levels):,} failures",
                            "yes" if not errs else "no"])

    jn = d.get("join")
    if jn and "rows" in jn:
        r = jn["rows"]
        out += ["", f"## 3. Cross-source join: PostgreSQL {r['postgres_customers']:,} × MongoDB "
                f"{r['mongodb_orders']:,} × CSV {r['csv_regions']:,} (median of {jn['runs']})", "",
                f"`{jn['sql']}`", ""]
        sq = jn.get("sqlite3_shell", {}).get("join_ms", 0)
        pg = jn.get("postgres_local", {}).get("join_ms", 0)
        rows = [["sqlite3 shell (same rows in memory, no index)", f(sq), "1.00×",
                 f"{sq / pg:.2f}×" if pg else "—", "—"],
                ["PostgreSQL, all three tables local", f(pg), f"{pg / sq:.2f}×" if sq else "—",
                 "1.00×", f"{jn['postgres_local'].get('load_s', 0):.1f} s to load"]]
        for t in ("https", "pgwire"):
            e = jn.get(t, {})
            if "join" in e:
                match = e.get("rows_match_postgres")
                rows.append([f"enclave through {t}", f(e["join"]["p50_ms"]),
                             f"{e['ratio_vs_sqlite3']:.2f}×", f"{e['ratio_vs_postgres_local']:.2f}×",
                             f"{e['approve_to_ready_s']:.1f} s approve → ready",
                             "—" if match is None else ("yes" if match else
                                                        "**no**: " + e.get("row_difference", ""))])
                targets.append([f"join ≤ 1.0× PostgreSQL ({t})", "≤ 1.0×",
                                f"{e['ratio_vs_postgres_local']:.2f}×",
                                "yes" if e["ratio_vs_postgres_local"] <= 1.0 else "no"])
                targets.append([f"join answers = PostgreSQL's, row for row ({t})", "equal",
                                "equal" if match else e.get("row_difference", "not compared"),
                                "yes" if match else "no"])
        for r in rows[:2]:
            r.append("reference")
        out.append(table(["engine", "join ms", "vs sqlite3", "vs PostgreSQL local", "time to ready",
                          "rows = PostgreSQL's"], rows))
        if "full_sql" in jn:
            out += ["", f"Both joins' answers are compared with PostgreSQL's row for row; the second "
                    f"has {jn.get('postgres_local', {}).get('full_join_rows', 0):,} rows: "
                    f"`{jn['full_sql']}`"]

    sc = d.get("growth")
    if sc and "by_rows" in sc:
        out += ["", "## 4. Growth: one PostgreSQL dataset from 10k rows up, and 1 to 8 sources", "",
                "Approval → ready (provision, pull, seal) against `psql \\copy` of the same rows "
                "to /dev/null over the same TLS connection; the enclave's peak RSS against the raw "
                "bytes the connector delivered; the kernel's own peak RSS meanwhile.", ""]
        rows = []
        for p in sc["by_rows"]:
            if "ready_s" not in p:
                rows.append([f(p.get("rows")), "error: " + p.get("error", "")[:80], "", "", "", "",
                             "", ""])
                continue
            rows.append([f(p["rows"]), f(p["ready_s"], 2), f(p["psql_copy_s"], 2),
                         f"{p['ready_vs_psql_copy']:.2f}×", f(p["source_bytes"] / 2**20),
                         f(p["enclave_peak_rss_bytes"] / 2**20), f"{p['rss_vs_source_bytes']:.2f}×",
                         f(p["kernel_peak_rss_bytes"] / 2**20)])
        out.append(table(["rows", "ready s", "psql \\copy s", "ratio", "raw MiB",
                          "enclave peak MiB", "RSS / raw", "kernel peak MiB"], rows))
        k = sc.get("kernel_rss", {})
        if k:
            out += ["", f"Kernel RSS: {k.get('at_start_bytes', 0) / 2**20:.1f} MiB at start, "
                    f"{k.get('peak_bytes', 0) / 2**20:.1f} MiB at its peak, "
                    f"{k.get('at_end_bytes', 0) / 2**20:.1f} MiB at the end."]
        done = [p for p in sc["by_rows"] if "ready_s" in p]
        if done:
            big = done[-1]
            label = f"{big['rows']:,} rows"
            targets.append([f"approval → ready vs psql \\copy ({label})", "≤ 1.0×",
                            f"{big['ready_vs_psql_copy']:.2f}×",
                            "yes" if big["ready_vs_psql_copy"] <= 1.0 else "no"])
            targets.append([f"enclave peak RSS vs raw data ({label})", "≤ 1.2×",
                            f"{big['rss_vs_source_bytes']:.2f}×",
                            "yes" if big["rss_vs_source_bytes"] <= 1.2 else "no"])
            small = done[0]
            if small is not big and small.get("kernel_peak_rss_bytes"):
                # Flat: the kernel's peak while the largest enclave fills
                # against its peak while the smallest does.
                growth = big["kernel_peak_rss_bytes"] / small["kernel_peak_rss_bytes"]
                targets.append([f"kernel peak RSS flat: {label} against {small['rows']:,} rows",
                                "≤ 1.1×", f"{growth:.2f}×", "yes" if growth <= 1.1 else "no"])
        srcs = [p for p in sc.get("by_sources", []) if "ready_s" in p]
        if srcs:
            out += ["", f"Sources of {sc.get('rows_per_source', 0):,} rows each, pulled in "
                    "parallel:", ""]
            out.append(table(["sources", "rows", "ready s"],
                             [[p["sources"], f(p["rows_pulled"]), f(p["ready_s"], 2)]
                              for p in srcs]))

    dc = d.get("decisions")
    if dc and "http" in dc:
        out += ["", f"## 5. Decisions: `POST /v1/requests` ({dc.get('rules', 0)} rules, "
                f"{dc.get('clients', 0)} keep-alive clients, decided without a human)", ""]
        rows = [[m, f(dc[m]["requests_per_s"], 0), f(dc[m]["p50_ms"], 2), f(dc[m]["p99_ms"], 2),
                 f(dc[m]["kernel_cpu_us"], 0),
                 f(dc[m]["client_cpu_us"], 0) if "client_cpu_us" in dc[m] else "—"]
                for m in ("in-process", "http") if m in dc]
        out.append(table(["mode", "requests/s", "p50 ms", "p99 ms", "kernel CPU µs / request",
                          "clients' CPU µs / request"], rows))
        clients = dc.get("clients", 0)
        if clients and "in-process" in dc and dc["in-process"]["requests_per_s"]:
            # Closed loop: each client waits for its answer, so the mean
            # latency is clients / rate (Little's law).
            floor = clients / dc["in-process"]["requests_per_s"] * 1000
            out += ["", f"With {clients} clients each waiting for its answer, the mean latency is "
                    f"clients / rate: at the in-process rate it is {floor:.2f} ms, and a p99 under "
                    f"5 ms needs at least {clients / 0.005:,.0f} requests/s."]
        if "in-process" in dc and dc["in-process"]["requests_per_s"]:
            ratio = dc["http"]["requests_per_s"] / dc["in-process"]["requests_per_s"]
            targets.append(["decisions over HTTP vs in process (requests/s)", "≥ 0.85×",
                            f"{ratio:.2f}×", "yes" if ratio >= 0.85 else "no"])
            p99 = dc["http"]["p99_ms"]
            targets.append(["decisions over HTTP, p99", "< 5 ms", f"{p99:.1f} ms",
                            "yes" if p99 < 5 else "no"])

    cp = d.get("control")
    if cp and "connections" in cp:
        out += ["", f"## 6. Control plane (wrk, keep-alive, {cp['seconds_per_level']} s per level; "
                f"nginx serves the same {cp.get('static_bytes', 0):,}-byte JSON)", ""]
        rows = []
        for i, c in enumerate(cp["connections"]):
            def rps(key, sub=None):
                try:
                    v = cp[key][sub][i] if sub else cp[key][i]
                    return v.get("requests_per_s", 0), v.get("errors", 0)
                except (KeyError, IndexError, TypeError):
                    return 0, 0
            kg, kge = rps("kernel_plain", "get")
            ng, _ = rps("nginx_plain")
            kt, kte = rps("kernel_tls", "get")
            nt, _ = rps("nginx_tls")
            kp, kpe = rps("kernel_plain", "post")
            tp, tpe = rps("kernel_tls", "post")
            rows.append([c, f(kg, 0), f(ng, 0), f"{kg / ng:.2f}×" if ng else "—", f(kt, 0), f(nt, 0),
                         f"{kt / nt:.2f}×" if nt else "—", f(kp, 0), f(tp, 0),
                         f(kge + kte + kpe + tpe)])
        out.append(table(["conns", "GET req/s", "nginx req/s", "ratio", "GET TLS req/s",
                          "nginx TLS req/s", "ratio TLS", "POST req/s", "POST TLS req/s",
                          "errors"], rows))
        best = max((x for x in cp.get("ratios", {}).get("get_vs_nginx_plain", [])), default=0)
        worst = min((x for x in cp.get("ratios", {}).get("get_vs_nginx_plain", [])), default=0)
        targets.append(["authenticated GET vs nginx req/s (plain, over levels)", "≥ 0.5×",
                        f"{worst:.2f}×–{best:.2f}×", "yes" if worst >= 0.5 else "no"])

    mem = d.get("memory")
    if mem:
        out += ["", "## 7. Enclave memory (peak RSS, VmHWM of the enclave process)", ""]
        rows = []
        for k, v in mem.items():
            rows.append([k, f(v.get("rows", 0)), f(v.get("peak_rss_bytes", 0) / 2**20, 1) + " MiB",
                         f(v.get("peak_rss_per_million_rows_bytes", 0) / 2**20, 1) + " MiB"
                         if "peak_rss_per_million_rows_bytes" in v else "—",
                         f(v.get("source_bytes", 0) / 2**20, 1) + " MiB" if "source_bytes" in v else "—",
                         f"{v['rss_vs_source_bytes']:.2f}×" if "rss_vs_source_bytes" in v else "—"])
        out.append(table(["data", "rows", "peak RSS", "per million rows", "raw data (source bytes)",
                          "RSS / raw"], rows))

    images = [i for i in sys.argv[2:]]
    if images:
        out += ["", "## Growth curves", ""]
        out += [f"![{os.path.basename(i)}]({os.path.basename(i)})" for i in images]
    if targets:
        out += ["", "## Targets", "", table(["target", "goal", "measured", "met"], targets)]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
