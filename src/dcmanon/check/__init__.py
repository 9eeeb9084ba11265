"""Proving the outputs: check against the originals, scan without them, explain a plan, and the
findings and reports they share."""
