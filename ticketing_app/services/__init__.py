"""Services own the rules: every function takes the session first and, where it acts for someone, the user."""
