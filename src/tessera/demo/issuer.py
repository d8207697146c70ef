"""A stand-in for the external OpenID Connect issuers whose tokens workload
identity federation accepts: GitHub Actions, GitLab CI and Kubernetes.

It is a demo and testing tool. Its keys live in memory, and its test-control
endpoints have no authentication, which is why it listens on loopback unless
told otherwise.

    GET    /.well-known/openid-configuration  discovery, at GitHub's path
    GET    /.well-known/jwks                  the published public keys
    GET    /token?audience=AUD                GitHub's ID-token request protocol

Test-control API, for tests only:

    POST   /mint      any profile's token, with claim overrides and bad signatures
    POST   /rotate    new signing keys; the old stay published unless drop_old
    POST   /faults    make the JWKS endpoint fail: down, slow or garbage
    GET    /requests  how many JWKS and discovery requests were served
    DELETE /requests  reset those counts
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tessera.keys.signing import PrivateKey, generate_private_key, public_jwk

__all__ = [
    "ALGORITHMS",
    "FAULTS",
    "PROFILES",
    "ControlError",
    "DemoIssuer",
    "GitHubJob",
    "Kid",
    "build_demo_issuer",
]

PROFILES = ("github", "gitlab", "kubernetes")
# Each published key is for one of these; HS256 and "none" are forgeries.
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
ALGORITHMS = (*SIGNING_ALGORITHMS, "HS256", "none")
FAULTS = ("ok", "down", "slow", "garbage")
TOKEN_TTL = 300
JWKS_MAX_AGE = 60
SLOW_JWKS_SECONDS = 10.0


class ControlError(Exception):
    """A control request the stand-in cannot honour; ``status`` is its HTTP
    status."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


# -- Keys --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuerKey:
    alg: str
    private_key: PrivateKey
    jwk: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.jwk["kid"])

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )


def generate_key(alg: str) -> IssuerKey:
    if alg == "RS256":
        # 2048 bits: the size of GitHub's and GitLab's published keys, and
        # quick enough to make again on every rotation.
        key: PrivateKey = rsa.generate_private_key(65537, 2048)
    else:
        key = generate_private_key(alg)
    return IssuerKey(alg, key, public_jwk(key, alg))


def _generation() -> dict[str, IssuerKey]:
    return {alg: generate_key(alg) for alg in SIGNING_ALGORITHMS}


class IssuerKeys:
    """One current key per algorithm, the keys published in the JWKS, and
    the generation most recently dropped from it (for "key": "removed")."""

    def __init__(self) -> None:
        self.current = _generation()
        self.published = list(self.current.values())
        self.removed: dict[str, IssuerKey] | None = None

    def rotate(self, *, drop_old: bool) -> None:
        new = _generation()
        if drop_old:
            self.removed = self.current
            self.published = list(new.values())
        else:
            self.published = [*new.values(), *self.published]
        self.current = new

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk for key in self.published]}

    def for_signing(self, alg: str, which: str) -> IssuerKey:
        generation = self.current if which == "current" else self.removed
        if generation is None:
            raise ControlError("no key has been removed: rotate with drop_old", 409)
        # Forged tokens name the RSA key a verifier holds, so that they reach
        # its algorithm check rather than fail on an unknown kid.
        return generation[alg if alg in SIGNING_ALGORITHMS else "RS256"]


# -- Compact JWS (RFC 7515), signed or forged ---------------------------------


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def encode_jwt(header: dict[str, Any], claims: dict[str, Any], key: IssuerKey) -> str:
    signing_input = _b64(orjson.dumps(header)) + b"." + _b64(orjson.dumps(claims))
    signature = _signature(signing_input, header["alg"], key)
    return (signing_input + b"." + _b64(signature)).decode()


def _signature(data: bytes, alg: str, key: IssuerKey) -> bytes:
    if alg == "none":
        return b""
    if alg == "HS256":
        # The key-confusion attack: a verifier that lets the token pick the
        # algorithm would check this HMAC with the RSA public key's PEM.
        return hmac.new(key.public_pem(), data, hashlib.sha256).digest()
    private = key.private_key
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        # RFC 7518 §3.4: the JWS form is R || S, 32 bytes each.
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return private.sign(data)


