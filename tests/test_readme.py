"""The README stays true: its model table is the capability table, its two commands exist, and its
performance summary quotes benchmarks/README.md, where the measurements are."""
import re
from pathlib import Path

from kling_api.rules.capabilities import markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line) up to the next heading of that level."""
    match = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no {heading!r} section"
    return match.group(1)


def test_readme_model_table_is_generated_from_the_capability_table():
    assert markdown_table() in README


def test_readme_commands_exist_and_ci_runs_the_test_command():
    assert "bash scripts/demo.sh" in README and "bash scripts/run_tests.sh" in README
    assert (ROOT / "scripts" / "demo.sh").is_file() and (ROOT / "scripts" / "run_tests.sh").is_file()
    assert "scripts/run_tests.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_performance_summary_links_the_benchmarks_and_quotes_their_numbers():
    summary = section(README, "## Performance")
    assert "](benchmarks/README.md)" in summary and len(summary.strip().splitlines()) <= 6
    measured = BENCHMARKS_README.read_text()
    assert "bash benchmarks/run.sh" in measured and "](../README.md#performance)" in measured
    numbers = re.findall(r"\d+\.\d+", summary)
    assert numbers and [n for n in numbers if n not in measured] == []
