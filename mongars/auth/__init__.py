"""Accounts: users, passwords, tokens and the registration policy."""
