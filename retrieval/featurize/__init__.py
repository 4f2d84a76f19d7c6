"""featurize."""
