"""`video-frames`: frames at a given rate from many videos at once (Ray Data + PyAV), saved as
images with a manifest of which video, frame and time each one is."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from fabric import runtime
from jobs import _media

NAME = "video-frames"
# What each image format is encoded with, from which pixel format (PyAV's built-in FFmpeg).
# Each format's (codec, pixel format, suffix); the codecs' names typed so that PyAV's stubs
# know the context they create is a video one.
ENCODERS: dict[str, tuple[Literal["mjpeg", "png"], str, str]] = {
    "jpeg": ("mjpeg", "yuvj420p", ".jpg"),
    "png": ("png", "rgb24", ".png"),
}
MANIFEST_COLUMNS = ["video", "frame", "timestamp", "source_frame", "path"]
PREVIEW_IMAGES = 8


class Params(BaseModel):
    videos: list[str] = Field(
        min_length=1,
        description="video files, or folders whose video files are all taken (mp4, mkv, mov, "
        "avi, webm, ...)",
    )
    fps: float = Field(
        default=1.0,
        gt=0,
        le=240,
        description="frames kept per second of video, e.g. 1 for one frame a second; a rate "
        "at or above the video's own keeps every frame",
    )
    format: Literal["jpeg", "png"] = Field(default="jpeg", description="the image format")
    quality: int = Field(
        default=3,
        ge=2,
        le=31,
        description="JPEG quality scale: 2 is best and largest, 31 worst and smallest",
    )
    max_frames: int | None = Field(
        default=None, ge=1, description="at most this many frames per video; all if not given"
    )


def _encoder(params: Params, frame: Any) -> Any:
    import av

    codec, pixels, _ = ENCODERS[params.format]
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = pixels
    encoder.time_base = Fraction(1, 1000)
    if params.format == "jpeg":
        encoder.qmin = encoder.qmax = params.quality
    return encoder


def _due(frames: Iterable[Any], step: float, rate: float) -> Iterator[tuple[int, float, Any]]:
    """The frames to keep, one each `step` seconds: (its number among the decoded frames,
    seconds since the first frame, the frame)."""
    start, due = None, 0.0
    for number, frame in enumerate(frames):
        time = frame.time if frame.time is not None else number / rate
        start = time if start is None else start
        at = time - start
        # A microsecond's slack: 0.1 * 3 is not quite 0.3 in floats.
        if at + 1e-6 >= due:
            due += step * (math.floor((at + 1e-6 - due) / step) + 1)
            yield number, at, frame


def _frames(params: Params, root: Path) -> Any:
    """The work done per video: decode it once, keep a frame each 1/fps seconds, encode it."""
    _, pixels, suffix = ENCODERS[params.format]
    step = 1 / params.fps

    def work(index: int, video: str) -> list[dict[str, Any]]:
        import av

        folder = root / _media.slug(index, video)
        folder.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, Any]] = []
        try:
            with av.open(video) as container:
                if not container.streams.video:
                    return [_failure(index, video, "has no video stream")]
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                rate = float(stream.average_rate or stream.guessed_rate or 25)
                encoder = None
                for number, at, frame in _due(container.decode(stream), step, rate):
                    encoder = encoder or _encoder(params, frame)
                    path = folder / f"frame_{len(rows):06d}{suffix}"
                    path.write_bytes(
                        b"".join(map(bytes, encoder.encode(frame.reformat(format=pixels))))
                    )
                    rows.append(
                        {
                            "video_index": index,
                            "video": video,
                            "frame": len(rows),
                            "timestamp": round(at, 6),
                            "source_frame": number,
                            "path": str(path),
                            "error": "",
                        }
                    )
                    if params.max_frames and len(rows) >= params.max_frames:
                        break
        except av.FFmpegError as exc:
            return [_failure(index, video, f"cannot be decoded: {exc}")]
        print(f"{NAME}: {video}: {len(rows)} frames", flush=True)
        return rows

    return work


def _failure(index: int, video: str, reason: str) -> dict[str, Any]:
    print(f"{NAME}: {video} {reason}", flush=True)
    return {
        "video_index": index,
        "video": video,
        "frame": -1,
        "timestamp": 0.0,
        "source_frame": -1,
        "path": "",
        "error": reason,
    }


def run(params: Params) -> dict[str, Any]:
    videos = _media.videos(NAME, params.videos)
    root = runtime.run_dir() / "frames"
    rows = _media.each_video(videos, _frames(params, root))
    frames = [row for row in rows if not row["error"]]
    failed = {row["video"]: row["error"] for row in rows if row["error"]}
    if len(failed) == len(videos):
        raise SystemExit(f"{NAME}: no video could be read: {failed}")
    manifest = _media.write_manifest(frames, MANIFEST_COLUMNS)
    runtime.report_metrics(frames=len(frames), videos=len(videos) - len(failed))
    return {
        "images": [row["path"] for row in frames[:PREVIEW_IMAGES]],
        "manifest_uri": str(manifest),
        "frames": len(frames),
        "videos": len(videos) - len(failed),
        "failed": failed,
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="media",
    description="Extract frames at a given rate from many videos in parallel (Ray Data over "
    "the videos, PyAV to decode), save them as JPEG or PNG images, and write a manifest of "
    "each image's video, frame number and time.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "images": f"the first {PREVIEW_IMAGES} images' paths, for a preview",
        "manifest_uri": "a Parquet table: video, frame, timestamp (seconds), source_frame "
        "(its number among the video's decoded frames), path",
        "frames": "how many images were written",
        "videos": "how many videos were read",
        "failed": "each video that could not be read, with the reason",
    },
    workers=2,
    worker_resources={"cpu": 1},
)

if __name__ == "__main__":
    TEMPLATE.main()
