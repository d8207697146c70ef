"""The ``tessera`` command."""

import sys


def main() -> None:
    try:
        from tessera.cli.main import cli
    except ModuleNotFoundError as error:
        sys.exit(
            f"tessera: the server dependencies are missing ({error.name}); "
            "install them with: pip install 'tessera[server]'"
        )
    cli()
