"""Responder registry logic: registration, duty, updates, tokens, and keeping Redis in step.

Postgres holds the record (who, which certificates, on duty or not); the live store holds what
matching needs on every incident (profile + position). Every change here commits to Postgres first
and then updates Redis, so a crash in between errs towards "not dispatchable" and the periodic
resync repairs it from the record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.auth import Role, issue_token, revoke_responder_tokens
from geo.crs import Crs, from_wgs84
from responders import duty_log
from responders.availability import CertificatePeriod, certificate_period, not_dispatchable_because
from responders.importers import ParsedResponder
from responders.models import TEAM_LEVELS, Certificate, Responder, Team
from responders.schemas import (
    AlertPlaces,
    CertificateIn,
    CertificateOut,
    PositionOut,
    ResponderCreate,
    ResponderOut,
    ResponderUpdate,
)
from responders.store import LiveLocationStore, LiveProfile

HOMES = AlertPlaces.public_and_homes.value


class RegistrySettings(Protocol):
    timezone: str
    team_root: str
    staleness_s: float


class ResponderNotFound(LookupError):
    pass


class RegistryConflict(ValueError):
    """The request clashes with what is stored; `str()` names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def _now() -> datetime:
    return datetime.now(UTC)


def periods_of(certificates: Iterable[Certificate | CertificateIn], tz: ZoneInfo) -> list[CertificatePeriod]:
    return [certificate_period(str(c.kind), c.valid_from, c.valid_until, tz) for c in certificates]


# --- teams ------------------------------------------------------------------------------------
def team_segments(path: str, root: str) -> list[str]:
    """'futian/shatou/xiasha' → ['shenzhen', 'futian', 'shatou', 'xiasha'] (the root may be given)."""
    parts = [p.strip().lower() for p in path.split("/") if p.strip()]
    if parts and parts[0] == root.lower():
        parts = parts[1:]
    if not 1 <= len(parts) <= len(TEAM_LEVELS) - 1:
        raise RegistryConflict("team", "must be district[/street[/community]] under the city")
    return [root.lower(), *parts]


async def team_for_path(
    session: AsyncSession, path: str, root: str, cache: dict[str, Team] | None = None
) -> Team:
    """The team at `path`, creating the missing levels of the hierarchy on the way down."""
    cache = {} if cache is None else cache
    parent: Team | None = None
    segments = team_segments(path, root)
    for level, name in enumerate(segments):
        full = "/".join(segments[: level + 1])
        team = cache.get(full)
        if team is None:
            team = (await session.execute(select(Team).where(Team.path == full))).scalar_one_or_none()
        if team is None:
            team = Team(
                id=uuid.uuid4(), name=name, level=level, parent_id=parent.id if parent else None, path=full
            )
            session.add(team)
            await session.flush()
        cache[full] = team
        parent = team
    assert parent is not None
    return parent


async def teams_for_paths(session: AsyncSession, paths: Iterable[str], root: str) -> dict[str, Team]:
    """Every team on the way down to each of `paths`, keyed by full path ('shenzhen/futian/...'), the
    missing ones created a level at a time: an import naming hundreds of new communities (the demo
    city's 700) costs one query and one batch per level, not two round trips per team."""
    wanted: dict[str, tuple[int, str]] = {}
    for path in paths:
        segments = team_segments(path, root)
        for level, name in enumerate(segments):
            wanted["/".join(segments[: level + 1])] = (level, name)
    found = await session.execute(select(Team).where(Team.path.in_(list(wanted))))
    teams = {t.path: t for t in found.scalars()}
    for level in range(len(TEAM_LEVELS)):
        new = [
            Team(
                id=uuid.uuid4(),
                name=name,
                level=level,
                parent_id=teams[full.rpartition("/")[0]].id if level else None,
                path=full,
            )
            for full, (at, name) in wanted.items()
            if at == level and full not in teams
        ]
        if new:
            session.add_all(new)
            await session.flush()
            teams.update((t.path, t) for t in new)
    return teams


# --- reading ----------------------------------------------------------------------------------
async def load(session: AsyncSession, responder_id: uuid.UUID) -> Responder:
    query = (
        select(Responder).where(Responder.id == responder_id).options(selectinload(Responder.certificates))
    )
    responder = (await session.execute(query)).scalar_one_or_none()
    if responder is None:
        raise ResponderNotFound(str(responder_id))
    return responder


