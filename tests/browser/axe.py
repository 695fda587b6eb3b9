"""axe-core for the accessibility tests: one pinned version from the npm registry, installed into .tools/.

`python -m tests.browser.axe` installs it (scripts/test.sh calls this); the tests call `axe_script()`, which
installs it too when it is missing, so a single browser test can be run on its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

AXE_CORE_VERSION = "4.14.1"
ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".tools" / f"axe-core-{AXE_CORE_VERSION}"
SCRIPT = PREFIX / "node_modules" / "axe-core" / "axe.min.js"

# WCAG 2.0 and 2.1, levels A and AA: what the app promises.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Transient toasts (sonner) come and go with events; they are not part of a page's content.
EXCLUDE = [["[data-sonner-toaster]"], ["section[aria-label^='Notifications']"]]


def axe_script() -> Path:
    """The path of axe.min.js, installing the pinned axe-core from the npm registry if needed."""
    if not SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is required to install axe-core for the accessibility tests")
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(PREFIX),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--no-save",
                f"axe-core@{AXE_CORE_VERSION}",
            ],
            check=True,
        )
    return SCRIPT


def run_axe(page, disable: tuple[str, ...] = ()) -> list[dict]:
    """Run axe on the page as it is now; returns its WCAG 2 A/AA violations (minus the `disable`d rules)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        "([exclude, tags, rules]) => axe.run({exclude}, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations'], rules})",
        [EXCLUDE, WCAG_TAGS, {rule: {"enabled": False} for rule in disable}],
    )
    return result["violations"]


def describe(violations: list[dict]) -> str:
    """One line per failing element: rule id, impact, target and help (plus axe's summary of the failure)."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"{v['id']} [{v['impact']}] {json.dumps(node['target'])}: {v['help']}. {summary}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(axe_script())
