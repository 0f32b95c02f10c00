"""The locustfile `sandbox load` runs: the sandbox's hospitals uploading hop 1 to the target center.

To extend, write your own file with a subclass of `sandbox.load.users.HospitalUser` (see that module)
and run `sandbox load --target URL --locustfile yours.py`, or Locust itself:
`locust -f yours.py --host URL --sandbox-hospitals 50 …`.
"""

from sandbox.load.users import HospitalUser


class Hospital(HospitalUser):
    """A hospital of the configuration (or generated), uploading as fast as the center answers."""
