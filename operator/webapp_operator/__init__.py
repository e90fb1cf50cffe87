"""webapp-operator: Juju's 12-factor web app model and secret revisions on plain Kubernetes."""

__version__ = "0.1.0"

GROUP = "twelvefactor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WebApp"
PLURAL = "webapps"
