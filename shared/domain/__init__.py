"""Domain models and rules, free of I/O."""
