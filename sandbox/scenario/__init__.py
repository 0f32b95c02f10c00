"""Scripted failure scenarios: the YAML format (model), the checks, the malformation catalogue, the driver
that sends, the runner and the library in `scenarios/`."""
