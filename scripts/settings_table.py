"""Print the README's configuration table from the one Settings object (keeps the README true)."""

from __future__ import annotations

from core.config import Settings


def main() -> None:
    print("| variable | default | what |")
    print("|---|---|---|")
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        has_alias = alias is not None and hasattr(alias, "choices")
        env = alias.choices[0] if has_alias else f"DISPATCH_{name.upper()}"
        default = field.default_factory() if field.default_factory else field.default
        text = " ".join((field.description or "").split()).replace("|", "\\|")
        shown = "" if default is None else str(default).replace("|", "\\|")
        if len(shown) > 40:
            shown = shown[:37] + "…"
        print(f"| `{env}` | `{shown}` | {text} |")


if __name__ == "__main__":
    main()
