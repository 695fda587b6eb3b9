"""Durable background jobs: rows in PostgreSQL, claimed by workers, driven by APScheduler.

queue.py holds every statement on the jobs table; handlers.py the ticket pipeline's steps, which call services.
"""
