"""The screens of the service: dispatcher console, responder app, planner page."""
