"""/api/tickets/{id}/attachments: upload a file to a ticket (or to one of your comments on it), download one."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from fastapi.security.utils import get_authorization_scheme_param

from ticketing_app.api.deps import Token, acting, request_address
from ticketing_app.api.limits import MULTIPART_OVERHEAD_BYTES
from ticketing_app.api.responses import model_response
from ticketing_app.db import session_scope
from ticketing_app.errors import NotAuthenticated, TooLarge
from ticketing_app.schemas import MAX_ID, AttachmentOut
from ticketing_app.services import accounts, attachments

router = APIRouter(prefix="/tickets/{ticket_id}/attachments", tags=["attachments"])

# Uploads get a larger body limit than the API's 256 KiB (api/limits.py), counted as they stream.
UPLOAD_PATH = re.compile(r"/api/tickets/[^/]+/attachments/?")


def upload_body_limit() -> int:
    """The largest upload request: one file of MAX_ATTACHMENT_MB and its multipart framing."""
    return attachments.max_bytes() + MULTIPART_OVERHEAD_BYTES


def form_upload_body_limit() -> int:
    """The largest post to Reflex's upload endpoint: a browser form with its most files, each at the limit."""
    return attachments.MAX_FILES_PER_FORM * attachments.max_bytes() + 1024 * 1024  # + the form's own fields


# The response of a download: never rendered by the browser as a page of ours (attachment, nosniff, a type
# that cannot run, and a policy that forbids everything should it be opened anyway).
DOWNLOAD_CSP = "default-src 'none'; sandbox"


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AttachmentOut)
def upload_attachment(
    ticket_id: int,
    file: Annotated[UploadFile, File(description="The file, at most MAX_ATTACHMENT_MB")],
    token: Token,
    request: Request,
    comment_id: Annotated[
        int | None,
        Form(ge=1, le=MAX_ID, description="Attach to this comment of yours on the ticket instead of the ticket"),
    ] = None,
) -> Response:
    """Attach a file to a ticket you may see; with `comment_id`, to one of your own comments on it. The type
    is sniffed from the bytes; 413 above MAX_ATTACHMENT_MB, 422 for an empty file."""
    limit = attachments.max_bytes()
    if file.size is not None and file.size > limit:  # spooled to disk by the parser; never read it whole
        raise TooLarge(f"The file is larger than {limit / (1024 * 1024):g} MB.")
    data = file.file.read(limit + 1)
    with acting(token) as (session, user):
        stored = attachments.upload(
            session,
            user,
            ticket_id,
            filename=file.filename or "file",
            data=data,
            comment_id=comment_id,
            address=request_address(request),
        )
        return model_response(attachments.attachment_out(stored), status.HTTP_201_CREATED)


@router.get(
    "/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}},
)
def download_attachment(
    ticket_id: int,
    attachment_id: int,
    request: Request,
    key: Annotated[str | None, Query(max_length=100, description="A download key from the ticket page")] = None,
) -> Response:
    """The file's bytes as a download, for whoever may see it (Authorization: Bearer, or a browser's
    short-lived download key); 404 for anyone else."""
    with session_scope() as session:
        if key:
            user = attachments.read_download_key(session, key, attachment_id)
        else:
            scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
            if scheme.lower() != "bearer" or not token:
                raise NotAuthenticated("Log in first: this needs an access token (Authorization: Bearer ...).")
            user = accounts.user_from_token(session, token)
        attachment = attachments.get_for_download(session, user, ticket_id, attachment_id)
        data, filename, content_type = attachment.data, attachment.filename, attachment.content_type
    return Response(
        content=data,
        media_type=attachments.served_content_type(content_type),
        headers={
            "Content-Disposition": attachments.content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": DOWNLOAD_CSP,
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cache-Control": "private, no-store",
        },
    )
