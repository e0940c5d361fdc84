"""`alerts` and `incident_events` partitioned by month (issue 20): the record stays fast as it grows.

A partitioned table's primary and unique keys must contain its partition key, so:
- `alerts` is partitioned by `opened_at`, a copy of its incident's `created_at`. The primary key
  becomes (id, opened_at) and the unique pair (incident_id, responder_id) becomes
  (incident_id, responder_id, opened_at), which allows exactly the same rows, since `opened_at`
  follows from `incident_id`: a responder is still alerted at most once per incident. All alerts
  of an incident share a partition, and "the alerts of this incident" reads one.
- `alert_codes` references an alert by (alert_id, alert_opened_at): the foreign key stays (a code
  never outlives the row it opens) at the price of one column.
- `incident_events` is partitioned by `ts`, the event's own time (nothing references an event
  row), primary key (id, ts); ids keep coming from the same sequence.

Each table is converted keeping its rows: renamed, a partitioned table made in its place with the
months its rows cover plus `core.partitions.MONTHS_AHEAD` and a DEFAULT partition, rows copied,
the old table dropped, keys and indexes made under their old names. Running workers of the
previous release cannot insert alerts or codes afterwards (they do not set the new columns): stop
them before upgrading. The downgrade converts back, keeping the rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.partitions import (
    ALERTS,
    EVENTS,
    MONTHS_AHEAD,
    MonthlyTable,
    add_months,
    create_default_sql,
    create_month_sql,
    months_between,
)

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERT_FKS = {
    "fk_alerts_incident_id_incidents": "(incident_id) REFERENCES incidents (id)",
    "fk_alerts_responder_id_responders": "(responder_id) REFERENCES responders (id)",
    "fk_alerts_aed_id_aeds": "(aed_id) REFERENCES aeds (id)",
    "fk_alerts_option_aed_id_aeds": "(option_aed_id) REFERENCES aeds (id)",
}
ALERT_INDEXES = (
    "CREATE INDEX ix_alerts_incident_id ON alerts (incident_id)",
    "CREATE INDEX ix_alerts_responder_status ON alerts (responder_id, status)",
    "CREATE INDEX ix_alerts_pending_expiry ON alerts (expires_at) WHERE status IN ('sent', 'delivered')",
    "CREATE INDEX ix_alerts_ladder_due ON alerts (ladder_due_at)"
    " WHERE status = 'sent' AND ladder_due_at IS NOT NULL",
)
OPEN_INCIDENTS = "ix_incidents_open_created"
EVENT_FK = "fk_incident_events_incident_id_incidents FOREIGN KEY (incident_id) REFERENCES incidents (id)"


def _partition(table: MonthlyTable, oldest_sql: str) -> None:
    """Make the months from the oldest row's (or now) to `MONTHS_AHEAD` past now, and DEFAULT."""
    bind = op.get_bind()
    now = bind.execute(sa.text("SELECT now()")).scalar_one()
    oldest = bind.execute(sa.text(oldest_sql)).scalar() or now
    for month in months_between(min(oldest, now), add_months(now, MONTHS_AHEAD)):
        op.execute(create_month_sql(table, month))
    op.execute(create_default_sql(table))


def _alert_keys(partitioned: bool) -> None:
    key = ", opened_at" if partitioned else ""
    op.execute(f"ALTER TABLE alerts ADD CONSTRAINT pk_alerts PRIMARY KEY (id{key})")
    op.execute(
        "ALTER TABLE alerts ADD CONSTRAINT uq_alerts_incident_responder"
        f" UNIQUE (incident_id, responder_id{key})"
    )
    for name, reference in ALERT_FKS.items():
        op.execute(f"ALTER TABLE alerts ADD CONSTRAINT {name} FOREIGN KEY {reference}")
    for statement in ALERT_INDEXES:
        op.execute(statement)
    codes = (
        "(alert_id, alert_opened_at) REFERENCES alerts (id, opened_at)"
        if partitioned
        else "(alert_id) REFERENCES alerts (id)"
    )
    op.execute(f"ALTER TABLE alert_codes ADD CONSTRAINT fk_alert_codes_alert_id_alerts FOREIGN KEY {codes}")


