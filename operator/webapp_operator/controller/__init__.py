"""The Kopf controller: thin handlers that gather, call the domain, then write."""
