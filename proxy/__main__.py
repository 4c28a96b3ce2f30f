"""`python -m proxy` runs the keepwarm command line."""

from proxy.cli import main

main()
