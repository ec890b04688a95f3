"""Model management: the models this server runs, the adapters training produced,
and provisioning (docs/models.md)."""
