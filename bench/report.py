"""Writes report.md and chart.png for one bench/run.sh results folder.

Usage: report.py RESULTS_DIR

Reads sysbench.tsv, large.tsv, idle.tsv, criterion/*.json and meta.env written by
bench/run.sh; standard library only (gnuplot draws the chart when it is installed).
"""

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys

CONFIG_NAMES = {
    "direct_replica": "direct (one replica)",
    "direct_primary": "direct (primary)",
    "relay": "L4 relay",
    "relay_primary": "L4 relay (primary)",
    "haproxy": "HAProxy (mode tcp, 1 thread)",
    "proxy_ct": "Switchyard 1 worker",
    "proxy_mt": "Switchyard 2 workers",
}
PROXIES = ("proxy_ct", "proxy_mt")
# Compared with the relay as the proxies are: the L4 balancer operators deploy.
BALANCERS = PROXIES + ("haproxy",)
FLOOD_BENCHES = [
    "in_list_new_length",
    "select_1mb_in_list",
    "select_1mb_in_list_cold",
    "select_1mb_too_long",
    "select_1mb_too_long_cold",
    "select_1mb_words",
]
OLTP_BENCHES = [
    "point_select",
    "point_select_remembered",
    "range_select",
    "update_by_pk",
    "insert_one_row",
    "begin",
    "commit",
    "select_join",
]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1, unit=""):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                meta[k] = v
    return meta


def sysbench_summary(rows):
    """{(test, mode, threads, config): {qps, p95, cpu10k, rounds, failed}} as medians over
    rounds; mode is `prepared` or `text` (results from before the column: prepared)."""
    groups = {}
    for r in rows:
        key = (r["test"], r.get("mode", "prepared"), int(r["threads"]), r["config"])
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["errors"] != "failed"]
        cpu10k = []
        for r in ok:
            cpu, q = num(r["cpu_s"]), num(r["queries"])
            if cpu is not None and q:
                cpu10k.append(cpu / q * 10_000)
        by_round = {}
        for r in ok:
            cpu, q = num(r["cpu_s"]), num(r["queries"])
            by_round[r["round"]] = {
                "qps": num(r["qps"]),
                "cpu10k": cpu / q * 10_000 if cpu is not None and q else None,
            }
        out[key] = {
            "by_round": by_round,
            "qps": median(num(r["qps"]) for r in ok),
            "p95": median(num(r["p95_ms"]) for r in ok),
            "cpu10k": median(cpu10k),
            "rounds": len(ok),
            "failed": len(rs) - len(ok),
            "errors": sum(int(num(r["errors"]) or 0) for r in ok),
        }
    return out


