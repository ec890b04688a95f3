"""Conversations: threads, turns and the turn pipeline (Cortex)."""
