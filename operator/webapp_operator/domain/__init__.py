"""The pure domain: models, env rules, secrets semantics and rendering.

Nothing here performs I/O, reads a clock or draws randomness; callers pass those in.
The import-linter contract `domain-is-pure` keeps Kopf and every Kubernetes client out.
"""
