"""Everything that turns the outside world into commands: the HTTP API and the CLI."""
