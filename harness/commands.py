"""The commands a target file names: ``[provision] command`` and ``[restart] command``.

Reading a target file runs nothing (:func:`harness.target.load`); what runs its commands is
here: :func:`load_target` (read, then provision) once per run, and :func:`restart` for the tests
that restart the server. A command's failure is one line naming its key.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness import redact
from harness import target as target_mod
from harness.target import ProvisionError, Target, TargetError

#: Seconds a provision command may take (it may create users on a staging server).
PROVISION_TIMEOUT = 120.0
#: Seconds a restart command may take.
RESTART_TIMEOUT = 60.0


def run_command(command: str, key: str, timeout: float) -> str:
    """Run a target-file command (``provision.command``, ``restart.command``); its stdout.
    Raises :class:`TargetError` (``<key>: ...``, the last line of its stderr, redacted)."""
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise TargetError(f"{key}: command not found: {exc.filename}") from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"{key}: command did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TargetError(f"{key}: command exited {done.returncode}: {redact.redact(last)}")
    return done.stdout


def load_target(path: str | Path, env: Mapping[str, str] | None = None) -> Target:
    """Read and check a target file, then, with ``[provision]``, run its command and complete
    the target with what it printed (:func:`harness.target.apply_provision`): the accounts and
    room every suite needs must then be named by one or the other.

    Raises :class:`TargetError` for a mistake in the file, :class:`ProvisionError` when the
    command fails or prints what cannot be used."""
    target = target_mod.load(path, env)
    if not target.provision_command:
        return target
    try:
        out = run_command(target.provision_command, "provision.command", PROVISION_TIMEOUT)
        target = target_mod.apply_provision(target, out)
        after = " from the file and from the output of provision.command"
        target_mod.check_fixtures(
            target.auth, target.accounts, target.rooms, str(path), after=after
        )
    except TargetError as exc:
        raise ProvisionError(str(exc)) from None
    return target


def restart(target: Target) -> None:
    """Restart the target's server: its ``restart_hook`` (the bundled reference server), else
    its ``restart.command``; nothing when it has neither (see :attr:`Target.can_restart`)."""
    if target.restart_hook is not None:
        target.restart_hook()
    elif target.restart_command:
        run_command(target.restart_command, "restart.command", timeout=RESTART_TIMEOUT)
