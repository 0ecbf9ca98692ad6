"""
The address book: what the crawl knows of every address, kept in SQLite
(schema, migrations, integrity checks, the worker thread and its reactor-side
face).
"""
