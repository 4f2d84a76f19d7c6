"""Ray Serve deployments for ICMA: retrieve -> re-rank -> generate, built from one config."""
__all__: list[str] = []
