"""Reading and writing what may be hostile: input files, JSON, YAML, HTTP answers, obsplan's own files, output
trees, SQLite databases checked and written. Imports only `obsplan.kernel`."""
