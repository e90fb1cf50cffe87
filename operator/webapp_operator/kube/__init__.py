"""The API gateway: the only layer that talks to the Kubernetes API server."""
