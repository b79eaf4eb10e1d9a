"""CLI commands for encryption at rest (`encrypt enable|disable|status`) and plain exports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..crypto import PASSPHRASE_ENV
from .common import DataDir, JsonFlag, console, open_service, print_json


def register(app: typer.Typer) -> None:
    enc = typer.Typer(help="Encryption at rest: the index (SQLCipher) and every chunk "
                           "(AES-256-GCM), keyed from the OS keyring or a passphrase. "
                           "See docs/encryption.md.", no_args_is_help=True)
    app.add_typer(enc, name="encrypt")

    @enc.command("status")
    def status(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Whether the store is encrypted, where the key is, and how many chunks are sealed."""
        st = open_service(data_dir).encryption.status()
        if json_out:
            print_json(st)
            return
        if not st.enabled:
            console.print(f"not encrypted ({st.chunks_plain} chunk files in the clear); "
                          "`localvideo encrypt enable` to encrypt", highlight=False)
            return
        console.print(f"encrypted: key from the {st.source} (id {st.key_id}); index "
                      f"{'encrypted' if st.index_encrypted else 'NOT encrypted'}; "
                      f"{st.chunks_sealed} chunk files sealed, {st.chunks_plain} plain",
                      highlight=False)

    @enc.command("enable")
    def enable(
            data_dir: DataDir = None,
            passphrase: Annotated[bool, typer.Option(
                "--passphrase", help=f"Derive the key from a passphrase you type (or "
                                     f"{PASSPHRASE_ENV}) instead of the OS keyring.")] = False,
            json_out: JsonFlag = False) -> None:
        """Encrypt the index and seal every chunk; new chunks are sealed as they are
        written. Stop the recorder and the analysis first."""
        secret = None
        if passphrase and PASSPHRASE_ENV not in os.environ:
            secret = typer.prompt("new passphrase", hide_input=True, confirmation_prompt=True)
        svc = open_service(data_dir)
        done = svc.encryption.enable(secret, keyring=False if passphrase else None)
        if json_out:
            print_json(done)
            return
        console.print(f"encrypted: {sum(done.rows.values())} index rows in "
                      f"{len(done.rows)} tables, {done.chunks} chunk files sealed "
                      f"({done.seconds:.1f} s); key from the {done.source}", highlight=False)
        if done.source == "passphrase":
            console.print("keep the passphrase safe: without it the history cannot be read",
                          highlight=False)

    @enc.command("disable")
    def disable(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Decrypt the index and every chunk back to plain files and forget the key."""
        svc = open_service(data_dir)
        done = svc.encryption.disable()
        if json_out:
            print_json(done)
            return
        console.print(f"decrypted: {sum(done.rows.values())} index rows, {done.chunks} "
                      f"chunk files ({done.seconds:.1f} s); the store is plain again",
                      highlight=False)

    @app.command("export")
    def export(
            since: Annotated[str, typer.Option(help="Start: 14:00, 2h, today, ISO or unix.")],
            until: Annotated[str, typer.Option(help="End, same forms as --since.")],
            out: Annotated[Path, typer.Option(help="Folder for the MP4 files (created).")],
            data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Write the chunks of a time range as plain MP4 files (decrypted when the store
        is encrypted), for you to keep or share."""
        done = open_service(data_dir).export.chunks(since, until, out)
        if json_out:
            print_json(done)
            return
        for f in done.files:
            print(f)
        console.print(f"{len(done.files)} files, {done.bytes} bytes in {done.out}",
                      highlight=False)
