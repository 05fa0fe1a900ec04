"""Uploads: one size limit for every uploader of the studio, the server's own.

The limit is Streamlit's `server.maxUploadSize` (megabytes), set in .streamlit/config.toml and changed the
Streamlit way (`streamlit run dashboard/app.py --server.maxUploadSize 100`, or STREAMLIT_SERVER_MAX_UPLOAD_SIZE).
The server refuses larger requests itself and every uploader's drop zone shows it ("Limit 50MB per file");
`file_uploader` also checks the size of what arrives, so a larger file is one sentence and is never used.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

MB = 1024 * 1024


def limit_mb() -> int:
    """The largest file the server accepts, in MB."""
    return int(st.get_option("server.maxUploadSize"))


def limit_bytes() -> int:
    return limit_mb() * MB


def too_large(name: str, size: int) -> str | None:
    """The sentence refusing a file of `size` bytes, or None when it fits the limit."""
    if size <= limit_bytes():
        return None
    return (f"**{name}** is {size / MB:.1f} MB, more than the {limit_mb()} MB this server accepts: pick a smaller "
            f"file.")


def file_uploader(label: str, type: list[str], key: str, help: str | None = None, where: Any = st) -> Any:
    """`st.file_uploader` (in `where`) held to the server's limit: the uploaded file, or None (nothing uploaded,
    or a file over the limit, refused with a sentence)."""
    up = where.file_uploader(label, type=type, key=key, help=help)
    if up is None:
        return None
    refusal = too_large(up.name, up.size)
    if refusal:
        where.error(refusal)
        return None
    return up