async def describe(
    responder: Responder,
    store: LiveLocationStore,
    settings: RegistrySettings,
    crs: Crs = Crs.wgs84,
    now: float | None = None,
) -> ResponderOut:
    """The profile with `dispatchable` and every reason it is not, as a dispatcher would ask."""
    now = time.time() if now is None else now
    tz = ZoneInfo(settings.timezone)
    position = await store.get(str(responder.id)) if responder.on_duty else None
    reasons = not_dispatchable_because(
        active=responder.active,
        on_duty=responder.on_duty,
        certificates=periods_of(responder.certificates, tz),
        position_ts=position.ts if position else None,
        at_s=now,
        staleness_s=settings.staleness_s,
    )
    position_out = None
    if position is not None:
        lat, lng = from_wgs84(position.lat, position.lng, crs)
        position_out = PositionOut(
            lat=lat,
            lng=lng,
            crs=crs,
            ts=datetime.fromtimestamp(position.ts, UTC),
            accuracy_m=position.accuracy_m,
            mode=position.mode,
            age_s=round(now - position.ts, 1),
        )
    certificates = [
        CertificateOut(
            id=c.id,
            kind=c.kind,
            number=c.number,
            issuer=c.issuer,
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            verified=c.verified,
            valid_now=periods_of([c], tz)[0].valid_at(now),
        )
        for c in responder.certificates
    ]
    return ResponderOut(
        id=responder.id,
        external_id=responder.external_id,
        name=responder.name,
        phone=responder.phone,
        category=responder.category,
        team=responder.team.path if responder.team else None,
        mode=responder.mode,
        alert_places=responder.alert_places,
        active=responder.active,
        on_duty=responder.on_duty,
        certificates=certificates,
        dispatchable=not reasons,
        not_dispatchable_because=reasons,
        position=position_out,
    )


# --- writing ----------------------------------------------------------------------------------
def live_profile(responder: Responder, tz: ZoneInfo) -> LiveProfile:
    """What the live store keeps of an on-duty responder: mode, certificates, tier."""
    periods = periods_of(responder.certificates, tz)
    return LiveProfile(str(responder.id), responder.mode, periods, responder.alert_places == HOMES)


async def sync_live(store: LiveLocationStore, responder: Responder, settings: RegistrySettings) -> None:
    """Bring the live store in line with the record: a profile while active and on duty, else nothing."""
    if responder.active and responder.on_duty:
        await store.set_profiles([live_profile(responder, ZoneInfo(settings.timezone))])
    else:
        await store.remove(str(responder.id))


def _certificate_rows(certificates: Iterable[CertificateIn]) -> list[Certificate]:
    return [Certificate(id=uuid.uuid4(), **c.model_dump()) for c in certificates]


async def register(
    session: AsyncSession, data: ResponderCreate, settings: RegistrySettings
) -> tuple[Responder, str]:
    """Create the responder with certificates and team; returns it with its one-time token."""
    taken = await session.execute(select(Responder.id).where(Responder.external_id == data.external_id))
    if taken.first() is not None:
        raise RegistryConflict("external_id", f"'{data.external_id}' is already registered")
    team = await team_for_path(session, data.team, settings.team_root) if data.team else None
    responder = Responder(
        id=uuid.uuid4(),
        external_id=data.external_id,
        name=data.name,
        phone=data.phone,
        category=data.category.value,
        team_id=team.id if team else None,
        mode=data.mode.value,
        alert_places=data.alert_places.value,
        active=True,
        on_duty=False,
        created_at=_now(),
        updated_at=_now(),
        certificates=_certificate_rows(data.certificates),
    )
    session.add(responder)
    await session.flush()
    _, token = await issue_token(session, Role.responder, f"responder:{data.external_id}", responder.id)
    await session.commit()
    return await load(session, responder.id), token


