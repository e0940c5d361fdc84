"""Test support: running the real app in a subprocess against the real stores."""
