"""What several tests ask of the peer tools, in one place."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def dciodvfy_errors(dciodvfy: str, path: Path) -> set[str]:
    """dciodvfy's error messages for ``path``, values masked (UIDs and numbers differ by
    design between an input and its output: the messages are compared)."""
    run = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=120,
                         check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {re.sub(r"\s+", " ", re.sub(r"[0-9][0-9.]*|<[^>]*>", "#", line)).strip()
            for line in lines if "Error" in line}
