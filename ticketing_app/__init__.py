"""AI helpdesk: tickets triaged by AI, routed to the right moderator, worked in one web app."""
