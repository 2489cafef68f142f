"""Endpoint calls counted where they pass: the server's door to Serve sees every call, its
version (the router names it in its answer), its status and its time, mirrored copies too.

Exported for Prometheus at `/metrics`, and summarised per endpoint in its API answer. Each
server process counts its own calls; Prometheus sums over servers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
