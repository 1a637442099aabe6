"""What verl-video needs to know about model architectures: where the vision tower is, what to freeze."""
