"""After the alarm (issue 22): arrival times on alerts, outcomes, debriefs, duty sessions, erasure.

- `alerts` gains where its responder accepted (the origin of the `en_route` geofence; erased after
  the position retention) and when they left, picked up the AED and reached the patient.
- `incident_outcomes`: the Utstein core record of an incident, one row each.
- `debriefs`: one per accepted alert, with the coordinators' follow-up state.
- `duty_sessions`: each stretch on duty, for the service record. Responders already on duty when
  this runs get a session opened now (their earlier time was never recorded).
- `responders.deleted_at`: an erased account's row stays as an anonymous stand-in.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERT_COLUMNS = ("accepted_lat", "accepted_lng", "en_route_at", "aed_picked_up_at", "on_scene_at")


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # on the partitioned parent: every month's partition gets them
    for name in ALERT_COLUMNS:
        kind = sa.Float() if name.startswith("accepted_") else _tz()
        op.add_column("alerts", sa.Column(name, kind, nullable=True))
    op.add_column("responders", sa.Column("deleted_at", _tz(), nullable=True))

    op.create_table(
        "incident_outcomes",
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("witnessed", sa.String(20), nullable=True),
        sa.Column("bystander_cpr", sa.Boolean(), nullable=True),
        sa.Column("first_responder_cpr_at", _tz(), nullable=True),
        sa.Column("aed_attached", sa.Boolean(), nullable=True),
        sa.Column("aed_attached_at", _tz(), nullable=True),
        sa.Column("shock_delivered", sa.Boolean(), nullable=True),
        sa.Column("first_shock_at", _tz(), nullable=True),
        sa.Column("ems_arrival_at", _tz(), nullable=True),
        sa.Column("rosc", sa.Boolean(), nullable=True),
        sa.Column("survived_admission", sa.Boolean(), nullable=True),
        sa.Column("survived_discharge", sa.Boolean(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.CheckConstraint(
            "witnessed IN ('unwitnessed', 'bystander', 'first_responder', 'ems')",
            name="ck_incident_outcomes_witnessed",
        ),
    )

    op.create_table(
        "debriefs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("alert_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("responder_id", sa.Uuid(), sa.ForeignKey("responders.id"), nullable=False),
        sa.Column("went", sa.String(10), nullable=False),
        sa.Column("injured", sa.Boolean(), nullable=False),
        sa.Column("wants_support", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("answered_at", _tz(), nullable=False),
        sa.Column("follow_up", sa.String(10), nullable=False),
        sa.Column("follow_up_done_at", _tz(), nullable=True),
        sa.Column("follow_up_done_by", sa.String(200), nullable=True),
        sa.Column("follow_up_note", sa.Text(), nullable=True),
        sa.CheckConstraint("went IN ('well', 'ok', 'hard')", name="ck_debriefs_went"),
        sa.CheckConstraint("follow_up IN ('none', 'open', 'done')", name="ck_debriefs_follow_up"),
    )
    op.create_index(
        "ix_debriefs_follow_up_open", "debriefs", ["answered_at"], postgresql_where="follow_up = 'open'"
    )
    op.create_index("ix_debriefs_responder", "debriefs", ["responder_id"])

    op.create_table(
        "duty_sessions",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("responder_id", sa.Uuid(), sa.ForeignKey("responders.id"), nullable=False),
        sa.Column("started_at", _tz(), nullable=False),
        sa.Column("ended_at", _tz(), nullable=True),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ck_duty_sessions_ordered"),
    )
    op.create_index("ix_duty_sessions_responder_started", "duty_sessions", ["responder_id", "started_at"])
    op.create_index(
        "uq_duty_sessions_open",
        "duty_sessions",
        ["responder_id"],
        unique=True,
        postgresql_where="ended_at IS NULL",
    )
    op.execute(
        "INSERT INTO duty_sessions (responder_id, started_at) "
        "SELECT id, now() FROM responders WHERE on_duty AND active"
    )


def downgrade() -> None:
    op.drop_table("duty_sessions")
    op.drop_table("debriefs")
    op.drop_table("incident_outcomes")
    op.drop_column("responders", "deleted_at")
    for name in reversed(ALERT_COLUMNS):
        op.drop_column("alerts", name)
