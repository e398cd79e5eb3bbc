"""trust: delivery retries and dead letters, API tokens, web sessions, stored PR metadata,
branch heads seen, the sync watchdog

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('dead_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('head_sha', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('head_seen_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('environments') as batch:
        batch.add_column(sa.Column('unsynced_since', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('sync_alerted_at', sa.DateTime(), nullable=True))
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('web_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('login', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash')
    )
    op.create_table('pull_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo', sa.String(length=200), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('merge_sha', sa.String(length=64), nullable=True),
    sa.Column('stored_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('repo', 'number')
    )


def downgrade() -> None:
    op.drop_table('pull_requests')
    op.drop_table('web_sessions')
    op.drop_table('api_tokens')
    with op.batch_alter_table('environments') as batch:
        batch.drop_column('sync_alerted_at')
        batch.drop_column('unsynced_since')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('head_seen_at')
        batch.drop_column('head_sha')
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.drop_column('dead_at')
        batch.drop_column('last_error')
        batch.drop_column('next_attempt_at')
        batch.drop_column('attempts')
