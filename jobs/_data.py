"""What the Ray Data templates share: Ray Data on the job's workers, safe row expressions,
and Parquet datasets written whole into the project's `datasets/`.

Expressions (`data-process`'s filter and derived columns) are parsed with Python's `ast` and
evaluated here over pandas columns; only the node types listed in `GRAMMAR` are accepted, so
no user text ever reaches Python's `eval`. Private (the registry skips `_` modules) and light
at import: numpy, pandas and Ray are imported inside functions.
"""

from __future__ import annotations

import ast
import logging
import operator
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fabric import runtime
from jobs import _ray

GRAMMAR = (
    "a Python-like expression over the row's columns: column names (or col('any name')), "
    "numbers, 'text', True, False, None; + - * / // % **; == != < <= > >= (chains too); "
    "and, or, not (also & | ~); x in [1, 2] and x not in ['a']; functions abs, round, log, "
    "exp, sqrt, isnull, notnull, lower, upper, length. Nothing else (no attributes, no "
    "other calls)"
)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS = (
    "abs",
    "round",
    "log",
    "exp",
    "sqrt",
    "isnull",
    "notnull",
    "lower",
    "upper",
    "length",
    "col",
)


class BadData(ValueError):
    """Rows a task cannot process (e.g. text cast to a number); its message is for the user."""


class ExpressionError(ValueError):
    """An expression outside the grammar, or naming columns the data lacks."""


def _function(name: str) -> Callable[..., Any]:
    import numpy as np
    import pandas as pd

    return {
        "abs": abs,
        "round": lambda value, digits=0: value.round(digits),
        "log": np.log,
        "exp": np.exp,
        "sqrt": np.sqrt,
        "isnull": pd.isna,
        "notnull": pd.notna,
        "lower": lambda value: value.str.lower(),
        "upper": lambda value: value.str.upper(),
        "length": lambda value: value.str.len(),
    }[name]


class Expression:
    """One parsed expression: checked once against the columns, then evaluated per batch."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"{text!r} is not an expression: {exc.msg}") from None
        self.columns = self._check(self._tree)

    def _check(self, node: ast.AST) -> set[str]:
        """The columns the expression reads; ExpressionError at any node outside the grammar."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | None):
            return set()
        if isinstance(node, ast.Name):
            return {node.id}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id not in _FUNCTIONS or node.keywords:
                raise ExpressionError(
                    f"{self.text!r}: {node.func.id}(...) is not one of the functions "
                    f"{', '.join(_FUNCTIONS)} (positional arguments only)"
                )
            if node.func.id == "col":
                if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
                    raise ExpressionError(f"{self.text!r}: col takes one quoted column name")
                return {str(node.args[0].value)}
            return set().union(*map(self._check, node.args))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._check(node.left) | self._check(node.right)
        if isinstance(node, ast.UnaryOp):
            return self._check(node.operand)
        if isinstance(node, ast.BoolOp):
            return set().union(*map(self._check, node.values))
        if isinstance(node, ast.Compare):
            read = self._check(node.left)
            membership = any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            if membership and len(node.ops) > 1:
                raise ExpressionError(f"{self.text!r}: put `in` in a comparison of its own")
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    if not isinstance(right, ast.List | ast.Tuple) or not all(
                        isinstance(item, ast.Constant) for item in right.elts
                    ):
                        raise ExpressionError(f"{self.text!r}: `in` takes a list of constants")
                elif type(op) in _COMPARE:
                    read |= self._check(right)
                else:
                    raise ExpressionError(f"{self.text!r}: `is` is not supported; use isnull")
            return read
        raise ExpressionError(
            f"{self.text!r}: {ast.unparse(node)!r} is outside the expression grammar"
        )

    def evaluate(self, frame: Any) -> Any:
        """The expression's value for every row of the pandas DataFrame (a Series)."""
        import pandas as pd

        value = self._value(self._tree, frame)
        return value if isinstance(value, pd.Series) else pd.Series(value, index=frame.index)

    def _value(self, node: ast.AST, frame: Any) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return frame[node.id]
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            if node.func.id == "col":
                return frame[node.args[0].value]  # type: ignore[attr-defined]
            args = [self._value(arg, frame) for arg in node.args]
            return _function(node.func.id)(*args)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](
                self._value(node.left, frame), self._value(node.right, frame)
            )
        if isinstance(node, ast.UnaryOp):
            operand = self._value(node.operand, frame)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            return ~operand
        if isinstance(node, ast.BoolOp):
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            values = [self._value(value, frame) for value in node.values]
            result = values[0]
            for value in values[1:]:
                result = combine(result, value)
            return result
        assert isinstance(node, ast.Compare)
        result = None
        left = self._value(node.left, frame)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                items = [item.value for item in right_node.elts]  # type: ignore[attr-defined]
                right = left  # never compared again: `in` stands alone (see _check)
                test = left.isin(items)
                test = ~test if isinstance(op, ast.NotIn) else test
            else:
                right = self._value(right_node, frame)
                test = _COMPARE[type(op)](left, right)
            result = test if result is None else result & test
            left = right
        return result


