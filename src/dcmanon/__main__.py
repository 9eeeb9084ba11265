"""``python -m dcmanon``."""

from dcmanon.cli import main

main()
