"""The media templates on real media: videos PyAV writes here, and a real local HTTP server."""

from __future__ import annotations

import hashlib
import json
import threading
import wave
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np
import pandas as pd
import pytest

from tests.factories import create_project
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import finish, local, submit

WIDTH, HEIGHT, FPS, SECONDS = 64, 48, 10, 2
TONE_HZ, AUDIO_RATE = 440, 8000
SMALL = {"workers": 2, "worker_resources": {"cpu": 0.25}, "resources": {"cpu": 0.25}}


def make_video(
    path: Path,
    *,
    seconds: int = SECONDS,
    fps: int = FPS,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    audio: bool = True,
) -> Path:
    """An H.264 video whose frames are black in its first second and white in its last (grey
    between), with a 440 Hz AAC tone when `audio`."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        for number in range(seconds * fps):
            level = 255 * (number // fps) // max(seconds - 1, 1)
            image = np.full((height, width, 3), level, dtype=np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode())
        if sound is not None:
            time = np.arange(seconds * AUDIO_RATE) / AUDIO_RATE
            tone = (0.5 * np.sin(2 * np.pi * TONE_HZ * time)).astype(np.float32)[None, :]
            for start in range(0, tone.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(tone[:, start : start + 1024]),
                    format="fltp",
                    layout="mono",
                )
                frame.sample_rate, frame.pts = AUDIO_RATE, start
                frame.time_base = Fraction(1, AUDIO_RATE)
                out.mux(sound.encode(frame))
            out.mux(sound.encode())
    return path


def _brightness(image: Path) -> float:
    """The mean grey level of an image file, decoded by FFmpeg (through PyAV)."""
    with av.open(str(image)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (WIDTH, HEIGHT)
        return float(frame.to_ndarray(format="gray").mean())


@pytest.fixture(scope="module")
def media_jobs(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """video-frames and video-audio (WAV, and the original AAC) over two videos, one of them
    silent, and a file that is no video, submitted together: name to job, logs, outputs."""
    project = create_project(server)
    token = project.member.token
    folder = tmp_path_factory.mktemp("media")
    make_video(folder / "talk.mp4")
    make_video(folder / "silent.mp4", audio=False)
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    videos = [str(folder / name) for name in ("talk.mp4", "silent.mp4", "broken.mp4")]
    paths = {
        "frames": submit(
            server, token, project.name, "video-frames", {"videos": videos, "fps": 2}, **SMALL
        ),
        "wav": submit(
            server,
            token,
            project.name,
            "video-audio",
            {"videos": [str(folder)], "sample_rate": 16000},
            **{**SMALL, "workers": 1},
        ),
        "original": submit(
            server,
            token,
            project.name,
            "video-audio",
            {"videos": videos[:1], "format": "original"},
            **{**SMALL, "workers": 1},
        ),
    }
    return {name: finish(server, token, project.name, path) for name, path in paths.items()}


@RAY_ONCE
def test_frames_at_the_asked_rate_with_a_manifest(media_jobs: dict[str, Any]) -> None:
    outputs, run_dir = media_jobs["frames"]
    # 2 s at 2 frames a second, from each of the two real videos; the third fails alone.
    assert (outputs["frames"], outputs["videos"]) == (8, 2)
    [(broken, reason)] = outputs["failed"].items()
    assert broken.endswith("broken.mp4") and "cannot be decoded" in reason
    manifest = pd.read_parquet(outputs["manifest_uri"])
    assert Path(outputs["manifest_uri"]).parent == run_dir
    assert list(manifest.columns) == ["video", "frame", "timestamp", "source_frame", "path"]
    for video, rows in manifest.groupby("video"):
        assert Path(str(video)).name in {"talk.mp4", "silent.mp4"}
        assert list(rows["timestamp"]) == [0.0, 0.5, 1.0, 1.5]
        assert list(rows["source_frame"]) == [0, 5, 10, 15]
        assert list(rows["frame"]) == [0, 1, 2, 3]
        levels = [_brightness(Path(path)) for path in rows["path"]]
        # Black in the first second, white in the second: the frames are the right ones.
        assert max(levels[:2]) < 30 and min(levels[2:]) > 225, levels
    assert outputs["images"] == list(manifest["path"])
    assert all(Path(path).suffix == ".jpg" for path in outputs["images"])


@RAY_ONCE
def test_audio_to_wav_names_the_video_without_audio(media_jobs: dict[str, Any]) -> None:
    outputs, _ = media_jobs["wav"]
    assert outputs["extracted"] == 1
    assert [Path(video).name for video in outputs["without_audio"]] == ["silent.mp4"]
    assert [Path(video).name for video in outputs["failed"]] == ["broken.mp4"]
    [path] = outputs["audio"]
    with wave.open(path) as sound:
        assert (sound.getframerate(), sound.getnchannels(), sound.getsampwidth()) == (16000, 1, 2)
        samples = np.frombuffer(sound.readframes(sound.getnframes()), dtype=np.int16)
    assert abs(len(samples) / 16000 - SECONDS) < 0.1
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - TONE_HZ) < 5
    manifest = pd.read_parquet(outputs["manifest_uri"]).set_index("video")
    statuses = {Path(str(video)).name: status for video, status in manifest["status"].items()}
    assert statuses["talk.mp4"] == "ok" and statuses["silent.mp4"] == "no audio track"
    assert statuses["broken.mp4"].startswith("cannot be read")


@RAY_ONCE
def test_audio_in_its_original_encoding_is_copied(media_jobs: dict[str, Any]) -> None:
    outputs, _ = media_jobs["original"]
    [path] = outputs["audio"]
    assert path.endswith(".mka")
    with av.open(path) as container:
        [track] = container.streams.audio
        assert (track.codec_context.name, track.codec_context.sample_rate) == ("aac", AUDIO_RATE)
        decoded = sum(frame.samples for frame in container.decode(track))
    assert abs(decoded / AUDIO_RATE - SECONDS) < 0.2


class _Files(BaseHTTPRequestHandler):
    """Serves `/ok.bin`, a `/flaky.bin` that fails twice before it answers, and 404s."""

    body = bytes(range(256)) * 400
    tries: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        self.tries[self.path] = self.tries.get(self.path, 0) + 1
        if self.path == "/flaky.bin" and self.tries[self.path] <= 2:
            self.send_response(503)
            self.end_headers()
            return
        if self.path not in ("/ok.bin", "/flaky.bin", "/big.bin"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def files() -> Iterator[str]:
    _Files.tries = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _download(base: str, folder: Path, *extra: str) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    urls = [f"{base}/ok.bin", f"{base}/flaky.bin", f"{base}/missing.bin"]
    result = local(
        "jobs.media_download",
        *("--urls", json.dumps(urls), "--backoff", "0.05", *extra),
        cwd=folder,
    )
    [run_dir] = (folder / "fabric-local" / "runs").glob("media-download-*")
    manifest = pd.read_parquet(run_dir / "manifest.parquet").set_index("url")
    return result, manifest, json.loads((run_dir / "outputs.json").read_text())


def test_downloads_retry_what_may_pass_and_record_what_failed(files: str, tmp_path: Path) -> None:
    result, manifest, outputs = _download(files, tmp_path, "--fail-on-error", "false")
    assert result.returncode == 0, result.stderr
    expected = hashlib.sha256(_Files.body).hexdigest()
    ok, flaky, missing = (
        manifest.loc[f"{files}/{name}.bin"] for name in ("ok", "flaky", "missing")
    )
    assert (ok["status"], ok["attempts"], ok["sha256"]) == ("ok", 1, expected)
    # 503 twice, then the file: three tries, the same bytes.
    assert (flaky["status"], flaky["attempts"]) == ("ok", 3)
    assert Path(flaky["path"]).read_bytes() == _Files.body
    # A 404 is not retried.
    assert (missing["status"], missing["attempts"], missing["error"]) == ("failed", 1, "HTTP 404")
    assert _Files.tries["/missing.bin"] == 1
    assert outputs["fetched"] == 2 and outputs["bytes"] == 2 * len(_Files.body)
    assert list(outputs["failed"]) == [f"{files}/missing.bin"]
    assert "flaky.bin: HTTP 503; try 2" in result.stdout


def test_a_failed_url_fails_the_job_keeping_the_manifest(files: str, tmp_path: Path) -> None:
    result, manifest, outputs = _download(files, tmp_path, "--retries", "1")
    assert result.returncode == 1
    assert f"media-download: 2 of 3 URLs failed: {files}/flaky.bin: HTTP 503" in result.stderr
    assert f"{files}/missing.bin: HTTP 404" in result.stderr
    # One retry is not enough for the file that fails twice.
    assert manifest.loc[f"{files}/flaky.bin", "attempts"] == 2
    assert outputs["fetched"] == 1


def test_a_file_over_the_size_limit_fails_without_retries(files: str, tmp_path: Path) -> None:
    result = local(
        "jobs.media_download",
        *("--urls", json.dumps([f"{files}/big.bin"]), "--max-bytes", "1000"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "big.bin: 102400 bytes is over max_bytes (1000)" in result.stderr
    assert _Files.tries["/big.bin"] == 1
    assert not list(tmp_path.rglob("*.bin*"))


def test_a_missing_video_fails_naming_it(tmp_path: Path) -> None:
    result = local("jobs.video_frames", "--videos", '["nowhere.mp4"]', cwd=tmp_path)
    assert result.returncode == 1
    assert "video-frames: no such video: nowhere.mp4" in result.stderr
