"""What the media templates share: finding the videos asked for, running one function per
video on the job's Ray workers (Ray Data), and writing the manifest of what came out.

Private (the registry skips `_` modules) and light at import: PyAV, pandas and Ray are
imported inside functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fabric import runtime
from jobs import _data

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv"}
MANIFEST_FILE = "manifest.parquet"


def videos(template: str, paths: Iterable[str]) -> list[str]:
    """The video files named: files as given, folders as the video files they hold (sorted);
    an exit naming every path that is not there, or a folder that holds no video."""
    found: list[str] = []
    missing: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            if not inside:
                missing.append(f"{path} (a folder with no {'/'.join(sorted(VIDEO_SUFFIXES))})")
            found += [str(p) for p in inside]
        elif path.is_file():
            found.append(str(path))
        else:
            missing.append(str(path))
    if missing:
        raise SystemExit(f"{template}: no such video: {', '.join(missing)}")
    return found


def slug(index: int, video: str) -> str:
    """A folder or file name for the index-th video: unique, and readable after its file."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(video).stem)[:60]
    return f"{index:04d}-{stem}"


def each_video(
    items: list[str], work: Callable[[int, str], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """`work(index, video)` for every video, in parallel on the job's workers (one Ray Data
    task per video at a time, as many at once as workers); the rows they return, in order."""
    import ray.data

    _data.start_ray()
    listing = ray.data.from_items(
        [{"index": i, "video": video} for i, video in enumerate(items)],
        override_num_blocks=len(items),
    )

    def each(row: dict[str, Any]) -> list[dict[str, Any]]:
        return work(int(row["index"]), str(row["video"]))

    rows = listing.flat_map(each, **_data.map_options()).take_all()
    return sorted(rows, key=lambda row: (row["video_index"], row.get("frame", 0)))


def write_manifest(rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """The rows as `manifest.parquet` in the run's folder (columns in this order)."""
    import pandas as pd

    path = runtime.run_dir() / MANIFEST_FILE
    pd.DataFrame(rows, columns=columns).to_parquet(path, index=False)
    return path
