"""Image previews for attachments.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

- `attachments.preview`: a small re-encoded copy (PNG or JPEG, at most 480 px a side, no metadata) of a PNG,
  JPEG, GIF or WebP file, made when the file is stored; NULL for anything else, or an image that could not be
  read. The ticket page shows it inline instead of the file itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attachments", sa.Column("preview", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    op.drop_column("attachments", "preview")
