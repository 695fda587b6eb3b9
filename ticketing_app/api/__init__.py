"""The REST API under /api, mounted into the Reflex app."""
