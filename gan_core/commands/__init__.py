"""One module per ``gan3d`` subcommand; see gan_core/cli.py for the contract."""
