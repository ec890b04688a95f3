"""Threads API: list, read, rename, delete and search a user's conversations."""
