"""The README stays true: its model table is the capability table, and its two commands exist."""
from pathlib import Path

from kling_api.rules.capabilities import markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_model_table_is_generated_from_the_capability_table():
    assert markdown_table() in README


def test_readme_commands_exist_and_ci_runs_the_test_command():
    assert "bash scripts/demo.sh" in README and "bash scripts/run_tests.sh" in README
    assert (ROOT / "scripts" / "demo.sh").is_file() and (ROOT / "scripts" / "run_tests.sh").is_file()
    assert "scripts/run_tests.sh" in (ROOT / ".ci" / "run").read_text()
