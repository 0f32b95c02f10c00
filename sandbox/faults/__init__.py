"""Scripted faults: what a role does wrong, when, and to which calls or records."""

from sandbox.faults.injector import FaultInjector
from sandbox.faults.model import Fault, Select

__all__ = ["Fault", "FaultInjector", "Select"]
