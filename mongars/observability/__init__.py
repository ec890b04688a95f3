"""OpenTelemetry metrics exposed for Prometheus at /metrics."""
