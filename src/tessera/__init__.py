"""Tessera: a self-hosted OAuth 2.0 token service and bearer-token verification.

Importing this package has no side effects and pulls in no server dependency,
so that ``tessera.verify`` stays usable on its own.
"""

__version__ = "0.1.0"
