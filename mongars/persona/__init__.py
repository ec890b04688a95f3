"""Personality and adaptive responses: per-user profile, style metrics, steering."""
