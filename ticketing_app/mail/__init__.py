"""E-mail: composing messages safely and delivering them (SMTP via yagmail, or recorded)."""
