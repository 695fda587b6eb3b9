"""Services own the rules: every function takes the session first and, where it acts for someone, the user.

They run inside the caller's transaction and never open their own; work that does (the job handlers) lives in
ticketing_app.jobs, which may import services but not the other way round.
"""
