"""Put the demo city into the service's own registries, through the same services as the API.

Districts and their streets go to PostGIS, the 8,000 synthetic workers to the responder registry (each
with a verified first-aid certificate and a community team under their real street and district:
`simulator.teams`), the 23,000 AEDs to the AED registry.
Loading twice with the same seed changes nothing (both registries upsert on `external_id`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.importers import AedRecord, ImportReport
from aed_registry.service import import_records
from responders.importers import ParsedResponder
from responders.models import Responder
from responders.schemas import CertificateIn, ResponderCreate
from responders.service import RegistrySettings, import_responders
from responders.store import LiveLocationStore
from simulator.city import City
from simulator.population import SimAed, SimResponder, synth_aeds, synth_responders
from simulator.service import save_city
from simulator.shenzhen import demo_city
from simulator.teams import Community, communities, team_paths

HUB_NAMES = ("Metro station", "Hospital")
OTHER_NAMES = {"Mo-Fr 08:00-18:00": "Office building", "Mo-Su 09:00-22:00": "Shopping centre"}


@dataclass(frozen=True)
class DemoCity:
    city: City
    responders: list[SimResponder]
    aeds: list[SimAed]
    communities: list[list[Community]]  # per street of the city, in `city.streets` order


def build_demo(seed: int = 0, responders: int = 8000, aeds: int = 23000) -> DemoCity:
    """Shenzhen and its people, reproducible for a seed."""
    city = demo_city()
    return DemoCity(
        city, synth_responders(city, responders, seed), synth_aeds(city, aeds, seed), communities(city, seed)
    )


def responder_rows(demo: DemoCity) -> list[ParsedResponder]:
    """Registry rows: name, category, mode, community team, a verified Red Cross first-aid certificate."""
    teams = team_paths(
        demo.city, demo.communities, [p.lat for p in demo.responders], [p.lng for p in demo.responders]
    )
    rows = []
    for line, (person, team) in enumerate(zip(demo.responders, teams, strict=True), start=1):
        certificate = CertificateIn(
            kind="first_aid",
            number=f"RC-{person.responder_id}",
            issuer="Red Cross Society of China",
            valid_from=date(2025, 1, 1),
            valid_until=date(2028, 12, 31),
            verified=True,
        )
        data = ResponderCreate(
            external_id=person.responder_id,
            name=f"{person.category.replace('_', ' ').title()} {person.responder_id[-5:]}",
            category=person.category,
            team=team,
            mode=person.mode,
            certificates=[certificate],
        )
        rows.append(ParsedResponder(line, data))
    return rows


def aed_records(demo: DemoCity) -> list[AedRecord]:
    records = []
    for line, aed in enumerate(demo.aeds, start=1):
        kind = (
            HUB_NAMES[line % 2]
            if aed.opening_hours == "24/7"
            else OTHER_NAMES.get(aed.opening_hours, "Building")
        )
        records.append(
            AedRecord(
                line=line,
                lat=aed.lat,
                lng=aed.lng,
                external_id=aed.aed_id,
                name=f"{kind} AED {aed.aed_id[-5:]}",
                opening_hours=aed.opening_hours,
                access="public",
                status="active",
                source="demo",
            )
        )
    return records


async def load_demo(
    session: AsyncSession,
    store: LiveLocationStore,
    settings: RegistrySettings,
    demo: DemoCity,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write the city, the workers and the AEDs; commits after each part. Returns counts."""
    step = on_step or (lambda _: None)
    step("districts")
    await save_city(session, demo.city)
    await session.commit()
    step("responders")
    created, updated, unchanged = await import_responders(session, store, responder_rows(demo), settings)
    await session.commit()
    step("AEDs")
    report = await import_records(
        session, ImportReport(rows=len(demo.aeds), records=aed_records(demo)), "demo"
    )
    await session.commit()
    return {
        "districts": len(demo.city.districts),
        "responders_created": created,
        "responders_updated": updated,
        "responders_unchanged": unchanged,
        "aeds_created": report.created,
        "aeds_updated": report.updated,
        "aeds_unchanged": report.unchanged,
    }


async def registry_ids(session: AsyncSession, demo: DemoCity) -> dict[str, str]:
    """external_id → registry id of the demo's workers that are stored and active."""
    wanted = [p.responder_id for p in demo.responders]
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 5000):
        query = select(Responder.external_id, Responder.id).where(
            Responder.external_id.in_(wanted[start : start + 5000]), Responder.active.is_(True)
        )
        out.update({ext: str(rid) for ext, rid in (await session.execute(query)).all()})
    return out
