"""Endpoint calls counted where they pass: the server's door to Serve sees every call, its
version (the router names it in its answer), its status and its time, mirrored copies too.

Exported for Prometheus at `/metrics`, and summarised per endpoint in its API answer. Each
server process counts its own calls; Prometheus sums over servers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Between two tokens of a stream: milliseconds on a GPU, tens of them on a CPU.
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The samples a summary of calls reads.
CALL_SAMPLES = ("fabric_endpoint_requests_total", "fabric_endpoint_request_seconds_sum")
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


class EndpointMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("project", "endpoint", "version")
        self.requests = Counter(
            "fabric_endpoint_requests",
            "Calls of an endpoint, by the version that answered and the HTTP status.",
            [*labels, "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fabric_endpoint_request_seconds",
            "Time from the call's arrival at the server to its answer.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.mirrored = Counter(
            "fabric_endpoint_mirrored_requests",
            "Copies of calls sent to an endpoint's shadow version; answers are discarded.",
            [*labels, "outcome"],
            registry=self.registry,
        )

        # llm endpoints: what the door reads of each answer's tokens and their timing.
        self.tokens = Counter(
            "fabric_endpoint_tokens",
            "Tokens of llm endpoint calls, by kind (prompt, completion); their rate is "
            "tokens per second.",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.first_token = Histogram(
            "fabric_endpoint_time_to_first_token_seconds",
            "From a streamed call's arrival at the server to its first token.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.between_tokens = Histogram(
            "fabric_endpoint_inter_token_latency_seconds",
            "Between two successive tokens (stream chunks) of a streamed call.",
            labels,
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.output_rate = Histogram(
            "fabric_endpoint_output_tokens_per_second",
            "Completion tokens per second of each call, from its arrival to its end.",
            labels,
            buckets=RATE_BUCKETS,
            registry=self.registry,
        )

    def observe_tokens(
        self, project: str, endpoint: str, version: str, prompt: int, completion: int
    ) -> None:
        self.tokens.labels(project, endpoint, version, "prompt").inc(prompt)
        self.tokens.labels(project, endpoint, version, "completion").inc(completion)

    def observe_stream(
        self,
        project: str,
        endpoint: str,
        version: str,
        first_token: float | None,
        gaps: list[float],
    ) -> None:
        if first_token is not None:
            self.first_token.labels(project, endpoint, version).observe(first_token)
        between = self.between_tokens.labels(project, endpoint, version)
        for gap in gaps:
            between.observe(gap)

    def observe_rate(
        self, project: str, endpoint: str, version: str, completion: int, seconds: float
    ) -> None:
        if completion and seconds > 0:
            self.output_rate.labels(project, endpoint, version).observe(completion / seconds)

    def observe(self, project: str, endpoint: str, version: str, code: int, seconds: float) -> None:
        self.requests.labels(project, endpoint, version, str(code)).inc()
        self.latency.labels(project, endpoint, version).observe(seconds)

    def mirror(self, project: str, endpoint: str, version: str, ok: bool) -> None:
        self.mirrored.labels(project, endpoint, version, "ok" if ok else "error").inc()

    def export(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self, project: str, endpoint: str) -> dict[str, Any]:
        """Calls, errors (status 500 and above) and mean latency per version; mirrored copies."""
        calls: dict[str, dict[str, float]] = {}
        mirrored: dict[str, dict[str, float]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                labels = sample.labels
                if labels.get("project") != project or labels.get("endpoint") != endpoint:
                    continue
                if sample.name == "fabric_endpoint_mirrored_requests_total":
                    counts = mirrored.setdefault(labels["version"], {"ok": 0, "error": 0})
                    counts[labels["outcome"]] += sample.value
                    continue
                if sample.name not in CALL_SAMPLES:
                    continue
                entry = calls.setdefault(
                    labels["version"], {"requests": 0, "errors": 0, "client_errors": 0, "sum": 0}
                )
                if sample.name == "fabric_endpoint_requests_total":
                    code = int(labels["code"])
                    entry["requests"] += sample.value
                    entry["errors"] += sample.value if code >= 500 else 0
                    entry["client_errors"] += sample.value if 400 <= code < 500 else 0
                elif sample.name == "fabric_endpoint_request_seconds_sum":
                    entry["sum"] += sample.value
        versions = {
            version: {
                "requests": entry["requests"],
                "errors": entry["errors"],
                "client_errors": entry["client_errors"],
                "mean_ms": round(1000 * entry["sum"] / entry["requests"], 3)
                if entry["requests"]
                else 0.0,
            }
            for version, entry in calls.items()
        }
        return {
            "requests": sum(v["requests"] for v in versions.values()),
            "errors": sum(v["errors"] for v in versions.values()),
            "versions": versions,
            "mirrored": mirrored,
        }
