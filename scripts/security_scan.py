"""Security scans: checkov over template.yaml, bandit over the code; prints their counts, fails on any finding.

Both run from their own virtualenv (`--tools`, which `make` creates from scan-constraints.txt), since checkov's
pins clash with the project's. A finding is either fixed or skipped where it stands with a reason: in the
template, `Metadata: checkov: skip: [{id, comment}]` on the resource; in code, `# nosec BXXX # reason` on the
line. A skip without a reason fails the scan like a finding.

    scripts/security_scan.py --tools .venv-scan/bin
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "template.yaml"
CODE = ["layers", "functions", "gatewayctl", "emulator"]
# A skip needs a reason a reviewer can read; checkov fills this in for a skip that has none.
CHECKOV_NO_REASON = "No comment provided"
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)$")
NOSEC_WITH_REASON = re.compile(r"\s+B\d{3}(,\s*B\d{3})*\s+#\s*\S.{3,}")


def checkov(tools: Path) -> list[str]:
    """Problems of the template's scan (failed checks, skips without a reason); prints the counts."""
    command = [
        str(tools / "checkov"),
        "--file",
        TEMPLATE,
        "--framework",
        "cloudformation",
        # No calls to Prisma Cloud for guideline links: the scan runs offline.
        "--skip-download",
        "--compact",
        "--output",
        "json",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        return [f"checkov did not run (exit {run.returncode}): {run.stderr[-2000:]}"]
    summary, results = report["summary"], report["results"]
    problems = [
        f"checkov {c['check_id']} failed on {c['resource']}: {c['check_name']}" for c in results["failed_checks"]
    ]
    problems += [f"checkov could not parse {path}" for path in results.get("parsing_errors", [])]
    for check in results["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        if not reason.strip() or reason.strip() == CHECKOV_NO_REASON:
            problems.append(f"checkov {check['check_id']} is skipped on {check['resource']} without a reason")
    print(
        f"checkov {summary['checkov_version']} on {TEMPLATE}: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped with a reason in the template"
    )
    return problems


def unexplained_nosec(paths: list[Path]) -> list[str]:
    """`# nosec` comments that do not name the test they silence or give no reason."""
    problems = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found = NOSEC.search(line)
            if found and not NOSEC_WITH_REASON.match(found.group("rest")):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                problems.append(f"{where}:{number}: write '# nosec BXXX # reason', naming the test and why")
    return problems


def bandit(tools: Path) -> list[str]:
    """Problems of the code's scan (issues of any severity, unexplained nosec); prints the counts."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "bandit.json"
        command = [
            str(tools / "bandit"),
            "--configfile",
            "pyproject.toml",
            "--recursive",
            *CODE,
            "--format",
            "json",
            "--output",
            str(output),
            "--quiet",
        ]
        # Its stderr only says that a nosec comment covers a whole multi-line literal: not worth showing.
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if not output.exists():
            return [f"bandit did not run (exit {run.returncode}): {run.stderr[-2000:]}"]
        report: dict[str, Any] = json.loads(output.read_text())
    issues = report["results"]
    totals = report["metrics"]["_totals"]
    by_severity = {level: int(totals[f"SEVERITY.{level.upper()}"]) for level in ("high", "medium", "low")}
    problems = [
        f"bandit {i['test_id']} ({i['issue_severity'].lower()}) {i['filename']}:{i['line_number']}: {i['issue_text']}"
        for i in issues
    ]
    problems += [f"bandit could not scan {e['filename']}: {e['reason']}" for e in report["errors"]]
    sources = sorted(p for folder in CODE for p in (ROOT / folder).rglob("*.py"))
    problems += unexplained_nosec(sources)
    counts = ", ".join(f"{n} {level}" for level, n in by_severity.items())
    print(
        f"bandit on {' '.join(CODE)}: {len(issues)} issues ({counts}), {totals['skipped_tests']} marked "
        "'# nosec' with a reason"
    )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, required=True, help="bin/ of the virtualenv holding checkov and bandit")
    args = parser.parse_args()
    problems = checkov(args.tools) + bandit(args.tools)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    if problems:
        print(f"security scan: {len(problems)} unexplained findings", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
