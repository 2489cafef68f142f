"""Compute backends: where the platform's work runs (a local Ray head, or KubeRay)."""
