"""Prometheus exporter for Azure standby pools."""

__version__ = "0.1.0"
