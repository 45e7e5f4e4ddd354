"""syft-space-reconciler: GitOps for Syft Space."""

__version__ = "0.1.0"
