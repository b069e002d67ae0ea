"""What every package shares and nothing else: the project's error base and the one parser of named choices."""
