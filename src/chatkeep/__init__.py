"""chatkeep: chat persistence as a service."""

__version__ = "0.1.0"
