"""verl-video: video temporal grounding on top of veRL."""

__version__ = "0.1.0"
