"""`video-audio`: each video's audio track as a file of its own (Ray Data + PyAV), with a
manifest that also names the videos that have no audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from fabric import runtime
from jobs import _media

NAME = "video-audio"
NO_AUDIO = "no audio track"
MANIFEST_COLUMNS = ["video", "status", "path", "codec", "sample_rate", "channels", "duration"]


class Params(BaseModel):
    videos: list[str] = Field(
        min_length=1,
        description="video files, or folders whose video files are all taken (mp4, mkv, mov, "
        "avi, webm, ...)",
    )
    format: Literal["wav", "original"] = Field(
        default="wav",
        description="wav: decoded to 16-bit PCM WAV; original: the track's own encoding, "
        "copied without re-encoding into a Matroska audio file (.mka)",
    )
    sample_rate: int | None = Field(
        default=None,
        ge=8000,
        le=192000,
        description="resample WAV to this rate (Hz), e.g. 16000 for speech models; the "
        "track's own rate if not given",
    )
    mono: bool = Field(default=False, description="mix WAV down to one channel")


def _to_wav(params: Params, container: Any, track: Any, target: Path) -> float:
    """Decode the track into a WAV file; its duration in seconds."""
    import av

    rate = params.sample_rate or track.codec_context.sample_rate
    layout = "mono" if params.mono else track.codec_context.layout.name
    resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
    samples = 0
    with av.open(str(target), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout=layout)
        for frame in container.decode(track):
            for piece in resampler.resample(frame):
                samples += piece.samples
                out.mux(stream.encode(piece))
        for piece in resampler.resample(None):
            samples += piece.samples
            out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    return samples / rate


def _copy(container: Any, track: Any, target: Path) -> float:
    """Copy the track's packets, as encoded, into a Matroska audio file; its duration."""
    import av

    end = 0.0
    with av.open(str(target), "w", format="matroska") as out:
        stream = out.add_stream_from_template(track)
        for packet in container.demux(track):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            packet.stream = stream
            out.mux(packet)
    return end


def _audio(params: Params, root: Path) -> Any:
    def work(index: int, video: str) -> list[dict[str, Any]]:
        import av

        row: dict[str, Any] = {"video_index": index, "video": video, "path": "", "codec": ""}
        row |= {"sample_rate": 0, "channels": 0, "duration": 0.0}
        try:
            with av.open(video) as container:
                if not container.streams.audio:
                    print(f"{NAME}: {video}: {NO_AUDIO}", flush=True)
                    return [{**row, "status": NO_AUDIO}]
                track = container.streams.audio[0]
                suffix = ".wav" if params.format == "wav" else ".mka"
                target = root / f"{_media.slug(index, video)}{suffix}"
                if params.format == "wav":
                    duration = _to_wav(params, container, track, target)
                else:
                    duration = _copy(container, track, target)
                row |= {
                    "path": str(target),
                    "codec": track.codec_context.name,
                    "sample_rate": params.sample_rate or track.codec_context.sample_rate,
                    "channels": 1 if params.mono else track.codec_context.channels,
                    "duration": round(duration, 6),
                }
        except av.FFmpegError as exc:
            print(f"{NAME}: {video} cannot be read: {exc}", flush=True)
            return [{**row, "status": f"cannot be read: {exc}"}]
        print(f"{NAME}: {video}: {row['duration']:.2f} s of audio", flush=True)
        return [{**row, "status": "ok"}]

    return work


def run(params: Params) -> dict[str, Any]:
    videos = _media.videos(NAME, params.videos)
    root = runtime.run_dir() / "audio"
    root.mkdir(parents=True, exist_ok=True)
    rows = _media.each_video(videos, _audio(params, root))
    manifest = _media.write_manifest(rows, MANIFEST_COLUMNS)
    extracted = [row for row in rows if row["status"] == "ok"]
    failed = {row["video"]: row["status"] for row in rows if row["status"] not in ("ok", NO_AUDIO)}
    if len(failed) == len(videos):
        raise SystemExit(f"{NAME}: no video could be read: {failed}")
    runtime.report_metrics(extracted=len(extracted), videos=len(videos))
    return {
        "audio": [row["path"] for row in extracted],
        "manifest_uri": str(manifest),
        "extracted": len(extracted),
        "without_audio": [row["video"] for row in rows if row["status"] == NO_AUDIO],
        "failed": failed,
        "videos": len(videos),
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="media",
    description="Extract each video's audio track in parallel (Ray Data over the videos, PyAV), "
    "as WAV or as the original encoding, with a manifest that names videos without audio.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "audio": "the audio files written, one per video with audio",
        "manifest_uri": "a Parquet table, a row per video: video, status (ok, no audio track, "
        "or why it could not be read), path, codec, sample_rate, channels, duration (seconds)",
        "extracted": "how many audio files were written",
        "without_audio": "the videos that have no audio track",
        "failed": "each video that could not be read, with the reason",
        "videos": "how many videos were asked for",
    },
    workers=2,
    worker_resources={"cpu": 1},
)

if __name__ == "__main__":
    TEMPLATE.main()
