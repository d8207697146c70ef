"""Demonstrations of Tessera: a small protected API, and a walkthrough of the
client-credentials flow against it."""
