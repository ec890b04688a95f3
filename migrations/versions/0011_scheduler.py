"""scheduler: job runs, job states, shared activity

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:05:57.288585
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mongars.db.base

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('activity',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_activity'))
    )
    op.create_table('job_runs',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('progress', sa.Text(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cpu_s', sa.Float(), nullable=False),
    sa.Column('energy_wh', sa.Float(), nullable=False),
    sa.Column('energy_method', sa.String(length=16), nullable=False),
    sa.Column('started_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', mongars.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_name_started', ['name', 'started_at'], unique=False)

    op.create_table('job_states',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('memo', sa.JSON(), nullable=False),
    sa.Column('updated_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_states'))
    )


def downgrade() -> None:
    op.drop_table('job_states')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_name_started')

    op.drop_table('job_runs')
    op.drop_table('activity')
