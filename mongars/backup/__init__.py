"""Backups that restore: `mongars backup PATH` and `mongars restore PATH` (docs/backup.md)."""
