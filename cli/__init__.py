"""The `v7` command line: one module per subcommand, each with `register(subparsers)`."""
