"""Erasing a responder's account at their request (PIPL: the right to deletion), keeping the
incident record whole.

Alerts, events, debriefs and duty sessions point at the responder's row, and an inquiry into an
incident must still read who was alerted, who accepted and when. So the row stays, as an anonymous
stand-in: no name, no phone, a random `external_id` ("erased-…", as the column is unique),
`deleted_at` set, inactive and off duty. Everything else that is about the person goes: the
certificates, the tokens (revoked: the phone's next call is a 401, its sockets close; relabelled,
as their labels named the person), the push subscriptions, the tallies of their own answers, the
live position, the free-text notes of their debriefs, the positions of their incident timelines
(`privacy.kept`), their name and phone in what emergency centres were told (`privacy.anonymise`);
their open duty session is closed. Kept: the category and team (groups, which the programme's
reports count by), the times and statuses of the incident record, and the debriefs' answers
without their notes.

Idempotent: a second request finds `deleted_at` set and changes nothing. An erased responder
cannot be brought back (`responders.router` answers 410 Gone for them).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cad.outbox_models import CadOutbox, CadStream
from core.auth import ApiToken, revoke_responder_tokens
from debriefs.models import Debrief
from dispatch.channels.push_models import PushSubscription
from dispatch.events import CLOCK_SLACK
from dispatch.models import Alert, IncidentEvent
from privacy.anonymise import without_person
from privacy.export import about_responder, all_of
from privacy.kept import ALERT_POSITIONS, EVENT_POSITIONS
from privacy.schemas import ErasureOut
from responders import duty_log
from responders.models import AcceptanceTally, Certificate, Responder
from responders.store import LiveLocationStore

ERASED_NAME = "erased"
ERASED_TOKEN_LABEL = "responder:erased"


class NoSuchResponder(LookupError):
    pass


def stand_in_id() -> str:
    """A unique, meaningless `external_id` for the stand-in (it cannot be matched by an import)."""
    return f"erased-{secrets.token_hex(12)}"


async def _deleted(
    session: AsyncSession, table: type[Certificate] | type[PushSubscription], rid: uuid.UUID
) -> int:
    result = await session.execute(delete(table).where(table.responder_id == rid).returning(table.id))
    return len(result.all())


async def _remove_what_is_theirs(session: AsyncSession, rid: uuid.UUID) -> dict[str, int]:
    """Revoke and relabel their tokens (the labels name the person: "responder:<external_id>"),
    delete their certificates, push subscriptions and answer tallies, clear their debriefs'
    notes; how many of each, as `ErasureOut` names them."""
    tokens = await revoke_responder_tokens(session, rid)
    await session.execute(
        update(ApiToken).where(ApiToken.responder_id == rid).values(label=ERASED_TOKEN_LABEL)
    )
    tallies = await session.execute(
        delete(AcceptanceTally)
        .where(AcceptanceTally.level == "responder", AcceptanceTally.key == str(rid))
        .returning(AcceptanceTally.band)
    )
    tallies_deleted = len(tallies.all())
    notes = await session.execute(
        update(Debrief)
        .where(
            Debrief.responder_id == rid, or_(Debrief.note.is_not(None), Debrief.follow_up_note.is_not(None))
        )
        .values(note=None, follow_up_note=None)
        .returning(Debrief.id)
    )
    return {
        "tokens_revoked": tokens,
        "certificates": await _deleted(session, Certificate, rid),
        "push_subscriptions": await _deleted(session, PushSubscription, rid),
        "acceptance_tallies": tallies_deleted,
        "debrief_notes": len(notes.all()),
    }


def _make_stand_in(responder: Responder, now: datetime) -> None:
    """What is left of the row: nothing that names the person, and never on duty again."""
    responder.name, responder.phone, responder.external_id = ERASED_NAME, None, stand_in_id()
    responder.active = responder.on_duty = False
    responder.deleted_at = responder.updated_at = now


async def _their_incidents(session: AsyncSession, rid: uuid.UUID) -> dict[uuid.UUID, datetime]:
    """The incidents they were alerted to, each with its opening time (the alerts' partition key)."""
    query = select(Alert.incident_id, func.min(Alert.opened_at)).where(Alert.responder_id == rid)
    return dict((await session.execute(query.group_by(Alert.incident_id))).tuples().all())


async def _erase_timeline_positions(
    session: AsyncSession, rid: uuid.UUID, incidents: dict[uuid.UUID, datetime]
) -> tuple[int, int]:
    """Erase the positions of their alerts and of the events about them; (alerts, events)."""
    alerts = await ALERT_POSITIONS.erase(session, Alert.responder_id == rid)
    if not incidents:
        return alerts, 0
    events = await EVENT_POSITIONS.erase(
        session,
        IncidentEvent.incident_id.in_(list(incidents)),
        IncidentEvent.ts >= min(incidents.values()) - CLOCK_SLACK,  # their incidents' months only
        about_responder(rid),
    )
    return alerts, events


async def _anonymise_centre_copies(
    session: AsyncSession, rid: uuid.UUID, incidents: Collection[uuid.UUID]
) -> int:
    """Take their name and phone out of what emergency centres were (or are to be) told about their
    incidents (`privacy.anonymise`); how many stored documents changed."""
    if not incidents:
        return 0
    ids = list(incidents)
    streams = await all_of(session, select(CadStream).where(CadStream.incident_id.in_(ids)))
    outbox = await all_of(session, select(CadOutbox).where(CadOutbox.incident_id.in_(ids)))
    changed = 0
    for row, column in [*((s, "tally") for s in streams), *((o, "body") for o in outbox)]:
        kept = getattr(row, column)
        scrubbed = without_person(kept, str(rid))
        if scrubbed != kept:
            setattr(row, column, scrubbed)
            changed += 1
    return changed


async def erase_account(
    session: AsyncSession, store: LiveLocationStore, responder_id: uuid.UUID
) -> ErasureOut:
    """Erase the account in one transaction (the row locked: two requests at once erase once),
    then delete the live position. The caller announces the revoked tokens (`take_revoked`)."""
    query = select(Responder).where(Responder.id == responder_id).with_for_update(of=Responder)
    responder = (await session.execute(query)).scalars().first()
    if responder is None:
        raise NoSuchResponder(str(responder_id))
    if responder.deleted_at is not None:
        await session.commit()
        return ErasureOut(id=responder_id, erased_at=responder.deleted_at, already_erased=True)
    now = datetime.now(UTC)
    was_on_duty = responder.on_duty
    await duty_log.close_session(session, responder_id, now)
    removed = await _remove_what_is_theirs(session, responder_id)
    incidents = await _their_incidents(session, responder_id)
    alert_positions, event_positions = await _erase_timeline_positions(session, responder_id, incidents)
    centre_copies = await _anonymise_centre_copies(session, responder_id, incidents)
    session.expire(responder, ["certificates"])  # deleted above, not through the relationship
    _make_stand_in(responder, now)
    await session.commit()
    live = await store.remove(str(responder_id))
    return ErasureOut(
        id=responder_id,
        erased_at=now,
        already_erased=False,
        **removed,
        alert_positions=alert_positions,
        event_positions=event_positions,
        centre_copies=centre_copies,
        duty_session_closed=was_on_duty,
        live_position=live,
    )
