"""summary.md: the verdict and one row per load budget, as Markdown a CI job can publish."""

from __future__ import annotations

from velro_perf.reports.markdown import render_markdown


def _summary(**overrides: object) -> dict[str, object]:
    summary: dict[str, object] = {
        "run_id": "20261201-210000-smoke-external",
        "verdict": "fail",
        "exit_code": 1,
        "shape": "smoke",
        "target": "external",
        "service_profile": "external",
        "api": {"name": "fastapi-users", "file": "targets/fastapi-users.toml", "sha256": "ab" * 32},
        "config_hash": "cd" * 32,
        "requests": 9478,
        "rps": 233.4,
        "invalid_reasons": [],
        "warnings": [],
        "budgets": [
            {"id": "authentication.p95", "kind": "latency", "bound_text": "< 50 ms",
             "measured": 61.2, "ci_low": 58.0, "ci_high": 64.9, "verdict": "fail", "note": ""},
            {"id": "authorization.p95", "kind": "latency", "bound_text": "< 75 ms",
             "measured": None, "ci_low": None, "ci_high": None, "verdict": "not_applicable",
             "note": "the backend has no authz_check or project_read: no resources | none"},
            {"id": "tier.l1.p99", "kind": "microbenchmark", "bound_text": "< 5 ms",
             "measured": None, "verdict": "not_applicable", "note": "bench"},
        ],
    }  # fmt: skip
    summary.update(overrides)
    return summary


def test_the_table_has_the_verdict_the_api_file_and_a_row_per_load_budget() -> None:
    text = render_markdown(_summary())
    lines = text.splitlines()
    assert lines[0] == "### velro-perf: ❌ fail (exit 1)"
    assert "API `fastapi-users` (`targets/fastapi-users.toml`, sha256 `abababababab`)" in text
    assert "9,478 judged requests at 233/s" in text
    assert "| authentication.p95 | < 50 ms | 61.2 ms | 58.0 ms – 64.9 ms | ❌ fail |" in lines
    # the reason of a budget not applicable is kept, its pipe escaped so the table holds
    row = next(line for line in lines if line.startswith("| authorization.p95"))
    assert "➖ not applicable: the backend has no authz_check" in row
    assert "no resources \\| none" in row
    # microbenchmark budgets are judged by velro-perf bench, not by a load run
    assert "tier.l1.p99" not in text


def test_an_invalid_run_says_why_first() -> None:
    text = render_markdown(
        _summary(verdict="invalid", exit_code=3, invalid_reasons=["only 20 requests after warm-up"])
    )
    assert text.startswith("### velro-perf: ⛔ invalid (exit 3)")
    assert "**Invalid run:** only 20 requests after warm-up" in text


def test_a_budget_of_the_suites_own_is_marked_outside_the_prd() -> None:
    refresh = {
        "id": "refresh.p95", "kind": "latency", "bound_text": "< 100 ms", "measured": 12.0,
        "ci_low": 11.0, "ci_high": 13.0, "verdict": "pass", "note": "", "outside_prd": True,
    }  # fmt: skip
    text = render_markdown(_summary(budgets=[refresh]))
    assert "| refresh.p95 (the suite's own, not a PRD row) | < 100 ms | 12.0 ms |" in text
