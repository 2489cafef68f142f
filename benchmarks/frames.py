"""`video-frames` against the `ffmpeg` tool: frames decoded per second over the same videos on
the same cores.

It writes a few H.264 videos (a moving pattern, so decoding has work to do), then alternates,
`--runs` times each: `ffmpeg -i VIDEO -f null -` over every video, as many processes at once as
cores; and the `video-frames` template's work (Ray Data over the videos, PyAV), on a local Ray
with that many CPUs and one worker per core, keeping `--fps` frames a second as JPEG. Both
decode every frame; the rate is the videos' frames over the wall time (median of the runs).
Ray's start is left out; each template run pays its own Ray Data start.

    .venv/bin/python benchmarks/frames.py [--videos 4] [--seconds 20] [--cores 2] [--runs 3]

Needs `ffmpeg` on the PATH (e.g. `apt-get install -y ffmpeg`). Prints one JSON line on stdout;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 30


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _make_video(path: Path, seconds: int, shift: int) -> int:
    """A moving diagonal pattern with a drifting colour, H.264; the number of frames."""
    import av

    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = seconds * FPS
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for number in range(frames):
            wave = ((xs + ys * 2 + (number + shift) * 4) % 256).astype(np.uint8)
            image = np.stack([wave, np.roll(wave, number, axis=1), 255 - wave], axis=-1)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return frames


def _ffmpeg(videos: list[str], cores: int) -> float:
    def decode(video: str) -> None:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", video, "-f", "null", "-"], check=True
        )

    began = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(decode, videos))
    return time.perf_counter() - began


def _template(videos: list[str], fps: float, folder: Path) -> tuple[float, int]:
    from jobs import video_frames

    os.environ["FABRIC_RUN_DIR"] = str(folder / f"run-{time.time_ns()}")
    began = time.perf_counter()
    outputs = video_frames.run(video_frames.Params(videos=videos, fps=fps))
    return time.perf_counter() - began, outputs["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fps", type=float, default=1.0, help="frames kept per second")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("benchmarks/frames.py needs the ffmpeg tool on the PATH: apt-get install ffmpeg")

    import ray

    folder = Path(tempfile.mkdtemp(prefix="fabric-frames-"))
    # Ray first: on a busy machine its start may time out, better before the videos are made.
    ray.init(num_cpus=args.cores, include_dashboard=False, logging_level="ERROR")
    try:
        _log(f"writing {args.videos} videos of {args.seconds} s, {WIDTH}x{HEIGHT} at {FPS} fps")
        videos = [str(folder / f"video-{i}.mp4") for i in range(args.videos)]
        total = sum(_make_video(Path(v), args.seconds, i * 17) for i, v in enumerate(videos))
        os.environ["FABRIC_WORKERS"] = json.dumps({"count": args.cores, "resources": {"cpu": 1}})
        os.environ["FABRIC_PROJECT_DIR"] = str(folder / "project")
        _log("warm-up")
        _template(videos[:1], args.fps, folder)
        ffmpeg, ours, images = [], [], 0
        for run in range(args.runs):
            _log(f"run {run + 1}/{args.runs}")
            ffmpeg.append(_ffmpeg(videos, args.cores))
            seconds, images = _template(videos, args.fps, folder)
            ours.append(seconds)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    ffmpeg_rate = total / statistics.median(ffmpeg)
    our_rate = total / statistics.median(ours)
    print(
        json.dumps(
            {
                "benchmark": "frames",
                "videos": args.videos,
                "frames_decoded": total,
                "images_written": images,
                "resolution": f"{WIDTH}x{HEIGHT}",
                "cores": args.cores,
                "runs": args.runs,
                "ffmpeg_frames_per_s": round(ffmpeg_rate, 1),
                "video_frames_frames_per_s": round(our_rate, 1),
                "ratio": round(our_rate / ffmpeg_rate, 3),
                "goal_ratio_ge_0_8": our_rate / ffmpeg_rate >= 0.8,
            }
        )
    )


if __name__ == "__main__":
    main()
