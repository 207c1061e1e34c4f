"""Running the platform: the embedded local stack, the CLI, containers."""
