"""Workload identity federation: JWTs from external issuers, verified.

A CI system or a Kubernetes cluster signs a short-lived JWT for a workload.
``ExternalIssuers.verify`` checks such a token against its issuer's own keys
and returns the claims; trust policies then decide what the workload may do.
"""

from .external_token import ExternalIssuers, peek_issuer

__all__ = ["ExternalIssuers", "peek_issuer"]
