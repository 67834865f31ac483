"""``mypy --strict`` over tests/typing/calls.py: wrong calls of the public API are type errors
(each with the exact ``# type: ignore[code]`` expected), right calls are not."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_wrong_calls_are_type_errors_and_right_calls_are_not() -> None:
    out, err, status = api.run(
        [
            "--strict",
            "--warn-unused-ignores",
            "--no-error-summary",
            "--show-error-codes",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache"),
            str(HERE / "calls.py"),
        ]
    )  # fmt: skip
    assert status == 0, f"mypy --strict on tests/typing/calls.py:\n{out}{err}"