# -- Claims of each profile ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class GitHubJob:
    """The GitHub Actions job whose tokens this process issues."""

    repository: str = "octo-org/octo-repo"
    ref: str = "refs/heads/main"
    environment: str | None = None
    event_name: str = "push"
    workflow_ref: str | None = None
    job_workflow_ref: str | None = None
    actor: str = "octocat"
    workflow: str = "CI"
    sha: str = "4f2b1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"
    repository_id: str = "700000001"
    repository_owner_id: str = "9000001"
    run_id: str = "8000000001"
    run_attempt: str = "1"

    @property
    def owner(self) -> str:
        return self.repository.partition("/")[0]

    @property
    def default_audience(self) -> str:
        # What GitHub uses when the workflow asks for no audience.
        return f"https://github.com/{self.owner}"

    def subject(self) -> str:
        # GitHub's precedence: environment, then pull_request, then the ref.
        if self.environment:
            return f"repo:{self.repository}:environment:{self.environment}"
        if self.event_name == "pull_request":
            return f"repo:{self.repository}:pull_request"
        return f"repo:{self.repository}:ref:{self.ref}"

    def claims(self) -> dict[str, Any]:
        workflow_ref = (
            self.workflow_ref
            or f"{self.repository}/.github/workflows/ci.yml@{self.ref}"
        )
        claims: dict[str, Any] = {
            "sub": self.subject(),
            "repository": self.repository,
            "repository_owner": self.owner,
            "repository_id": self.repository_id,
            "repository_owner_id": self.repository_owner_id,
            "ref": self.ref,
            "ref_type": _ref_type(self.ref),
            "sha": self.sha,
            "job_workflow_ref": self.job_workflow_ref or workflow_ref,
            "workflow_ref": workflow_ref,
            "workflow": self.workflow,
            "event_name": self.event_name,
            "actor": self.actor,
            "run_id": self.run_id,
            "run_attempt": self.run_attempt,
            "runner_environment": "github-hosted",
        }
        if self.environment:
            claims["environment"] = self.environment
        return claims


def _ref_type(ref: str) -> str:
    if ref.startswith("refs/heads/"):
        return "branch"
    if ref.startswith("refs/tags/"):
        return "tag"
    return ""


def gitlab_claims() -> dict[str, Any]:
    # GitLab sends its numeric identifiers and booleans as strings.
    return {
        "sub": "project_path:demo-group/demo-project:ref_type:branch:ref:main",
        "project_path": "demo-group/demo-project",
        "project_id": "4200001",
        "namespace_path": "demo-group",
        "namespace_id": "4100001",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
        "pipeline_id": "1300000001",
        "pipeline_source": "push",
        "job_id": "9100000001",
        "user_login": "demo-user",
    }


def kubernetes_claims() -> dict[str, Any]:
    return {
        "sub": "system:serviceaccount:demo:workload",
        "kubernetes.io": {
            "namespace": "demo",
            "serviceaccount": {
                "name": "workload",
                "uid": "5b1c4c0e-3f7a-4d55-9a63-0d8e2f1b7c41",
            },
            "pod": {
                "name": "workload-6d9f8c7b5-x2k4q",
                "uid": "a3e0f2d1-7c4b-4e8a-b1f9-2d6c8e0a4b73",
            },
        },
    }


# -- The issuer ----------------------------------------------------------------


class Kid(enum.Enum):
    """The default ``kid`` header: the signing key's own."""

    OF_SIGNING_KEY = "of signing key"


