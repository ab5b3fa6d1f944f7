"""`python -m supportbot_cli`: what the `supportbot` script runs."""

from supportbot_cli import main

main()