def sysbench_tables(summary, test, mode, configs, direct, md, relay="relay"):
    threads = sorted({k[2] for k in summary if k[0] == test and k[1] == mode})
    if not threads:
        md.append("Not measured.\n")
        return
    has_relay = relay in configs
    head = ["threads", "configuration", "qps", "p95 ms", "CPU s / 10k stmts", "qps vs direct"]
    head += ["qps vs relay", "p95 vs relay", "CPU vs relay"] if has_relay else []
    head += ["p95 vs direct", "rounds"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for t in threads:
        d = summary.get((test, mode, t, direct), {})
        rl = summary.get((test, mode, t, relay), {})
        for c in configs:
            s = summary.get((test, mode, t, c))
            if not s:
                continue
            cells = [
                str(t),
                CONFIG_NAMES[c],
                fmt(s["qps"], 0),
                fmt(s["p95"], 2),
                fmt(s["cpu10k"], 3),
                fmt_ratio(ratio(s["qps"], d.get("qps"))) if c != direct else "1.00x",
            ]
            if has_relay:
                is_proxy = c in BALANCERS
                cells += [
                    fmt_ratio(ratio(s["qps"], rl.get("qps"))) if is_proxy else "-",
                    fmt_ratio(ratio(s["p95"], rl.get("p95"))) if is_proxy else "-",
                    fmt_ratio(ratio(s["cpu10k"], rl.get("cpu10k"))) if is_proxy else "-",
                ]
            cells += [
                fmt_ratio(ratio(s["p95"], d.get("p95"))) if c != direct else "1.00x",
                f"{s['rounds']}" + (f" ({s['failed']} failed)" if s["failed"] else ""),
            ]
            md.append("| " + " | ".join(cells) + " |")
    md.append("")


def us_per_query(s):
    return None if not s or s.get("cpu10k") is None else s["cpu10k"] * 100


def ratio_with_spread(a, b, field):
    """The medians' ratio, and the range of the rounds' own ratios (same round, both ran) when
    there are several: one cell's rounds move by more than most targets' margins."""
    r = fmt_ratio(ratio(a.get(field), b.get(field)))
    pairs = [
        ratio(x.get(field), b["by_round"][k].get(field))
        for k, x in a.get("by_round", {}).items()
        if k in b.get("by_round", {})
    ]
    pairs = [p for p in pairs if p is not None]
    if len(pairs) < 2 or r == "-":
        return r
    return f"{r} ({min(pairs):.2f}-{max(pairs):.2f}x)"


def ratio_table(summary, md):
    """Issue 12's figures: point selects in both protocols at each client count, as ratios."""
    keys = sorted(
        {(k[1], k[2]) for k in summary if k[0] == "oltp_point_select"},
        key=lambda k: (k[0] != "prepared", k[1]),
    )
    if not keys:
        return
    md.append("## Point selects as ratios (issue 12)\n")
    md.append(
        "Medians of the rounds, and in brackets the range of the ratios within each round "
        "(both configurations ran in it, minutes apart at most). CPU per query is the "
        "process's own utime+stime over the run "
        "divided by the statements sysbench counted, in microseconds. Targets: Switchyard at "
        "least 1.0x the relay's qps at most 1.1x its CPU per query; 2 workers' CPU per query "
        "within 10% of 1 worker's.\n"
    )
    head = [
        "protocol",
        "clients",
        "relay / direct qps",
        "1 worker / relay qps",
        "2 workers / relay qps",
        "relay CPU us/q",
        "1 worker CPU us/q",
        "2 workers CPU us/q",
        "1 worker / relay CPU",
        "2 workers / relay CPU",
        "2 workers / 1 worker CPU",
    ]
    has_haproxy = any(k[0] == "oltp_point_select" and k[3] == "haproxy" for k in summary)
    if has_haproxy:
        head += ["HAProxy CPU us/q", "1 worker / HAProxy qps", "1 worker / HAProxy CPU"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for mode, t in keys:
        get = lambda c: summary.get(("oltp_point_select", mode, t, c), {})  # noqa: E731
        d, rl, one, two = get("direct_replica"), get("relay"), get("proxy_ct"), get("proxy_mt")
        cells = [
            mode,
            str(t),
            fmt_ratio(ratio(rl.get("qps"), d.get("qps"))),
            ratio_with_spread(one, rl, "qps"),
            ratio_with_spread(two, rl, "qps"),
            fmt(us_per_query(rl), 1),
            fmt(us_per_query(one), 1),
            fmt(us_per_query(two), 1),
            ratio_with_spread(one, rl, "cpu10k"),
            ratio_with_spread(two, rl, "cpu10k"),
            ratio_with_spread(two, one, "cpu10k"),
        ]
        if has_haproxy:
            hap = get("haproxy")
            cells += [
                fmt(us_per_query(hap), 1),
                ratio_with_spread(one, hap, "qps"),
                ratio_with_spread(one, hap, "cpu10k"),
            ]
        md.append("| " + " | ".join(cells) + " |")
    md.append("")


def large_summary(rows):
    groups = {}
    for r in rows:
        groups.setdefault((int(r["rows"]), r["config"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        hwm = [num(r["hwm_kb"]) for r in rs]
        growth = [
            num(r["hwm_kb"]) - num(r["rss_before_kb"])
            for r in rs
            if num(r["hwm_kb"]) is not None and num(r["rss_before_kb"]) is not None
        ]
        out[key] = {
            "ms": median(num(r["ms"]) for r in rs),
            "hwm": median(hwm),
            "growth": max(growth) if growth else None,
            "reps": len(rs),
        }
    return out


def criterion_results(folder):
    out = {}
    cdir = os.path.join(folder, "criterion")
    if not os.path.isdir(cdir):
        return out
    for name in os.listdir(cdir):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(cdir, name)) as f:
            est = json.load(f)
        out[name[:-5]] = {
            "mean": est["mean"]["point_estimate"],
            "median": est["median"]["point_estimate"],
            "lo": est["mean"]["confidence_interval"]["lower_bound"],
            "hi": est["mean"]["confidence_interval"]["upper_bound"],
        }
    return out


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


def chart(folder, summary, threads):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "no chart: gnuplot is not installed"
    lines = ["# label direct relay proxy_ct proxy_mt"]
    # Each workload's own direct and relay configurations fill those columns.
    for test, mode, short, direct, relay in (
        ("oltp_point_select", "prepared", "point", "direct_replica", "relay"),
        ("oltp_point_select", "text", "point text", "direct_replica", "relay"),
        ("oltp_read_write", "prepared", "rw", "direct_primary", "relay_primary"),
    ):
        for t in threads:
            vals = []
            for c in (direct, relay, "proxy_ct", "proxy_mt"):
                s = summary.get((test, mode, t, c))
                vals.append("-" if not s or s["qps"] is None else f"{s['qps']:.0f}")
            if any(v != "-" for v in vals):
                lines.append(f'"{short} {t}t" ' + " ".join(vals))
    dat = os.path.join(folder, "chart.dat")
    with open(dat, "w") as f:
        f.write("\n".join(lines) + "\n")
    png = os.path.join(folder, "chart.png")
    script = f"""
set terminal pngcairo size 1100,560 font ",10"
set output '{png}'
set termoption noenhanced
set title "sysbench qps (median of rounds): direct, L4 relay, Switchyard"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing "-"
set key outside top center horizontal
set grid ytics
set ylabel "queries per second"
set xlabel "workload and client threads (point: oltp_point_select to replicas; rw: oltp_read_write to the primary)"
set yrange [0:*]
plot '{dat}' using 2:xtic(1) title "direct" lc rgb "#4e79a7", \\
     '' using 3 title "L4 relay" lc rgb "#bab0ac", \\
     '' using 4 title "Switchyard 1 worker" lc rgb "#f28e2b", \\
     '' using 5 title "Switchyard 2 workers" lc rgb "#e15759"
"""
    gp = os.path.join(folder, "chart.gp")
    with open(gp, "w") as f:
        f.write(script)
    res = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if res.returncode != 0 and "pngcairo" in res.stderr:
        with open(gp, "w") as f:
            f.write(script.replace("pngcairo", "png"))
        res = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if res.returncode != 0:
        return "no chart: gnuplot failed: " + res.stderr.strip()[:300]
    return None


def consistency_table(rows, md):
    """What each consistency mode costs on autocommit reads and writes, next to eventual."""
    if not rows:
        return
    md.append("## Consistency modes (autocommit reads and writes, 8 threads)\n")
    md.append(
        "sysbench `oltp_read_write --skip_trx=on --delete_inserts=0` (a DELETE and INSERT of one id race without a transaction) through Switchyard, one process per mode: "
        "every statement autocommits, so reads may go to replicas and each must see what "
        "its mode asks for. *Reads on primary* is the share of reads the primary served "
        "(statements to the primary less writes, from /metrics); the outcome columns count "
        "reads that had to see writes.\n"
    )
    base = next((r for r in rows if r["mode"] == "eventual"), None)
    md.append(
        "| mode | qps | vs eventual | avg ms/event | p95 ms/event | reads on primary "
        "| had the writes | after a wait | on the primary |"
    )
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        reads = num(r["reads"]) or 0
        share = (num(r["reads_on_primary"]) or 0) / reads if reads else None
        rel = ratio(num(r["qps"]), num(base["qps"])) if base else None
        md.append(
            f"| {r['mode']} | {fmt(num(r['qps']), 0)} | {fmt_ratio(rel)} "
            f"| {fmt(num(r['avg_ms']), 2)} | {fmt(num(r['p95_ms']), 2)} "
            f"| {fmt(share * 100 if share is not None else None, 1, ' %')} "
            f"| {r['consistent_replica']} | {r['consistent_waited']} | {r['consistent_primary']} |"
        )
    md.append("")


def connect_per_request_table(rows, md):
    """Connect per request: requests/s and the servers' new connections per target, the
    median of interleaved rounds; each round's ratio to direct is taken within the round."""
    if not rows:
        return
    md.append("## Connect per request (PHP mysqli: connect, log in, one point select, close)\n")
    rounds = sorted({r.get("round", "1") for r in rows})
    md.append(
        f"8 processes as fast as they go, {len(rounds)} interleaved rounds (median; the range "
        "of the rounds' own ratios in brackets). `server connections opened`: the servers' "
        "`Connections` status delta (primary and replicas) summed over the rounds; "
        "`more connected`: the most threads connected to them at once (their "
        "`Threads_connected` sum) beyond those connected before the target ran (the other "
        "proxies' pools, replication).\n"
    )
    direct = {r.get("round", "1"): num(r["req_per_s"]) for r in rows if r["target"] == "direct"}
    targets = list(dict.fromkeys(r["target"] for r in rows))
    md.append("| target | requests/s | vs direct | errors | server connections opened | more connected |")
    md.append("|---|---|---|---|---|---|")
    for t in targets:
        mine = [r for r in rows if r["target"] == t]
        qps = [num(r["req_per_s"]) for r in mine if num(r["req_per_s"]) is not None]
        ratios = [
            x
            for x in (ratio(num(r["req_per_s"]), direct.get(r.get("round", "1"))) for r in mine)
            if x is not None
        ]
        vs = "-"
        if ratios:
            vs = fmt_ratio(statistics.median(ratios))
            if len(ratios) > 1:
                vs += f" ({fmt_ratio(min(ratios))}-{fmt_ratio(max(ratios))})"
        errors = sum(int(num(r["errors"]) or 0) for r in mine)
        opened = sum(int(num(r["server_connections_opened"]) or 0) for r in mine)
        most = max(int(num(r["threads_connected_added"]) or 0) for r in mine)
        median_qps = f"{statistics.median(qps):.0f}" if qps else "-"
        md.append(f"| {t} | {median_qps} | {vs} | {errors} | {opened} | {most} |")
    md.append("")


def main():
    folder = sys.argv[1]
    meta = read_meta(os.path.join(folder, "meta.env"))
    summary = sysbench_summary(read_tsv(os.path.join(folder, "sysbench.tsv")))
    large = large_summary(read_tsv(os.path.join(folder, "large.tsv")))
    idle = read_tsv(os.path.join(folder, "idle.tsv"))
    crit = criterion_results(folder)
    threads = sorted({k[2] for k in summary})

    md = []
    md.append(f"# Switchyard benchmark, {os.path.basename(folder)}\n")
    md.append(
        f"Mode **{meta.get('mode', '?')}** (`bench/run.sh"
        + (" --quick" if meta.get("mode") == "quick" else "")
        + (" --pgo" if meta.get("build") == "pgo" else "")
        + "`; Switchyard "
        + (
            "built profile-guided by scripts/pgo.sh"
            if meta.get("build") == "pgo"
            else "a plain release build"
        )
        + f"), commit `{meta.get('commit', '?')}`, {meta.get('nproc', '?')} CPUs, "
        f"load average {meta.get('loadavg_start', '?')} at the start and "
        f"{meta.get('loadavg_end', '?')} at the end, "
        f"{meta.get('steal_pct', '?')}% of CPU time stolen by the hypervisor, "
        f"{meta.get('elapsed_s', '?')} s in all. "
        f"{meta.get('sysbench', '')}, MariaDB {meta.get('mariadb', '?')}, loopback only.\n"
    )
    md.append(
        "Every process shares the same CPUs (clients, proxies, relay, three MariaDB servers), "
        "so absolute numbers are about the machine; the ratios, measured in the same run with "
        "interleaved rounds, are the point. A load average near or above the CPU count at "
        "the start, or stolen time above a few per cent, means other work ran alongside and "
        "the numbers are noisy.\n"
    )
    md.append(
        f"sysbench: {meta.get('tables', '?')} tables x {meta.get('table_size', '?')} rows, "
        "point selects with prepared statements (`--db-ps-mode=auto`) and in the text "
        f"protocol (`--db-ps-mode=disable`), {meta.get('secs', '?')} s per run, "
        f"{meta.get('rounds', '?')} interleaved round(s) per configuration, medians. "
        "Direct point selects go to one replica; the L4 relay (`examples/l4_relay.rs`, "
        "current-thread tokio, round-robin over both replicas, byte copy) is the floor of any "
        "userspace proxy; Switchyard runs with tenant `sb` (`consistency = \"eventual\"`) "
        "with 1 and with 2 worker threads, each its own process; HAProxy (Debian's, `mode tcp`, "
        "`nbthread 1`, round-robin over both replicas) is the L4 balancer operators deploy. "
        "CPU is the relay's, HAProxy's or the proxy's "
        "own utime+stime (/proc/PID/stat) over the run, per 10,000 statements.\n"
    )
    md.append("![qps per configuration and thread count](chart.png)\n")

    ratio_table(summary, md)
    for mode, how in (("prepared", "--db-ps-mode=auto"), ("text", "--db-ps-mode=disable")):
        md.append(f"## oltp_point_select, {mode} (`{how}`; reads to the replicas)\n")
        sysbench_tables(
            summary,
            "oltp_point_select",
            mode,
            ["direct_replica", "relay", "haproxy", "proxy_ct", "proxy_mt"],
            "direct_replica",
            md,
        )
    md.append("## oltp_read_write (transactions: everything to the primary)\n")
    sysbench_tables(
        summary,
        "oltp_read_write",
        "prepared",
        ["direct_primary", "relay_primary", "proxy_ct", "proxy_mt"],
        "direct_primary",
        md,
        relay="relay_primary",
    )
    rw_errors = sum(
        v["errors"] for k, v in summary.items() if k[0] == "oltp_read_write"
    )
    if rw_errors:
        md.append(
            f"oltp_read_write had {rw_errors} ignored errors in all (deadlocks sysbench "
            "retries), see raw/.\n"
        )

    consistency_table(read_tsv(os.path.join(folder, "consistency.tsv")), md)
    connect_per_request_table(read_tsv(os.path.join(folder, "connect_per_request.tsv")), md)

    md.append("## Large results (`SELECT * FROM big_Nk`, 100-byte rows, mariadb client)\n")
    md.append(
        "Time is the whole client command (connect, query, read, discard), median; the "
        "proxy is a fresh Switchyard with 1 worker. Peak "
        "RSS is the process's VmHWM during the query (reset with /proc/PID/clear_refs "
        "before it); growth is the largest VmHWM minus VmRSS just before, over the "
        "repetitions.\n"
    )
    if large:
        md.append(
            "| rows | configuration | time ms | time vs direct | throughput vs relay | "
            "peak RSS KiB | peak growth KiB |"
        )
        md.append("|---|---|---|---|---|---|---|")
        for rows in sorted({k[0] for k in large}):
            d = large.get((rows, "direct_replica"), {})
            rl = large.get((rows, "relay"), {})
            for c in ("direct_replica", "relay", "proxy_ct"):
                s = large.get((rows, c))
                if not s:
                    continue
                md.append(
                    f"| {rows:,} | {CONFIG_NAMES[c]} | {fmt(s['ms'], 0)} | "
                    f"{fmt_ratio(ratio(s['ms'], d.get('ms')))} | "
                    + (
                        fmt_ratio(ratio(rl.get("ms"), s["ms"]))
                        if c == "proxy_ct"
                        else "-"
                    )
                    + f" | {fmt(s['hwm'], 0)} | {fmt(s['growth'], 0)} |"
                )
        md.append("")
    else:
        md.append("Not measured.\n")

    md.append("## Idle client connections\n")
    md.append(
        "N client connections logged in and left idle (PyMySQL, `bench/idle_conns.py`); "
        "the proxy is a fresh Switchyard with 1 worker after one warm-up login. A proxied "
        "session holds no backend connection while idle (its login's check of the primary "
        "leases a pooled one and gives it back); the relay holds one to a replica per client "
        "connection. Threads_connected is the servers' count.\n"
    )
    per_conn = {}
    if idle:
        md.append(
            "| target | connections | VmRSS before KiB | after KiB | KiB per connection | "
            "open fds before | after | primary threads +/- | replica threads +/- |"
        )
        md.append("|---|---|---|---|---|---|---|---|---|")
        for r in idle:
            n = int(r["conns"])
            kib = (int(r["rss_after_kb"]) - int(r["rss_before_kb"])) / n
            per_conn[r["target"]] = kib
            md.append(
                f"| {CONFIG_NAMES.get(r['target'], r['target'])} | {n:,} | "
                f"{int(r['rss_before_kb']):,} | {int(r['rss_after_kb']):,} | {kib:.1f} | "
                f"{r['fds_before']} | {r['fds_after']} | "
                f"{int(r['primary_threads_after']) - int(r['primary_threads_before']):+d} | "
                f"{int(r['replica_threads_after']) - int(r['replica_threads_before']):+d} |"
            )
        md.append("")
    else:
        md.append("Not measured.\n")

    md.append("## Router classification (criterion, `benches/router.rs`)\n")
    md.append(
        "`Router::classify` on a warm digest cache, one statement per iteration; "
        "`point_select_remembered` is the session's `Router::classify_query` on a point "
        "select whose shape was seen before (no lexing); the 1 MB INSERT is a multi-row "
        "sysbench-shaped INSERT; the `select_1mb_*` rows are the flood's worst cases (an IN "
        "list, an OR chain too long to parse, one-letter words: the most tokens a megabyte "
        "holds), `_cold` with a shape never seen. Mean with its 95% confidence interval, and "
        "the median, in ns per statement.\n"
    )
    if crit:
        md.append("| statement | mean ns | 95% CI | median ns |")
        md.append("|---|---|---|---|")
        for name in OLTP_BENCHES + ["insert_1mb"] + FLOOD_BENCHES:
            c = crit.get(name)
            if not c:
                continue
            md.append(
                f"| {name} | {c['mean']:,.0f} | {c['lo']:,.0f} - {c['hi']:,.0f} | "
                f"{c['median']:,.0f} |"
            )
        md.append("")
    else:
        md.append("Not measured (see raw/criterion.txt).\n")

    # Targets (issue 6): reported, not asserted.
    md.append("## Targets (reported, not asserted)\n")
    md.append("| target | measured | verdict |")
    md.append("|---|---|---|")

    def ps(t, c):
        return summary.get(("oltp_point_select", "prepared", t, c), {})

    for c in PROXIES:
        r = ratio(ps(8, c).get("qps"), ps(8, "relay").get("qps"))
        md.append(
            f"| point selects, 8 threads: {CONFIG_NAMES[c]} >= 0.9x the relay's qps | "
            f"{fmt_ratio(r)} | {verdict(None if r is None else r >= 0.9)} |"
        )
    for c in PROXIES:
        r = ratio(ps(8, c).get("cpu10k"), ps(8, "relay").get("cpu10k"))
        md.append(
            f"| point selects, 8 threads: {CONFIG_NAMES[c]} CPU per query <= 1.3x the "
            f"relay's | {fmt_ratio(r)} ({fmt(ps(8, c).get('cpu10k'), 3)} vs "
            f"{fmt(ps(8, 'relay').get('cpu10k'), 3)} s / 10k) | "
            f"{verdict(None if r is None else r <= 1.3)} |"
        )
    d1 = ps(1, "direct_replica").get("p95")
    relay_added = None
    if d1 is not None and ps(1, "relay").get("p95") is not None:
        relay_added = ps(1, "relay")["p95"] - d1
    for c in PROXIES:
        p = ps(1, c).get("p95")
        if d1 is None or p is None or relay_added is None:
            md.append(
                f"| point selects, 1 thread: {CONFIG_NAMES[c]} added p95 <= 1.2x the relay's "
                f"| - | {verdict(None)}"
                + (" (full run only)" if meta.get("mode") == "quick" else "")
                + " |"
            )
            continue
        added = p - d1
        # sysbench's percentiles are histogram buckets: a relay that adds nothing measurable
        # leaves a proxy that adds nothing measurable too as the only pass.
        ok = added <= 1.2 * relay_added if relay_added > 0 else added <= 0
        md.append(
            f"| point selects, 1 thread: {CONFIG_NAMES[c]} added p95 <= 1.2x the relay's | "
            f"+{added:.3f} ms vs +{relay_added:.3f} ms (direct {d1:.3f} ms) | {verdict(ok)} |"
        )
    oltp_means = [crit[n]["mean"] for n in OLTP_BENCHES if n in crit]
    worst = max(oltp_means) if oltp_means else None
    md.append(
        "| router: typical OLTP statement < 2 us | slowest "
        + (
            f"{worst:,.0f} ns ({max((n for n in OLTP_BENCHES if n in crit), key=lambda n: crit[n]['mean'])})"
            if worst is not None
            else "-"
        )
        + f" | {verdict(None if worst is None else worst < 2000)} |"
    )
    big = crit.get("insert_1mb", {}).get("mean")
    md.append(
        f"| router: 1 MB INSERT < 50 us | {fmt(None if big is None else big / 1000, 1, ' us')} "
        f"| {verdict(None if big is None else big < 50_000)} |"
    )
    g20 = large.get((20000, "proxy_ct"), {}).get("growth")
    g200 = large.get((200000, "proxy_ct"), {}).get("growth")
    indep = None if g20 is None or g200 is None else g200 <= g20 + 1024
    md.append(
        "| large results: proxy peak memory independent of result size (growth at 200k "
        "rows within 1 MiB of growth at 20k) | "
        f"{fmt(g20, 0)} KiB at 20k, {fmt(g200, 0)} KiB at 200k | {verdict(indep)} |"
    )
    tr = ratio(
        large.get((200000, "relay"), {}).get("ms"),
        large.get((200000, "proxy_ct"), {}).get("ms"),
    )
    md.append(
        f"| large results: throughput >= 0.9x the relay's (200k rows) | {fmt_ratio(tr)} | "
        f"{verdict(None if tr is None else tr >= 0.9)} |"
    )
    pc = per_conn.get("proxy_ct")
    md.append(
        f"| idle client connection < 64 KiB of proxy memory | {fmt(pc, 1, ' KiB')} "
        f"(relay: {fmt(per_conn.get('relay'), 1, ' KiB')}) | "
        f"{verdict(None if pc is None else pc < 64)} |"
    )
    md.append("")

    note = chart(folder, summary, threads)
    if note:
        md = [line for line in md if not line.startswith("![")]
        md.append(f"_{note}._\n")

    md.append("## Files\n")
    md.append(
        "`sysbench.tsv`, `large.tsv`, `idle.tsv` (every measurement), `criterion/*.json` "
        "(criterion's estimates), `chart.dat`/`chart.gp` (the chart's data and script), "
        "`raw/` (each sysbench output, the proxies' configs and logs, criterion's output).\n"
    )
    with open(os.path.join(folder, "report.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
