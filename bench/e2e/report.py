#!/usr/bin/env python3
"""Renders an e2e_bench results file (JSON) as the markdown tables of docs/benchmarks.md."""
import json
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
        rows = [["sqlite3 shell (ceiling, same rows in memory)", f(sq), "1.00×",
                 f"{sq / pg:.2f}×" if pg else "—", "—"],
                ["PostgreSQL, all three tables local", f(pg), f"{pg / sq:.2f}×" if sq else "—",
                 "1.00×", f"{jn['postgres_local'].get('load_s', 0):.1f} s to load"]]
        for t in ("https", "pgwire"):
            e = jn.get(t, {})
            if "join" in e:
                rows.append([f"enclave through {t}", f(e["join"]["p50_ms"]),
                             f"{e['ratio_vs_sqlite3']:.2f}×", f"{e['ratio_vs_postgres_local']:.2f}×",
                             f"{e['approve_to_ready_s']:.1f} s approve → ready"])
                targets.append([f"join ≤ 1.15× sqlite3 shell ({t})", "≤ 1.15×",
                                f"{e['ratio_vs_sqlite3']:.2f}×",
                                "yes" if e["ratio_vs_sqlite3"] <= 1.15 else "no"])
        out.append(table(["engine", "join ms", "vs sqlite3", "vs PostgreSQL local", "time to ready"],
                         rows))

    cp = d.get("control")
    if cp and "connections" in cp:
        out += ["", f"## 4. Control plane (wrk, keep-alive, {cp['seconds_per_level']} s per level; "
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
        out += ["", "## 5. Enclave memory (peak RSS, VmHWM of the enclave process)", ""]
        rows = []
        for k, v in mem.items():
            rows.append([k, f(v.get("rows", 0)), f(v.get("peak_rss_bytes", 0) / 2**20, 1) + " MiB",
                         f(v.get("peak_rss_per_million_rows_bytes", 0) / 2**20, 1) + " MiB"
                         if "peak_rss_per_million_rows_bytes" in v else "—",
                         f(v.get("source_bytes", 0) / 2**20, 1) + " MiB" if "source_bytes" in v else "—",
                         f"{v['rss_vs_source_bytes']:.2f}×" if "rss_vs_source_bytes" in v else "—"])
        out.append(table(["data", "rows", "peak RSS", "per million rows", "raw data (source bytes)",
                          "RSS / raw"], rows))

    if targets:
        out += ["", "## Targets", "", table(["target", "goal", "measured", "met"], targets)]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
