"""Shared plumbing: settings, database engine, Redis client, auth, logging, metrics.

Nothing in here imports a domain package (`geo`, `responders`, `aed_registry`, `dispatch`,
`simulator`); the domains import from here.
"""
