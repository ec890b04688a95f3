"""Peer mesh: federation between paired monGARS nodes (docs/peers.md)."""
