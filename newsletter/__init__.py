"""paperboy's pipeline: everything that is not Discord."""