async def set_duty(
    session: AsyncSession,
    store: LiveLocationStore,
    responder: Responder,
    on_duty: bool,
    settings: RegistrySettings,
) -> Responder:
    """Go on or off duty; off duty deletes the live position at once (privacy)."""
    if on_duty and not responder.active:
        raise RegistryConflict("on_duty", "a deactivated responder cannot go on duty")
    if responder.on_duty != on_duty:
        responder.on_duty = on_duty
        responder.updated_at = _now()
        if on_duty:
            await duty_log.open_session(session, responder.id, responder.updated_at)
        else:
            await duty_log.close_session(session, responder.id, responder.updated_at)
        await session.commit()
    await sync_live(store, responder, settings)
    return responder


async def update(
    session: AsyncSession,
    store: LiveLocationStore,
    responder: Responder,
    patch: ResponderUpdate,
    settings: RegistrySettings,
) -> Responder:
    """Apply the fields sent; a new certificate list that lapses takes effect in the live store at once."""
    changes = patch.model_dump(exclude_unset=True, exclude={"certificates", "team"})
    for name, value in changes.items():
        if value is None and name != "phone":
            raise RegistryConflict(name, "may not be null")
        setattr(responder, name, value.value if hasattr(value, "value") else value)
    if "team" in patch.model_fields_set:
        responder.team = await team_for_path(session, patch.team, settings.team_root) if patch.team else None
    if patch.certificates is not None:
        responder.certificates = _certificate_rows(patch.certificates)
    responder.updated_at = _now()
    await session.commit()
    responder = await load(session, responder.id)
    await sync_live(store, responder, settings)
    return responder


async def deactivate(
    session: AsyncSession, store: LiveLocationStore, responder: Responder, settings: RegistrySettings
) -> Responder:
    """Keep the record (alerts refer to it) but end duty, revoke tokens and drop the position."""
    responder.active = False
    responder.on_duty = False
    responder.updated_at = _now()
    await duty_log.close_session(session, responder.id, responder.updated_at)
    await revoke_responder_tokens(session, responder.id)
    await session.commit()
    await sync_live(store, responder, settings)
    return responder


async def rotate_token(session: AsyncSession, responder: Responder) -> str:
    """A new token for a new phone; every earlier token of the responder stops working."""
    if not responder.active:
        raise RegistryConflict("id", "a deactivated responder cannot get a token")
    await revoke_responder_tokens(session, responder.id)
    _, token = await issue_token(session, Role.responder, f"responder:{responder.external_id}", responder.id)
    await session.commit()
    return token


async def _on_duty_profiles(session: AsyncSession, tz: ZoneInfo) -> dict[str, LiveProfile]:
    """Every active, on-duty responder's live profile as the registry has it now, by id."""
    on_duty = select(Responder).where(Responder.active.is_(True), Responder.on_duty.is_(True))
    rows = (await session.execute(on_duty.options(selectinload(Responder.certificates)))).scalars().all()
    return {str(r.id): live_profile(r, tz) for r in rows}


async def resync_live_profiles(
    session: AsyncSession, store: LiveLocationStore, settings: RegistrySettings
) -> int:
    """Rebuild every on-duty profile from Postgres (after Redis lost its data); returns how many.

    A duty, mode or certificate change may land between the read and the write: the change writes
    Redis itself, and this write could then undo it (an off-duty responder put back, an old
    certificate restored). So the registry is read again once the profiles are written, and what
    differs is written again: a change committed after that second read writes Redis after this.
    """
    tz = ZoneInfo(settings.timezone)
    written = await _on_duty_profiles(session, tz)
    await store.set_profiles(list(written.values()))
    await session.rollback()  # a fresh snapshot: changes committed since the first read count
    now = await _on_duty_profiles(session, tz)
    for responder_id in written.keys() - now.keys():
        await store.remove(responder_id)
    changed = [profile for rid, profile in now.items() if rid in written and written[rid] != profile]
    await store.set_profiles(changed)
    return len(written.keys() & now.keys())


# --- bulk import --------------------------------------------------------------------------------
_PROFILE_FIELDS = ("name", "phone", "category", "mode", "alert_places")
# A file without the column leaves these as they are: a tier is opted into, and an older file
# format re-imported must not take it away.
_KEPT_UNLESS_GIVEN = frozenset({"alert_places"})
_CERT_FIELDS = ("issuer", "valid_from", "valid_until", "verified")


