"""Hippocampus: long-term memory with hybrid recall (dense + full-text + recency)."""
