"""pytest plugin for testing code that uses ltx2 (filled in by the emulator work)."""
