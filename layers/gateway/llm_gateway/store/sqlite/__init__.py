"""The embedded store: key records and usage in one SQLite database on disk (WAL), shared by threads and processes."""
