"""HTTP route of emergency centres: `POST /v1/cad/eido` (cad tokens only), a thin adapter over
`cad.service`."""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cad.eido import EidoError
from cad.schemas import EidoDocument, EidoReceipt
from cad.service import receive_eido
from core.auth import Principal, Role, require_roles
from core.deps import get_session
from core.openapi import errors, json_body
from dispatch.router import dispatch_context
from dispatch.service import DispatchError

router = APIRouter(prefix="/v1/cad", tags=["emergency centres"])
centre_only = require_roles(Role.cad)


async def _json(request: Request) -> Any:
    try:
        return pydantic_core.from_json(await request.body(), allow_inf_nan=False)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body: must be JSON (an EIDO)") from None


@router.post(
    "/eido",
    status_code=status.HTTP_201_CREATED,
    response_model=EidoReceipt,
    responses={200: {"model": EidoReceipt, "description": "A known case"}, **errors(409)},
    openapi_extra=json_body(EidoDocument),
)
async def post_eido(
    request: Request,
    response: Response,
    principal: Principal = Depends(centre_only),
    session: AsyncSession = Depends(get_session),
) -> EidoReceipt:
    """An incident from the centre's CAD as a NENA EIDO (JSON): 201 opens a new case (dispatching
    when it has a geodetic location), 200 applies an update to a known one (older: `stale`)."""
    doc = await _json(request)
    try:
        receipt, new = await receive_eido(session, dispatch_context(request), doc, principal.agency or "")
    except EidoError as exc:
        raise RequestValidationError([{"loc": (exc.path,), "msg": exc.rule, "type": "eido"}]) from None
    except DispatchError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
    return receipt
