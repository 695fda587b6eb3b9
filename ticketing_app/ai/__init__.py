"""AI triage: providers that read a ticket and return a validated TriageResult."""