class DemoIssuer:
    """The stand-in's state: keys, the GitHub job, faults and counters."""

    def __init__(
        self,
        issuer: str,
        request_token: str,
        job: GitHubJob | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.request_token = request_token
        self.job = job or GitHubJob()
        self.keys = IssuerKeys()
        self.jwks_fault = "ok"
        self.served = {"jwks": 0, "discovery": 0}
        self._clock = clock

    def discovery(self) -> dict[str, Any]:
        emitted = {
            name
            for profile in PROFILES
            for name in self.claims(profile, "-", TOKEN_TTL, now=0)
        }
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "/.well-known/jwks",
            "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "claims_supported": sorted(emitted | {"environment"}),
        }

    def accepts(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries this process's request
        token, as GitHub's ACTIONS_ID_TOKEN_REQUEST_TOKEN."""
        scheme, _, credentials = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.request_token.encode()
        )

    def claims(
        self, profile: str, audience: str | list[str], ttl: int, *, now: int
    ) -> dict[str, Any]:
        """The profile's default claims, issued at ``now``."""
        if profile == "github":
            subject_claims = self.job.claims()
        elif profile == "gitlab":
            subject_claims = gitlab_claims()
        else:
            subject_claims = kubernetes_claims()
        claims = {"iss": self.issuer, "aud": audience, **subject_claims}
        if profile == "kubernetes":
            # Projected service-account tokens carry a list and no jti.
            claims["aud"] = [audience] if isinstance(audience, str) else audience
        else:
            claims["jti"] = str(uuid.uuid4())
        claims.update(iat=now, nbf=now, exp=now + ttl)
        return claims

    def mint(
        self,
        profile: str,
        audience: str | list[str],
        *,
        overrides: dict[str, Any] | None = None,
        ttl: int = TOKEN_TTL,
        alg: str = "RS256",
        kid: str | None | Kid = Kid.OF_SIGNING_KEY,
        key: str = "current",
    ) -> str:
        """A token of ``profile``. ``overrides`` replace top-level claims, a
        None value deleting one; ``kid`` replaces the signing key's own, None
        leaving it out; ``key`` "removed" signs with a dropped key."""
        signing_key = self.keys.for_signing(alg, key)
        claims = self.claims(profile, audience, ttl, now=int(self._clock()))
        for name, value in (overrides or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value

        header: dict[str, Any] = {"alg": alg}
        if kid is Kid.OF_SIGNING_KEY:
            header["kid"] = signing_key.kid
        elif kid is not None:
            header["kid"] = kid
        if profile != "kubernetes":
            header["typ"] = "JWT"
        return encode_jwt(header, claims, signing_key)


# -- HTTP ----------------------------------------------------------------------


def _state(request: Request) -> DemoIssuer:
    issuer: DemoIssuer = request.app.state.demo_issuer
    return issuer


async def _json_object(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise ControlError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError("the body is not a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError(f"unknown members: {', '.join(unknown)}")
    return body


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body[name]
    if value not in choices:
        raise ControlError(f"{name} must be one of: {', '.join(choices)}")
    return str(value)


async def discovery(request: Request) -> JSONResponse:
    state = _state(request)
    state.served["discovery"] += 1
    return JSONResponse(state.discovery())


async def jwks(request: Request) -> Response:
    state = _state(request)
    state.served["jwks"] += 1
    if state.jwks_fault == "down":
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
    if state.jwks_fault == "garbage":
        return Response(b"<html>502 bad gateway", media_type="application/json")
    if state.jwks_fault == "slow":
        await asyncio.sleep(SLOW_JWKS_SECONDS)
    cache = {"Cache-Control": f"max-age={JWKS_MAX_AGE}"}
    return JSONResponse(state.keys.jwks(), headers=cache)


async def github_token(request: Request) -> JSONResponse:
    state = _state(request)
    if not state.accepts(request.headers.get("authorization")):
        return JSONResponse(
            {"error": "invalid_token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    audience = request.query_params.get("audience") or state.job.default_audience
    return JSONResponse({"value": state.mint("github", audience)})


async def mint(request: Request) -> JSONResponse:
    allowed = {"profile", "audience", "claims", "ttl", "alg", "kid", "key"}
    body = await _json_object(request, allowed)
    body = {"claims": None, "ttl": TOKEN_TTL, "alg": "RS256", "key": "current"} | body
    if "profile" not in body or "audience" not in body:
        raise ControlError("profile and audience are required")

    audience = body["audience"]
    if not isinstance(audience, str) and not (
        isinstance(audience, list) and all(isinstance(a, str) for a in audience)
    ):
        raise ControlError("audience must be a string or a list of strings")
    if body["claims"] is not None and not isinstance(body["claims"], dict):
        raise ControlError("claims must be an object")
    if not isinstance(body["ttl"], int) or isinstance(body["ttl"], bool):
        raise ControlError("ttl must be an integer number of seconds")
    kid = body.get("kid", Kid.OF_SIGNING_KEY)
    if kid is not None and not isinstance(kid, str | Kid):
        raise ControlError("kid must be a string or null")

    token = _state(request).mint(
        _choice(body, "profile", PROFILES),
        audience,
        overrides=body["claims"],
        ttl=body["ttl"],
        alg=_choice(body, "alg", ALGORITHMS),
        kid=kid,
        key=_choice(body, "key", ("current", "removed")),
    )
    return JSONResponse({"token": token})


async def rotate(request: Request) -> JSONResponse:
    body = await _json_object(request, {"drop_old"})
    drop_old = body.get("drop_old", False)
    if not isinstance(drop_old, bool):
        raise ControlError("drop_old must be true or false")
    state = _state(request)
    state.keys.rotate(drop_old=drop_old)
    return JSONResponse({"kids": [key.kid for key in state.keys.published]})


async def faults(request: Request) -> JSONResponse:
    body = await _json_object(request, {"jwks"})
    state = _state(request)
    if "jwks" in body:
        state.jwks_fault = _choice(body, "jwks", FAULTS)
    return JSONResponse({"jwks": state.jwks_fault})


async def requests_served(request: Request) -> JSONResponse:
    state = _state(request)
    if request.method == "DELETE":
        state.served = dict.fromkeys(state.served, 0)
    return JSONResponse(state.served)


async def _control_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ControlError)
    body = {"error": "invalid_request", "error_description": error.description}
    return JSONResponse(body, status_code=error.status)


def build_demo_issuer(issuer: DemoIssuer) -> Starlette:
    routes = [
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/.well-known/jwks", jwks, methods=["GET"]),
        Route("/token", github_token, methods=["GET"]),
        Route("/mint", mint, methods=["POST"]),
        Route("/rotate", rotate, methods=["POST"]),
        Route("/faults", faults, methods=["POST"]),
        Route("/requests", requests_served, methods=["GET", "DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ControlError: _control_error})
    app.state.demo_issuer = issuer
    return app
