"""The daemons' main programs (``daemons/`` holds thin launchers)."""
