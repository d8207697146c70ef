"""Protocol logic: no web framework, no database."""
