"""Files on the ticket pages: the picker of the new-ticket and reply forms, and a list of files with previews."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from ticketing_app.config import get_settings
from ticketing_app.services.attachments import MAX_FILES_PER_FORM, max_bytes


def file_picker(upload_id: str, on_rejected: Any) -> rx.Component:
    """A drop zone (also opened by click, Enter or Space) and the names chosen so far. The limits are checked
    here first, for a quick message, and again on the server."""
    megabytes = f"{get_settings().max_attachment_mb:g} MB"
    return rx.flex(
        # The label names react-dropzone's hidden file input (which takes no props of ours) and opens it on
        # click; the zone itself opens it by Enter or Space (no_click: one dialog, not two).
        rx.el.label(
            rx.upload.root(
                rx.flex(
                    rx.icon("paperclip", size=16, aria_hidden="true"),
                    rx.text(
                        f"Attach files: drop them here or click to choose (up to {MAX_FILES_PER_FORM}, "
                        f"{megabytes} each)",
                        size="2",
                    ),
                    spacing="2",
                    align="center",
                ),
                id=upload_id,
                multiple=True,
                max_files=MAX_FILES_PER_FORM,
                max_size=max_bytes(),
                min_size=1,
                no_click=True,
                on_drop_rejected=lambda rejected: on_rejected(_rejected_summary(rejected)),
                border="1px dashed var(--gray-a8)",
                border_radius="6px",
                padding="0.6em 0.9em",
                cursor="pointer",
            ),
        ),
        rx.foreach(
            rx.selected_files(upload_id),
            lambda name: rx.text(rx.icon("file", size=12, aria_hidden="true"), " ", name, size="1"),
        ),
        direction="column",
        spacing="1",
        id=f"{upload_id}-picker",
    )


def _rejected_summary(rejected: rx.Var) -> rx.Var:
    """Names and error codes of the files the picker refused. Not react-dropzone's list itself: it holds the
    File objects, which the websocket would carry to the server whole (a refused 1 GB file included)."""
    js = (
        f"(({rejected}) ?? []).map((r) => ({{name: String(r?.file?.name ?? 'file'), "
        "codes: (r?.errors ?? []).map((e) => String(e?.code ?? ''))}))"
    )
    return rx.Var(_js_expr=js, _var_type=list[dict[str, Any]], _var_data=rejected._get_all_var_data())


def file_list(files: rx.Var, download: Callable[[Any], Any]) -> rx.Component:
    """Each file with name, size and a download button; small images with an inline preview. The element id
    `attachment-{id}` is where mails' links `{ticket_url}#attachment-{id}` land."""

    def one(a: rx.Var) -> rx.Component:
        return rx.flex(
            rx.cond(
                a.preview != "",
                rx.image(
                    src=a.preview,
                    alt=a.filename,
                    max_width="min(100%, 320px)",
                    max_height="240px",
                    border_radius="4px",
                    object_fit="contain",
                ),
            ),
            rx.flex(
                rx.icon("paperclip", size=14, aria_hidden="true"),
                rx.text(a.filename, size="2", weight="medium", class_name="attachment-name"),
                rx.text(a.size, size="1", color_scheme="gray"),
                rx.button(
                    "Download",
                    size="1",
                    variant="soft",
                    type="button",
                    on_click=download(a.id),
                    custom_attrs={"aria-label": "Download " + a.filename.to(str)},
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            id=a.anchor,
            direction="column",
            spacing="1",
            class_name="attachment",
        )

    return rx.cond(
        files.length() > 0,
        rx.flex(rx.foreach(files, one), direction="column", spacing="2", margin_top="0.5em"),
    )
