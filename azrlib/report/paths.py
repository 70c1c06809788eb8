"""Where things are: the repository root, paths relative to it, and figure file names."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root (the folder holding azrlib/); AZR_REPO_ROOT overrides it."""
    override = os.environ.get("AZR_REPO_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[2]


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path: relative paths are taken relative to the repository root (not the cwd,
    which is notebooks/ when papermill runs a notebook)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def display_path(path: str | os.PathLike) -> str:
    """A path as shown in notebook output: relative to the repository root when inside it, so
    outputs do not depend on where the clone lives."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(repo_root()))
    except ValueError:
        return p.name if p.is_absolute() else str(p)


def figure_stem(figures_dir: str | os.PathLike, notebook: str, name: str) -> Path:
    """`<figures_dir>/<notebook>_<name>` (the contract's figure naming), without the extension."""
    if not name or "/" in name or "/" in notebook:
        raise ValueError(f"figure and notebook names must be plain names (got {notebook!r}, {name!r})")
    return resolve(figures_dir) / f"{notebook}_{name}"
