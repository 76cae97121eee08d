"""The CI example installs nurture from its repository, never the unrelated PyPI `nurture`."""

from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_the_workflow_installs_nurture_from_a_pinned_git_ref():
    workflow = yaml.safe_load((ROOT / "examples/ci/nurture.yml").read_text(encoding="utf-8"))
    package = workflow["env"]["NURTURE_PACKAGE"]
    assert package.startswith("nurture @ git+https://") and "@v" in package.split("git+")[1]
    installs = [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"]
        if "pip install" in step.get("run", "")
    ]  # fmt: skip
    assert installs == ['pip install "$NURTURE_PACKAGE"'] * 2


def test_the_pre_commit_hooks_run_the_commands_the_readme_names():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert {hook["id"]: hook["entry"] for hook in hooks} == {
        "nurture-validate": "nurture validate --strict", "nurture-test": "nurture test",
    }  # fmt: skip
