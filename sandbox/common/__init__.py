"""Pieces every role shares: the database helper, the envelope rules and the HTTP edge."""
