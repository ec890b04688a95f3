"""OpenAI-compatible API (``/v1``): any OpenAI client can talk to monGARS with an API key."""
