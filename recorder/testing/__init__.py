"""Test support for the recorder: a Kubernetes API emulator (needs the ``test`` extra: kmock)."""
