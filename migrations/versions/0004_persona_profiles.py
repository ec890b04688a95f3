"""persona profiles

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import mongars.db.base


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('profiles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('persona', sa.Text(), nullable=True),
    sa.Column('tone', sa.String(length=16), nullable=True),
    sa.Column('verbosity', sa.String(length=16), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('emoji', sa.Boolean(), nullable=True),
    sa.Column('style', sa.JSON(), nullable=False),
    sa.Column('messages_observed', sa.Integer(), nullable=False),
    sa.Column('created_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mongars.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_profiles'))
    )


def downgrade() -> None:
    op.drop_table('profiles')
