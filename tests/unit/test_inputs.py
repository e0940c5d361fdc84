"""`core.inputs`: every text field of a request body refuses NUL, and no body model can forget it."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from core.inputs import NUL_RULE, InputModel, Text


def test_a_body_model_with_a_plain_str_field_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"Loose\.tags: a text field of a request body must be `Text`"):

        class Loose(InputModel):
            tags: list[str | None]


def test_text_anywhere_in_a_model_refuses_nul_naming_the_field() -> None:
    class Tidy(InputModel):
        name: Text
        tags: list[Text] = Field(default_factory=list)
        note: Text | None = None

    assert Tidy(name="ok", tags=["a"]).name == "ok"
    for body, loc in (({"name": "a\x00"}, ("name",)), ({"name": "a", "tags": ["x", "\x00"]}, ("tags", 1))):
        with pytest.raises(ValidationError) as caught:
            Tidy.model_validate(body)
        error = caught.value.errors()[0]
        assert error["loc"] == loc and NUL_RULE in error["msg"]


def test_every_request_body_of_the_service_is_an_input_model() -> None:
    """The service's body models all derive from InputModel, so the NUL rule covers each of them."""
    from fastapi.routing import iter_route_contexts
    from pydantic import BaseModel

    from dispatch.app import create_app

    app = create_app()
    bodies = []
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context, "dependant", None)
        for param in dependant.body_params if dependant else []:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                bodies.append(annotation)
    assert bodies and all(issubclass(b, InputModel) for b in bodies), [
        b for b in bodies if not issubclass(b, InputModel)
    ]
