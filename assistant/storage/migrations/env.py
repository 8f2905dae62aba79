"""Alembic's entry point: migrations run on the connection ``assistant.storage.database.migrate``
hands over, inside its transaction, with the version table of the store being migrated."""

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    version_table=config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters a table by copying it
)
with context.begin_transaction():
    context.run_migrations()