def _merge_certificates(responder: Responder, incoming: Iterable[CertificateIn]) -> bool:
    """Add new certificates and update changed ones (matched on kind and number); never deletes."""
    changed = False
    stored = {(c.kind, c.number): c for c in responder.certificates}
    for cert in incoming:
        row = stored.get((cert.kind.value, cert.number))
        if row is None:
            responder.certificates.append(_certificate_rows([cert])[0])
            changed = True
            continue
        for name in _CERT_FIELDS:
            if getattr(row, name) != getattr(cert, name):
                setattr(row, name, getattr(cert, name))
                changed = True
    return changed


# A chunk of the import is the most work done between two waits on the database: 500 responders
# take ~0.1 s of the event loop, where the whole file in one go held it for 16-22 s at 100,000 rows.
IMPORT_CHUNK = 500


async def import_responders(
    session: AsyncSession,
    store: LiveLocationStore,
    parsed: list[ParsedResponder],
    settings: RegistrySettings,
) -> tuple[int, int, int]:
    """Upsert on `external_id`; returns (created, updated, unchanged). Re-importing changes nothing.

    The file is written a chunk at a time (flushed, then let go of), so a long import never holds
    the event loop that serves alerts and sockets for more than one chunk; one commit at the end
    keeps it all-or-nothing, as before.
    """
    teams = await teams_for_paths(session, {p.data.team for p in parsed if p.data.team}, settings.team_root)
    created = updated = 0
    touched: list[Responder] = []
    for start in range(0, len(parsed), IMPORT_CHUNK):
        chunk = parsed[start : start + IMPORT_CHUNK]
        chunk_created, chunk_touched = await _upsert_chunk(session, chunk, settings, teams)
        created += chunk_created
        updated += len(chunk_touched)
        touched.extend(chunk_touched)
    await session.commit()
    for responder in touched:
        await sync_live(store, responder, settings)
    return created, updated, len(parsed) - created - updated


async def _upsert_chunk(
    session: AsyncSession,
    chunk: list[ParsedResponder],
    settings: RegistrySettings,
    teams: dict[str, Team],
) -> tuple[int, list[Responder]]:
    """Write one chunk; returns (created, updated responders). New responders go in as plain rows
    (a bulk INSERT: building ORM objects cost ~1 ms each), known ones through the ORM to compare;
    those leave the session after the flush, so the session stays the size of a chunk."""
    query = (
        select(Responder)
        .where(Responder.external_id.in_([p.data.external_id for p in chunk]))
        .options(selectinload(Responder.certificates))
    )
    existing = {r.external_id: r for r in (await session.execute(query)).scalars()}
    new_responders: list[dict[str, object]] = []
    new_certificates: list[dict[str, object]] = []
    touched: list[Responder] = []
    for item in chunk:
        data = item.data
        team = await team_for_path(session, data.team, settings.team_root, teams) if data.team else None
        responder = existing.get(data.external_id)
        if responder is None:
            responder_id = uuid.uuid4()
            new_responders.append(
                {
                    "id": responder_id,
                    "external_id": data.external_id,
                    "name": data.name,
                    "phone": data.phone,
                    "category": data.category.value,
                    "team_id": team.id if team else None,
                    "mode": data.mode.value,
                    "alert_places": data.alert_places.value,
                    "active": True,
                    "on_duty": False,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
            )
            new_certificates.extend(
                {**c.model_dump(), "kind": c.kind.value, "id": uuid.uuid4(), "responder_id": responder_id}
                for c in data.certificates
            )
            continue
        changed = False
        for name in _PROFILE_FIELDS:
            if name in _KEPT_UNLESS_GIVEN and name not in data.model_fields_set:
                continue
            value = getattr(data, name)
            value = value.value if hasattr(value, "value") else value
            if getattr(responder, name) != value:
                setattr(responder, name, value)
                changed = True
        if team is not None and responder.team_id != team.id:
            responder.team = team
            changed = True
        changed |= _merge_certificates(responder, data.certificates)
        if changed:
            responder.updated_at = _now()
            touched.append(responder)
    if new_responders:
        await session.execute(insert(Responder), new_responders)
    if new_certificates:
        await session.execute(insert(Certificate), new_certificates)
    await session.flush()
    for responder in existing.values():
        session.expunge(responder)
    return len(new_responders), touched
