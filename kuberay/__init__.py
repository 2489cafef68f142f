"""Builders for KubeRay resources and a thin Kubernetes client; imports nothing of `fabric`."""
