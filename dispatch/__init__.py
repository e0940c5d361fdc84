"""The dispatch service: the FastAPI app and its composition, incidents, matching, alerts, CLI."""
