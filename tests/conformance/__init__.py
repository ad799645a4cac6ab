"""Client conformance: mainstream Kubernetes clients recorded through ``replay-tui record``."""
