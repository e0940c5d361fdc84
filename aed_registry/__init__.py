"""aed_registry"""