def _event_keys(partitioned: bool) -> None:
    key = ", ts" if partitioned else ""
    op.execute(f"ALTER TABLE incident_events ADD CONSTRAINT pk_incident_events PRIMARY KEY (id{key})")
    op.execute(f"ALTER TABLE incident_events ADD CONSTRAINT {EVENT_FK}")
    op.execute("CREATE INDEX ix_incident_events_incident_id ON incident_events (incident_id)")


def upgrade() -> None:
    op.execute("ALTER TABLE alerts RENAME TO alerts_unpartitioned")
    op.execute(
        "CREATE TABLE alerts (LIKE alerts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
        f" opened_at timestamptz NOT NULL) PARTITION BY RANGE ({ALERTS.key})"
    )
    _partition(
        ALERTS,
        "SELECT min(i.created_at) FROM alerts_unpartitioned a JOIN incidents i ON i.id = a.incident_id",
    )
    op.execute(
        "INSERT INTO alerts SELECT a.*, i.created_at FROM alerts_unpartitioned a"
        " JOIN incidents i ON i.id = a.incident_id"
    )
    op.execute("ALTER TABLE alert_codes ADD COLUMN alert_opened_at timestamptz")
    op.execute("UPDATE alert_codes c SET alert_opened_at = a.opened_at FROM alerts a WHERE a.id = c.alert_id")
    op.execute("ALTER TABLE alert_codes ALTER COLUMN alert_opened_at SET NOT NULL")
    op.execute("ALTER TABLE alert_codes DROP CONSTRAINT fk_alert_codes_alert_id_alerts")
    op.execute("DROP TABLE alerts_unpartitioned")
    _alert_keys(partitioned=True)

    op.execute("ALTER TABLE incident_events RENAME TO incident_events_unpartitioned")
    op.execute(
        "CREATE TABLE incident_events (LIKE incident_events_unpartitioned INCLUDING DEFAULTS"
        f" INCLUDING CONSTRAINTS) PARTITION BY RANGE ({EVENTS.key})"
    )
    _partition(EVENTS, "SELECT min(ts) FROM incident_events_unpartitioned")
    op.execute("INSERT INTO incident_events SELECT * FROM incident_events_unpartitioned")
    op.execute("ALTER SEQUENCE incident_events_id_seq OWNED BY incident_events.id")  # survives the drop
    op.execute("DROP TABLE incident_events_unpartitioned")
    _event_keys(partitioned=True)
    # the lower bound of a responder's alerts of open incidents, read by index, not by a scan
    op.execute(f"CREATE INDEX {OPEN_INCIDENTS} ON incidents (created_at) WHERE status = 'open'")


def _columns(table: str) -> str:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = :t ORDER BY ordinal_position"
        ),
        {"t": table},
    )
    return ", ".join(r[0] for r in rows)


def downgrade() -> None:
    op.execute(f"DROP INDEX {OPEN_INCIDENTS}")
    op.execute("ALTER TABLE incident_events RENAME TO incident_events_partitioned")
    op.execute(
        "CREATE TABLE incident_events (LIKE incident_events_partitioned INCLUDING DEFAULTS"
        " INCLUDING CONSTRAINTS)"
    )
    op.execute("INSERT INTO incident_events SELECT * FROM incident_events_partitioned")
    op.execute("ALTER SEQUENCE incident_events_id_seq OWNED BY incident_events.id")
    op.execute("DROP TABLE incident_events_partitioned")
    _event_keys(partitioned=False)

    op.execute("ALTER TABLE alerts RENAME TO alerts_partitioned")
    op.execute("CREATE TABLE alerts (LIKE alerts_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute("ALTER TABLE alerts DROP COLUMN opened_at")
    columns = _columns("alerts")
    op.execute(f"INSERT INTO alerts ({columns}) SELECT {columns} FROM alerts_partitioned")
    op.execute("ALTER TABLE alert_codes DROP CONSTRAINT fk_alert_codes_alert_id_alerts")
    op.execute("ALTER TABLE alert_codes DROP COLUMN alert_opened_at")
    op.execute("DROP TABLE alerts_partitioned")
    _alert_keys(partitioned=False)
