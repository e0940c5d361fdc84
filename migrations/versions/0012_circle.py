"""Roles decided as people accept, phased alerting and stand-down (issue 18).

Alerts now go out `undecided`: the role (straight to the patient, or via an AED) is chosen when
the responder accepts, so `role` may be `undecided`, `option_aed_id` keeps the AED the person may be
asked to bring (shown on the alert), `answered_at` when they answered (their arrival is counted
from it). `cancel_reason` tells a stand-down (`enough_responders`) from a closed incident.
`incidents.next_topup_at` is when the next pending alert goes unanswered past the answer timeout
(`answer_timeout_s`, kept per incident as the escalation interval is, so every worker's clock
follows the one it was opened with): the dispatch clock tops the circle up then, once per incident.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_alerts_role"), "alerts", type_="check")
    op.create_check_constraint(op.f("ck_alerts_role"), "alerts", "role IN ('undecided', 'cpr', 'fetch_aed')")
    op.add_column(
        "alerts",
        sa.Column(
            "option_aed_id",
            sa.Uuid(),
            sa.ForeignKey("aeds.id", name="fk_alerts_option_aed_id_aeds"),
            nullable=True,
        ),
    )
    op.add_column("alerts", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("cancel_reason", sa.String(40), nullable=True))
    op.add_column("incidents", sa.Column("answer_timeout_s", sa.Float(), nullable=True))
    op.add_column("incidents", sa.Column("next_topup_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_incidents_open_topup", "incidents", ["next_topup_at"], postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_incidents_open_topup", table_name="incidents")
    op.drop_column("incidents", "next_topup_at")
    op.drop_column("incidents", "answer_timeout_s")
    for column in ("cancel_reason", "answered_at", "option_aed_id"):
        op.drop_column("alerts", column)
    # alerts still undecided cannot keep that role under the old rule: they become `cpr`
    op.execute("UPDATE alerts SET role = 'cpr' WHERE role = 'undecided'")
    op.drop_constraint(op.f("ck_alerts_role"), "alerts", type_="check")
    op.create_check_constraint(op.f("ck_alerts_role"), "alerts", "role IN ('cpr', 'fetch_aed')")
