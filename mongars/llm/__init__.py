"""LLM providers behind one streaming interface; one module per provider."""
