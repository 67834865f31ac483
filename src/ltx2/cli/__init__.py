"""The ``ltx2`` command line."""


def main() -> None:
    raise SystemExit("ltx2: the CLI is not built yet")
