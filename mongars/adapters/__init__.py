"""Adapters: the registry of trained LoRA versions, the approval gate, the active
pointer (rollback, canary) and what each serving process loads (docs/adapters.md)."""
