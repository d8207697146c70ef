"""What the commands share: running a coroutine, settings, and turning an
operator's mistakes into one clear line on stderr with a non-zero exit."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tessera.config import Settings
from tessera.keys.master import MasterKeyError

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        # Name the setting and the rule, never the value: it may be a secret.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid settings: {problems}") from None


def operator_errors(command: Callable[..., T]) -> Callable[..., T]:
    """Turn the failures an operator can cause into one clear line on stderr."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from tessera.core.federation import PolicyError
        from tessera.store.clients import ClientExists, ClientNotFound
        from tessera.store.policies import PolicyExists, PolicyNotFound
        from tessera.store.users import UserExists, UserNotFound

        try:
            return command(*args, **kwargs)
        except MasterKeyError as error:
            raise click.ClickException(str(error)) from None
        except ClientExists as error:
            raise click.ClickException(f"client {error} already exists") from None
        except ClientNotFound as error:
            raise click.ClickException(f"no client {error}") from None
        except PolicyExists as error:
            raise click.ClickException(f"trust policy {error} already exists") from None
        except PolicyNotFound as error:
            raise click.ClickException(f"no trust policy {error}") from None
        except PolicyError as error:
            raise click.ClickException(str(error)) from None
        except UserExists as error:
            raise click.ClickException(f"user {error} already exists") from None
        except UserNotFound as error:
            raise click.ClickException(f"no user {error}") from None
        except (SQLAlchemyError, OSError) as error:
            # OSError: the driver could not connect at all (refused, timed out).
            raise click.ClickException(
                f"the database is unavailable ({type(error).__name__})"
            ) from None

    return wrapper
