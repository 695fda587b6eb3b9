"""Durable background jobs: rows in PostgreSQL, claimed by workers, driven by APScheduler."""
