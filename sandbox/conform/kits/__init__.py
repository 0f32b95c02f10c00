"""One kit per role: `sandbox.conform.kits.<role>.KIT`."""
