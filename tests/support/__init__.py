"""Test support: the Kubernetes API emulator (the product's API server, seeded empty), the recorder
harness, operator scenarios."""
