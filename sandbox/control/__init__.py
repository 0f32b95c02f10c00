"""The control plane under /_sandbox/: state, reset, seed, scenarios, faults, journal, sending."""
