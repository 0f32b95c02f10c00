"""Sub-commands of the `sandbox` CLI."""
