"""junit.xml: one <testcase> per budget, so CI systems show the PRD as a test suite.

A failed budget is a <failure>; an inconclusive, not-applicable or no-data one is <skipped>
with its reason (docs/run-format.md). An invalid run adds one <testcase name="run.valid"> with
an <error> listing why, because its budgets' verdicts cannot be trusted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # writes XML only, never parses untrusted input
from pathlib import Path

from velro_perf.reports.runfiles import BudgetVerdict, Summary

__all__ = ["write_junit"]


def write_junit(summary: Summary, path: Path) -> Path:
    """Write the summary's budgets as a JUnit XML file; return its path."""
    cases = []
    failures = skipped = errors = 0
    for b in summary["budgets"]:
        case = ET.Element(
            "testcase",
            classname=f"prd.{b['requirement'].replace(' ', '_')}",
            name=b["id"],
            time="0",
        )
        verdict = b["verdict"]
        sentence = b.get("sentence", "")
        if verdict == BudgetVerdict.FAIL:
            failures += 1
            ET.SubElement(case, "failure", message=sentence, type="budget").text = sentence
        elif verdict != BudgetVerdict.PASS:
            skipped += 1
            ET.SubElement(case, "skipped", message=f"{verdict}: {sentence}")
        ET.SubElement(case, "system-out").text = sentence
        cases.append(case)
    reasons = summary["invalid_reasons"]
    if reasons:
        errors += 1
        case = ET.Element("testcase", classname="prd.run", name="run.valid", time="0")
        text = "; ".join(str(r) for r in reasons)
        ET.SubElement(case, "error", message=f"invalid run: {text}", type="invalid").text = text
        cases.append(case)
    suite = ET.Element(
        "testsuite",
        name=f"PRD budgets: {summary['run_id']}",
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
    )
    suite.extend(cases)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    out = Path(path)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
