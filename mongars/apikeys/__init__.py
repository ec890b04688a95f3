"""API keys: long-lived credentials for programmatic clients (OpenAI-compatible API)."""
