"""The HTTP core the client's domain parts share: one connection with the bearer token, every
refusal raised as `ApiError`, and each answer parsed into the API's own response model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    """The server refused a request (4xx/5xx), or could not be reached (status_code 0)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def part(value: str | int) -> str:
    """A path segment, escaped so that a name can never reach another route."""
    return quote(str(value), safe="")


def query(**params: str | int | float | datetime | None) -> dict[str, str | int | float]:
    """Query parameters without the unset ones; datetimes as ISO 8601."""
    result: dict[str, str | int | float] = {}
    for key, value in params.items():
        if value is None:
            continue
        result[key] = value.isoformat() if isinstance(value, datetime) else value
    return result


class _Refusal(BaseModel):
    """How the server words a refusal; anything else in the body is shown as it is."""

    detail: str


def _detail(response: httpx.Response) -> str:
    try:
        return _Refusal.model_validate_json(response.content).detail
    except ValidationError:
        text = response.text.strip()
        return text[:500] if text else f"HTTP {response.status_code} {response.reason_phrase}"


class Transport:
    """A Fabric server at `url`, called with a bearer `token` (a login session or API token)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        # A followed log is silent while the job is: only connecting may time out.
        self._stream_timeout = httpx.Timeout(timeout, read=None)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(0, f"cannot reach Fabric at {self.url}: {exc}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response

    def _one(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        """The route's answer as one `model`."""
        return model.model_validate(self._send(method, path, **kwargs).json())

    def _many(self, model: type[Model], method: str, path: str, **kwargs: Any) -> list[Model]:
        """The route's answer, a JSON list, as a list of `model`."""
        return [model.model_validate(item) for item in self._send(method, path, **kwargs).json()]

    def _text(self, method: str, path: str, **kwargs: Any) -> str:
        return self._send(method, path, **kwargs).text

    def _follow(self, path: str, params: Mapping[str, str]) -> Iterator[str]:
        """A streamed answer's text as it arrives, however long the server takes."""
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=self._stream_timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _detail(response))
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