def check_columns(template: str, wanted: Iterable[str], have: Iterable[str], what: str) -> None:
    """Exit naming every column asked for that the data lacks, and the columns it has."""
    present = list(have)
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise SystemExit(
            f"{template}: {what} names no such column {', '.join(missing)}; "
            f"the columns are {', '.join(present)}"
        )


def parquet_columns(template: str, dataset: str) -> list[str]:
    """The dataset's columns from its Parquet schema (no rows read), or an exit saying why not."""
    import pyarrow.dataset

    if not Path(dataset).exists():
        raise SystemExit(f"{template}: no dataset at {dataset}")
    return list(pyarrow.dataset.dataset(dataset, format="parquet").schema.names)


def start_ray() -> None:
    """Join the job's Ray cluster (or start one outside Fabric), with Ray Data kept quiet."""
    from ray.data import DataContext

    _ray.connect()
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # Ray Data warns whenever a small dataset has fewer blocks than the job has workers.
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks")
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def task_resources() -> dict[str, Any]:
    """Ray options for each Ray Data task: the resources of one of the job's workers.

    A job granted no workers runs its tasks within the driver's share, asking Ray for no CPU
    (and `task_count` runs them one at a time), so it never holds more than the quota admitted.
    """
    granted = runtime.workers()
    if granted.count == 0:
        return {"num_cpus": 0}
    named = granted.ray_resources()
    options: dict[str, Any] = {"num_cpus": named.pop("CPU", 0)}
    if "GPU" in named:
        options["num_gpus"] = named.pop("GPU")
    if "memory" in named:
        options["memory"] = named.pop("memory")
    if named:
        options["resources"] = named
    return options


def task_count() -> int:
    """How many Ray Data tasks of one operator run at once: one per worker granted."""
    return max(runtime.workers().count, 1)


def map_options() -> dict[str, Any]:
    """Keyword arguments for `map_batches`, `flat_map` and `map` on the job's workers."""
    from ray.data import TaskPoolStrategy

    return {**task_resources(), "compute": TaskPoolStrategy(size=task_count())}


def read_options() -> dict[str, Any]:
    """Keyword arguments for `ray.data.read_*` on the job's workers."""
    return {**task_resources(), "concurrency": task_count()}


def write_parquet(dataset: Any, folder: Path) -> int:
    """Write a Ray dataset as Parquet files in `folder`, with the job's workers; its rows."""
    import pyarrow.dataset

    with user_errors():
        dataset.write_parquet(
            str(folder), concurrency=task_count(), ray_remote_args=task_resources()
        )
    folder.mkdir(parents=True, exist_ok=True)  # an empty dataset writes no file
    return pyarrow.dataset.dataset(folder, format="parquet").count_rows()


def staging(target: Path) -> Path:
    """A fresh folder beside `target` to write into before `replace`."""
    return target.with_name(f".{target.name}-{time.time_ns()}")


def replace(staged: Path, target: Path) -> None:
    """Put the complete `staged` folder in place of `target`: a reader finds the old dataset
    or the new one, never a half-written mix."""
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)


def materialize(dataset: Any) -> Any:
    with user_errors():
        return dataset.materialize()


@contextmanager
def user_errors() -> Iterator[None]:
    """Data a task could not process (`BadData`) ends the job with its reason, not a trace.

    Ray Data hands the driver the task's error as text only (a UserCodeException whose
    message holds the remote traceback), so the reason is found by its type's name there.
    """
    try:
        yield
    except Exception as exc:
        found = re.search(rf"{BadData.__module__}\.BadData: (.+)", str(exc))
        if found is None:
            raise
        raise SystemExit(found.group(1)) from None


def datasets_dir() -> Path:
    folder = runtime.project_dir() / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
