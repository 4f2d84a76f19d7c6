"""ray-icma: In-Context Molecule Adaptation (Li et al., arXiv 2403.04197) on Ray."""
__version__ = "0.1.0"
__all__ = ["__version__"]
