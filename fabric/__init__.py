"""Fabric: a Ray-native, one-stop machine-learning platform."""

__version__ = "0.1.0"
