"""Offline evaluation: retrieval and answer metrics computed from the interaction log."""
