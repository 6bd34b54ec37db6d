"""hubmirror's mirror library: bucket layout, S3 store, upstream client, sync, verify, GC.

Plain Python, no Airflow: the DAGs, the CLI and serve's read side all call into it.
"""

__version__ = "0.1.0"
