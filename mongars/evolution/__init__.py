"""The evolution engine: diagnostics from real figures, a rule table of safe actions,
and every decision recorded with its inputs (docs/evolution.md)."""
