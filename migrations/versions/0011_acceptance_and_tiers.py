"""Acceptance learned per responder, and responder tiers (public places only, or homes too).

`acceptance_tallies` counts the real answers to alerts (accepted, declined, left unanswered until
expiry) per responder, per team and per category, in the day and the night band: matching shrinks a
person's own rate toward their team's and category's (`responders.acceptance`). Alerts ended
by the dispatcher (incident closed, stand-down) are not answers and are not counted.

`responders.alert_places` is the tier: `public` (alerted for public places only, the default, as
residential alerts are opt-in in PulsePoint) or `public_and_homes`. `incidents.place` says where
the patient is: `public` (the default, what every earlier incident was treated as) or
`residential`, which alerts only responders whose tier allows homes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acceptance_tallies",
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("band", sa.String(5), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("declined", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unanswered", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("level", "key", "band", name="pk_acceptance_tallies"),
        sa.CheckConstraint("level IN ('responder', 'team', 'category')", name="ck_acceptance_tallies_level"),
        sa.CheckConstraint("band IN ('day', 'night')", name="ck_acceptance_tallies_band"),
    )
    # server defaults: workers of the previous release, still writing during a rolling upgrade,
    # know nothing of tiers
    op.add_column(
        "responders", sa.Column("alert_places", sa.String(20), nullable=False, server_default="public")
    )
    op.create_check_constraint(
        "ck_responders_alert_places", "responders", "alert_places IN ('public', 'public_and_homes')"
    )
    op.add_column("incidents", sa.Column("place", sa.String(12), nullable=False, server_default="public"))
    op.create_check_constraint("ck_incidents_place", "incidents", "place IN ('public', 'residential')")


def downgrade() -> None:
    op.drop_constraint("ck_incidents_place", "incidents", type_="check")
    op.drop_column("incidents", "place")
    op.drop_constraint("ck_responders_alert_places", "responders", type_="check")
    op.drop_column("responders", "alert_places")
    op.drop_table("acceptance_tallies")
