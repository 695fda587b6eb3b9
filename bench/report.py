"""The printed table (every figure next to its same-run baseline and the ratio) and the memory summary."""

from __future__ import annotations

from typing import Any

from bench.harness import ratio


def memory_summary(results: dict[str, Any], sampler: Any) -> dict[str, Any]:
    """Benchmark 5: peak RSS of the app process and of the worker processes, against same-run baselines."""
    peaks = sampler.peaks
    app_phases = {phase: stats["app"] for phase, stats in peaks.items() if "app" in stats}
    pipeline_phases = [p for p in peaks if p.startswith("pipeline")]
    app_peak = sampler.peak("app")
    base_peak = sampler.peak("baseline_a")
    runs = (results.get("pipeline") or {}).get("runs", {})
    worker_peak = (
        max(
            (max(r.get("worker_rss_peak_mib") or 0, r.get("worker_peak_rss_hwm_mib") or 0) for r in runs.values()),
            default=None,
        )
        or None
    )
    worker_idle = min((r.get("worker_rss_idle_mib") or 0 for r in runs.values()), default=None) or None
    return {
        "how": "psutil RSS sampled every 0.2 s; 'largest' = the biggest process of a group (for the app: the "
        "granian worker process serving requests), 'total' = the whole process tree (shared pages counted "
        "in each process); workers also report their own high-water mark (VmHWM) when they stop",
        "app_peak_rss_mib": app_peak,
        "app_peak_rss_tree_mib": sampler.peak("app", key="peak_total_mib"),
        "app_peak_rss_during_pipeline_mib": sampler.peak("app", pipeline_phases) if pipeline_phases else None,
        "app_by_phase": app_phases,
        "baseline_a_peak_rss_mib": base_peak,
        "ratio_app_over_baseline_a": ratio(app_peak, base_peak, 2),
        "worker_peak_rss_mib": worker_peak,
        "worker_idle_rss_mib": worker_idle,
        "ratio_worker_peak_over_idle": ratio(worker_peak, worker_idle, 2),
        "worker_by_run": {
            k: {
                "idle_mib": r.get("worker_rss_idle_mib"),
                "peak_mib": r.get("worker_rss_peak_mib"),
                "hwm_mib": r.get("worker_peak_rss_hwm_mib"),
            }
            for k, r in runs.items()
        },
    }


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
        return text + unit
    return f"{value}{unit}"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = []

    def add(
        section: str, figure: str, value: Any, baseline: str = "", rat: Any = None, target: str = "", met: Any = None
    ) -> None:
        rows.append(
            (
                section,
                figure,
                _f(value) if not isinstance(value, str) else value,
                baseline,
                _f(rat) if rat is not None else "",
                target,
                _f(met) if met is not None else "",
            )
        )

    m = results["machine"]
    add("machine", "cores / memory / cpu", f"{m['nproc']} / {m['memory_gib']} GiB / {m['cpu_model']}")
    for key in ("calibration_start", "calibration_end"):
        c = results.get(key)
        if c:
            add(
                "calibration",
                f"{key.split('_')[1]}: commit p50 / py loop",
                f"{_f(c['commit_ms_p50'])} ms / {_f(c['python_loop_iter_per_ms'])} it/ms",
            )

    intake = results.get("intake")
    if intake:
        for clients, lv in intake["levels"].items():
            app, a, b, r = lv["app"], lv["baseline_a"], lv["pgbench_b"], lv["ratios"]
            add(
                f"intake c={clients}",
                "app req/s (p50/p99 ms)",
                f"{_f(app['requests_per_s'])} ({_f(app['latency'].get('p50_ms'))}/{_f(app['latency'].get('p99_ms'))})",
                f"a {_f(a['requests_per_s'])} ({_f(a['latency'].get('p50_ms'))}/{_f(a['latency'].get('p99_ms'))})",
                r["rps_app_over_a"],
                "app/a >= 0.5",
                lv["target_intake_ge_50pct_of_a"],
            )
            one = lv.get("app_one_user")
            if one:
                add(
                    f"intake c={clients}",
                    "one user, one address: req/s",
                    one["requests_per_s"],
                    f"a {_f(a['requests_per_s'])}",
                    r.get("rps_one_user_over_a"),
                )
            add(
                f"intake c={clients}",
                "app req/s vs pgbench (b)",
                app["requests_per_s"],
                f"b {_f(b['requests_per_s'])} ({_f(b['latency'].get('p50_ms'))}/{_f(b['latency'].get('p99_ms'))})",
                r["rps_app_over_b"],
            )
            add(
                f"intake c={clients}",
                "cpu ms/req app / a: server, postgres",
                f"{_f(app.get('server_cpu_ms_per_request'))} / {_f(a.get('server_cpu_ms_per_request'))}, "
                f"{_f(app.get('postgres_cpu_ms_per_request'))} / {_f(a.get('postgres_cpu_ms_per_request'))}",
                f"pgbench pg cpu {_f(b.get('postgres_cpu_ms_per_request'))}",
            )
            add(
                f"intake c={clients}",
                "errors app / a; loadgen cpu ms/req",
                f"{app['errors']} / {a['errors']}; {_f(app['client_cpu_ms_per_request'])}",
            )

    pipe = results.get("pipeline")
    if pipe:
        commit = (results.get("calibration_start") or {}).get("commit_ms_p50")
        for label, run in pipe["runs"].items():
            lat = run["submit_to_assigned"]
            add(
                f"pipeline {label}",
                "tickets/s (drain s; p50/p99 submit->assigned s)",
                f"{_f(run['tickets_per_s'])} ({_f(run['drain_s'])}; "
                f"{_f((lat.get('p50_ms') or 0) / 1000)}/{_f((lat.get('p99_ms') or 0) / 1000)})",
                f"cpu {_f(run['worker_cpu_ms_per_ticket'])} ms/t, {_f(run.get('statements_per_ticket'))} stmts/t, "
                f"rss {_f(run['worker_rss_peak_mib'])} MiB",
            )
            if run.get("retries") or run.get("dead_jobs"):
                causes = "; ".join(f"{n}x {cause}" for cause, n in (run.get("failures_logged") or {}).items())
                add(
                    f"pipeline {label}",
                    "retried attempts / dead jobs (causes)",
                    f"{run.get('retries')} / {run.get('dead_jobs')} ({causes or 'none logged'})",
                )
        add(
            "pipeline",
            "loop overhead ms/ticket",
            pipe["loop_overhead_ms_per_ticket"],
            f"commit p50 {_f(commit)} ms",
            pipe["loop_overhead_in_commits"],
            "<= 5 ms",
            pipe["loop_overhead_target_met"],
        )
        add(
            "pipeline",
            f"800 ms provider, 1 proc, c={pipe['sleep800_concurrency_needed']}: tickets/s",
            pipe["sleep800_1p_tickets_per_s"],
            f"ideal c/0.8 = {_f(pipe['sleep800_ideal_tickets_per_s'])}",
            pipe["sleep800_efficiency"],
            ">= 20/s",
            pipe["sleep800_target_met"],
        )
        add(
            "pipeline",
            "scaling 1/2/4 procs (offline)",
            " / ".join(_f(v) for v in pipe["scaling_offline"].values()),
            "1 process",
        )
        add(
            "pipeline",
            "scaling 1/2/4 procs (800 ms)",
            " / ".join(_f(v) for v in pipe["scaling_sleep800"].values()),
            "1 process",
        )

    rec = results.get("recovery")
    if rec:
        add(
            "recovery",
            "kill -9 all workers, restart one: s until done",
            rec["recovery_s"],
            f"{rec['running_jobs_at_kill']} jobs running, {rec['unrouted_tickets_at_kill']} tickets unrouted, "
            f"lease {rec['lease_s']} s",
            None,
            rec["target"],
            rec["target_met"],
        )

    uploads = results.get("attachments")
    if uploads:
        for name, lv in uploads["levels"].items():
            add(
                f"attachments {name}",
                "upload MB/s (p50 ms)",
                f"{_f(lv['endpoint_mb_per_s'])} ({_f(lv['endpoint_latency'].get('p50_ms'))})",
                f"INSERT {_f(lv['insert_mb_per_s'])} ({_f(lv['insert_latency'].get('p50_ms'))})",
                lv["ratio_endpoint_over_insert"],
            )

    routing = results.get("routing")
    if routing:
        d, b = routing["decision_time"], routing["baseline_pk_lookup"]
        add(
            "routing",
            "choose_assignee p50 / p99 ms",
            f"{_f(d['p50_ms'])} / {_f(d['p99_ms'])}",
            f"pk lookup p50 {_f(b['p50_ms'])} ms",
            routing["ratio_p99_over_pk_lookup_p50"],
            "p99 <= 10 ms",
            routing["target_met"],
        )
        add(
            "routing",
            "indexes used / seq scans",
            ", ".join(routing["indexes_used"]) + " / " + (", ".join(routing["seq_scans"]) or "none"),
        )

    mail_in = results.get("inbound")
    if mail_in:
        add(
            "inbound mail",
            "processed per s, one worker (parse_mail alone)",
            f"{_f(mail_in['processed_per_s_one_worker'])} ({_f(mail_in['parse_per_s'])})",
            f"stdlib parse {_f(mail_in['baseline_stdlib_parse_per_s'])}/s",
            mail_in["ratio_processed_over_stdlib"],
            mail_in["target"],
            mail_in["target_met"],
        )
        add(
            "inbound mail",
            "ms per mail (in commits) / SQL statements per mail",
            f"{_f(mail_in['ms_per_mail'])} ({_f(mail_in['ms_per_mail_in_commits'])})"
            f" / {_f(mail_in['statements_per_mail'])}",
            "pgbench commit p50 at the start",
        )

    pages = results.get("pages")
    if pages:
        b = pages["baseline_pk_lookup"]
        for name, s in pages["server"].items():
            first = name in ("moderator_queue", "admin_list")
            add(
                "pages (server)",
                f"{name} p50 / p99 ms",
                f"{_f(s['p50_ms'])} / {_f(s['p99_ms'])}",
                f"pk lookup p50 {_f(b['p50_ms'])} ms",
                s["ratio_p50_over_pk_lookup"],
                "<= 50 ms" if first else "",
                (s["p50_ms"] <= 50) if first else None,
            )
        health = pages["http"].get("health_baseline")
        for name, s in pages["http"].items():
            if name == "health_baseline":
                continue
            add(
                "pages (http)",
                f"{name} p50 / p99 ms",
                f"{_f(s['p50_ms'])} / {_f(s['p99_ms'])}",
                f"/api/health p50 {_f(health['p50_ms'])} ms",
                s["ratio_p50_over_health"],
            )

    search = results.get("search")
    if search:
        o = search["overall"]
        add(
            "search",
            f"{search['data']['tickets']:,} tickets: p50 / p99 ms",
            f"{_f(o['p50_ms'])} / {_f(o['p99_ms'])}",
            f"worst {search['worst_kind']}",
            None,
            "p99 <= 50 ms",
            search["target_met"],
        )
        for name, s in search["kinds"].items():
            add(
                "search",
                f"{name} p50 / p99 ms",
                f"{_f(s['p50_ms'])} / {_f(s['p99_ms'])}",
                f"~{s['median_total']} found",
            )

    found = results.get("similar")
    if found:
        for role, s in found["by_role"].items():
            add(
                "similar",
                f"{found['data']['tickets']:,} tickets, {role}: p50 / p99 ms",
                f"{_f(s['p50_ms'])} / {_f(s['p99_ms'])}",
                f"recall@5 {found['recall_at_5'][role]}",
                None,
                "p99 <= 50 ms",
                s["p99_ms"] <= 50.0,
            )

    mem = results.get("memory")
    if mem:
        add(
            "memory",
            "app peak RSS MiB (worker proc / tree)",
            f"{_f(mem['app_peak_rss_mib'])} / {_f(mem['app_peak_rss_tree_mib'])}",
            f"baseline a {_f(mem['baseline_a_peak_rss_mib'])} MiB",
            mem["ratio_app_over_baseline_a"],
        )
        add(
            "memory",
            "worker peak RSS MiB",
            mem["worker_peak_rss_mib"],
            f"idle worker {_f(mem['worker_idle_rss_mib'])} MiB",
            mem["ratio_worker_peak_over_idle"],
        )

    header = ("benchmark", "figure", "value", "same-run baseline", "ratio", "target", "met")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
