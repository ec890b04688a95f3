"""training: answer feedback, training consent, curated datasets (and the turns each
record came from), training runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:06:02.087587
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mongars.db.base

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('training_datasets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('held_out', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('violations', sa.JSON(), nullable=False),
    sa.Column('scrubber_version', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_training_datasets_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_datasets'))
    )
    op.create_table('training_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_sha256', sa.String(length=64), nullable=False),
    sa.Column('objective', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('total_steps', sa.Integer(), nullable=False),
    sa.Column('loss', sa.Float(), nullable=True),
    sa.Column('eta_s', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('adapter_sha256', sa.String(length=64), nullable=True),
    sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', mongars.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', mongars.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_training_runs_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_runs_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_runs_status'), ['status'], unique=False)

    op.create_table('training_dataset_records',
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('turn_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['training_datasets.id'], name=op.f('fk_training_dataset_records_dataset_id_training_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'turn_id', name=op.f('pk_training_dataset_records'))
    )
    with op.batch_alter_table('training_dataset_records', schema=None) as batch_op:
        batch_op.create_index('ix_training_dataset_records_turn', ['turn_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_dataset_records_user_id'), ['user_id'], unique=False)

    op.create_table('turn_feedback',
    sa.Column('turn_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('rating', sa.String(length=8), nullable=True),
    sa.Column('correction', sa.Text(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['turn_id'], ['turns.id'], name=op.f('fk_turn_feedback_turn_id_turns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_turn_feedback_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('turn_id', name=op.f('pk_turn_feedback'))
    )
    with op.batch_alter_table('turn_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_turn_feedback_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_training', sa.Boolean(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_column('allow_training')

    with op.batch_alter_table('turn_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_turn_feedback_user_id'))

    op.drop_table('turn_feedback')
    with op.batch_alter_table('training_dataset_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_dataset_records_user_id'))
        batch_op.drop_index('ix_training_dataset_records_turn')

    op.drop_table('training_dataset_records')
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_runs_status'))
        batch_op.drop_index(batch_op.f('ix_training_runs_dataset_id'))

    op.drop_table('training_runs')
    op.drop_table('training_datasets')
