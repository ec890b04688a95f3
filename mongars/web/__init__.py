"""Operator console: server-rendered pages (Jinja2) with small vendored JavaScript."""
