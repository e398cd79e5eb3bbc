"""Alembic environment: run against the connection the store hands over."""

from alembic import context
from sqlalchemy import create_engine

from bot.errors import MainlineError
from bot.infra.db.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    # Run by hand (`alembic upgrade`): Store.migrate always hands its connection over.
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise MainlineError("alembic: no connection handed over and no sqlalchemy.url set")
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
