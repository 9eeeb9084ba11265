"""What identifies a patient: the identifiers a dataset holds and the patterns PHI takes in text."""
