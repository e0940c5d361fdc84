"""What every request body model shares: unknown fields refused, and no text with a NUL character.

PostgreSQL cannot store U+0000 in `text`, so a NUL anywhere in a stored string made the insert fail
with a 500 (issue 16). The rule is checked where the text enters, as a 422 naming the field:
`Text` is `str` with the check, and `InputModel` refuses, when the class is defined, any plain `str`
field, so no body model can forget it. The check sits on the text fields only (not a validator on
every field of every model): a gateway batch of thousands of position updates holds no text and
pays nothing for it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

NUL_RULE = "must not contain NUL characters (U+0000)"


def reject_nul(value: str) -> str:
    """Pydantic validator of `Text`: the value unchanged, or `ValueError(NUL_RULE)`."""
    if "\x00" in value:
        raise ValueError(NUL_RULE)
    return value


NUL_FREE = AfterValidator(reject_nul)
Text = Annotated[str, NUL_FREE]
"""Text that may be stored: any `str` without U+0000 (other constraints may be added around it)."""


def nul_problem(values: Mapping[str, Any]) -> str | None:
    """The first key whose text value holds a NUL, for rows checked outside pydantic (CSV imports)."""
    return next((k for k, v in values.items() if isinstance(v, str) and "\x00" in v), None)


def _unguarded_text(annotation: Any) -> bool:
    """Whether `annotation` holds a bare `str` anywhere (in a union, a list, a dict...)."""
    if annotation is str:
        return True
    if typing.get_origin(annotation) is Annotated:
        base, *meta = typing.get_args(annotation)
        return (base is str and NUL_FREE not in meta) or (base is not str and _unguarded_text(base))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return any(_unguarded_text(a) for a in typing.get_args(annotation))
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused, every text field is `Text`."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if _unguarded_text(info.rebuild_annotation()):
                raise TypeError(f"{cls.__name__}.{name}: a text field of a request body must be `Text`")
