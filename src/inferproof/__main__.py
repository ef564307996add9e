"""``python -m inferproof`` runs the command line."""

from inferproof.cli import main

main()
