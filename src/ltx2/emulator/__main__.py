"""``python -m ltx2.emulator``: run the emulator (same as ``ltx2 emulator``)."""

from ._cli import main

if __name__ == "__main__":
    main()
