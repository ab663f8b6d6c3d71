"""A plain (non-editable) install carries everything paperboy needs and nothing that collides."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# What the wheel may put at the top of site-packages: one name is ours alone, or clearly ours.
OWN_TOP_LEVEL = {"newsletter", "paperboy_bot", "paperboy_templates", "paperboy_seeds"}


def installed_name(folder: Path) -> str:
    """The import name a repository folder gets, through pyproject's package-dir mapping."""
    relative = folder.relative_to(ROOT)
    top, *rest = relative.parts
    mapped = {path: name for name, path in SETUPTOOLS["package-dir"].items()}
    return ".".join([mapped.get(top, top), *rest])


def test_every_code_package_in_the_tree_is_listed_for_the_wheel() -> None:
    in_tree = {
        installed_name(init.parent)
        for top in ("newsletter", "bot")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert in_tree <= set(SETUPTOOLS["packages"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """paperboy built as a wheel from a copy of the tree (pip builds in the source folder)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return next(work.glob("paperboy-*.whl"))


def test_the_wheel_puts_only_paperboy_names_in_site_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert top_level == OWN_TOP_LEVEL


def test_the_wheel_carries_templates_seeds_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "paperboy_templates/mail/daily.html",
        "paperboy_templates/web/manage.html",
        "paperboy_seeds/000_c5e999339737264f.txt",
        "newsletter/migrations/env.py",
        "newsletter/catalogue.toml",
    ):
        assert needed in names


def test_a_plain_install_runs_the_demo_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    """The wheel in an environment of its own (this one's dependencies, not its editable
    paperboy), run from an empty folder with no checkout in sight."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # Dependencies come from this environment's site-packages, added as a plain path: its
    # .pth files (the editable paperboy's finder among them) are not run that way.
    dependencies = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(dependencies)])
    run = subprocess.run(
        [sys.executable, "-S", "-c", "from newsletter.cli import run; run()", "demo"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    assert "demo: 76 papers" in run.stdout
    assert list((elsewhere / "paperboy-demo").rglob("*.eml"))
