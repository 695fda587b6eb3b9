"""Reflex states: thin adapters from browser events to service calls."""
