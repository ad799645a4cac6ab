"""Test support: the Kubernetes API emulator (kmock-based), the recorder harness, operator scenarios."""
