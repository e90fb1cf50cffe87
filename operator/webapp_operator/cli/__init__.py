"""Command line: `webapp-operator` and its `kubectl webapp` plugin alias."""
