"""The plan stage (the DAG of hops and cross-component rules), the artifacts stage and the lock stage."""
