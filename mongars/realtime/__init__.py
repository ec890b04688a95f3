"""Real-time delivery: the event bus, resumable generation logs, WebSocket chat."""
