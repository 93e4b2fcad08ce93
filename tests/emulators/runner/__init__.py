"""The actions/runner emulator: its sources (listener.py, the shell scripts) and the builder of
the `actions-runner-linux-x64-<version>.tar.gz` the GitHub emulator serves."""
