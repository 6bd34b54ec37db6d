"""hubmirror's front door: the `hubmirror` command and the local stack (`hubmirror up`).

It composes the parts that must not know each other: `mirror_core` (the library), `serve` (the read
service), Airflow (run as subprocesses) and the offline demo upstream. Nothing under mirror_core or serve imports it.
"""

__version__ = "0.1.0"
