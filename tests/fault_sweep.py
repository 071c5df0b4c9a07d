"""The sweep behind tests/test_fault_injection*.py: one command, faulted at its n-th filesystem
operation, then re-run without the fault, and checked against an uninterrupted run.

A `Scenario` is a command (`vlabench run`, `merge`, `report --out`) over a workspace folder: the
folder starts as a copy of `template` (the inputs, e.g. shard runs), the command writes
`target` (its run directory or output folder). After each faulted command: no traceback, and
either exit 2 with one error line on stderr (besides progress lines) or exit 0 (a fault in a best-effort step); after the re-run:
exit 0, the target's records equal the uninterrupted run's (timing columns apart), the same files,
and nothing else in the workspace changed. A kill (power cut after the n-th operation) is
re-run likewise, and when the killed operation was an unsynced append, every shorter length the
file could have had is recovered by `RunFiles.open` (one line naming the file, or records), each
distinct recovered state then re-run in full.
"""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fault_shim import KILLED, Faults, cli, forked, spawned, tree

ERRNOS = (errno.EIO, errno.ENOSPC, errno.EROFS)
VOLATILE = {".vlabench.lock", "sim.log"}   # rewritten by every invocation


@dataclass
class Scenario:
    name: str
    argv: Callable[[Path], list[str]]        # workspace -> the command's arguments
    target: Callable[[Path], Path]           # workspace -> what it writes
    compare: Callable[[Path], Any]           # target -> what must equal the uninterrupted run's
    template: Path | None = None             # the workspace before the command (copied)
    spawn_kills: bool = False                # kill runs in a new interpreter, not a fork (torch)


@dataclass
class Tally:
    """What a sweep exercised and found."""

    operations: int = 0
    faults: int = 0
    absorbed: int = 0      # faults the command survived (exit 0) with the right records
    kills: int = 0
    truncations: int = 0
    truncation_resumes: int = 0
    refusals: int = 0      # recoveries that refused in one line naming the file
    problems: list[str] = field(default_factory=list)

    def line(self, name: str, how: str) -> str:
        return (f"fault injection [{name}, {how}]: {self.operations} I/O operations; "
                f"{self.faults} faults ({self.absorbed} absorbed), {self.kills} kills, "
                f"{self.truncations} truncations ({self.truncation_resumes} resumed in full, "
                f"{self.refusals} refused in one line); {len(self.problems)} failures")


class Sweep:
    """Runs one scenario's reference and its faulted variants in workspaces under `root`."""

    def __init__(self, scn: Scenario, root: Path):
        self.scn, self.root, self.tally = scn, root, Tally()
        self._n = 0
        ws = self.workspace()
        self.before = tree(ws)
        counter = Faults()
        res = cli(scn.argv(ws), counter)
        assert res.code == 0 and res.traceback is None, res.stderr + (res.traceback or "")
        self.log = counter.log
        self.tally.operations = counter.count
        self.expected = scn.compare(scn.target(ws))
        self.names = self._names(scn.target(ws))
        shutil.rmtree(ws)

    def workspace(self) -> Path:
        self._n += 1
        ws = self.root / f"{self.scn.name}-{self._n}"
        if self.scn.template is not None:
            shutil.copytree(self.scn.template, ws, symlinks=True)
        else:
            ws.mkdir(parents=True)
        return ws

    @staticmethod
    def _names(target: Path) -> set[str]:
        return {p.name for p in target.rglob("*") if p.name not in VOLATILE}

    def _problem(self, what: str, text: str) -> None:
        self.tally.problems.append(f"{self.scn.name} {what}: {text}")
        print("FAILED", self.tally.problems[-1], flush=True)   # shown with pytest -s

    def _finish(self, ws: Path, what: str) -> None:
        """Re-run without faults; compare with the uninterrupted run; nothing else touched."""
        res = cli(self.scn.argv(ws))
        target = self.scn.target(ws)
        if res.traceback or res.code != 0:
            return self._problem(what, f"re-run exit {res.code}: {res.stderr.strip()[-300:]} "
                                       f"{res.traceback or ''}")
        if self.scn.compare(target) != self.expected:
            return self._problem(what, "re-run records differ from the uninterrupted run's")
        if self._names(target) != self.names:
            return self._problem(what, f"files {sorted(self._names(target) ^ self.names)} differ")
        outside = tree(ws, skip=target)
        if {k: v for k, v in outside.items() if Path(k).name not in VOLATILE} != \
                {k: v for k, v in self.before.items() if Path(k).name not in VOLATILE
                 and not (ws / k == target or target in (ws / k).parents)}:
            self._problem(what, "something outside the target changed")

    def fail(self, n: int, err: int) -> None:
        ws = self.workspace()
        what = f"op {n} ({'/'.join(self.log[n - 1])}) {errno.errorcode[err]}"
        res = cli(self.scn.argv(ws), Faults(fail_at=n, errno=err))
        self.tally.faults += 1
        lines = [ln for ln in res.stderr.splitlines()   # but the progress lines of run.quiet
                 if ln.strip() and not ln.startswith("[vlabench] ")]
        if res.traceback:
            self._problem(what, "traceback: " + res.traceback.strip().splitlines()[-1])
        elif res.code == 0:
            self.tally.absorbed += 1
        elif res.code != 2 or len(lines) != 1 or not lines[0].startswith("vlabench: error:"):
            self._problem(what, f"exit {res.code}, stderr {lines[-3:]}")
        self._finish(ws, what)
        shutil.rmtree(ws)

    def kill(self, n: int) -> None:
        ws = self.workspace()
        what = f"kill after op {n} ({'/'.join(self.log[n - 1])})"
        with tempfile.TemporaryDirectory(prefix="vlabench-kill-") as keep:
            note = Path(keep) / "note.json"
            run = spawned if self.scn.spawn_kills else forked
            res = run(self.scn.argv(ws), Faults(kill_at=n, note=note))
            self.tally.kills += 1
            if res.code != KILLED or not note.exists():
                self._problem(what, f"the fork was not killed (exit {res.code})")
            else:
                info = json.loads(note.read_text())
                saved = Path(keep) / "ws"
                shutil.copytree(ws, saved, symlinks=True)
                self._finish(ws, what)
                self._truncations(saved, Path(info["path"]).relative_to(ws), info, what)
        shutil.rmtree(ws)

    def _truncations(self, saved: Path, rel: Path, info: dict, what: str) -> None:
        """Every shorter length an unsynced append could have left, recovered; each distinct
        recovered state re-run in full."""
        from vlabench.records.files import RecordsError, RunFiles

        if info["op"] != "write" or rel.name not in ("episodes.csv", "calls.csv") \
                or info["size"] is None or info["durable"] is None:
            return
        classes: dict[Any, int] = {}
        for length in range(info["durable"], info["size"]):
            probe = saved.parent / "probe"
            shutil.copytree(saved, probe, symlinks=True)
            with open(probe / rel, "r+b") as f:
                f.truncate(length)
            run_dir = (probe / rel).parent
            man = json.loads((run_dir / "manifest.json").read_text()) \
                if (run_dir / "manifest.json").exists() else {}
            try:
                RunFiles(run_dir).open(man.get("records"))
                state: Any = tuple((run_dir / f).read_bytes() for f in ("episodes.csv", "calls.csv"))
            except RecordsError as e:
                state = ("refused", str(e))
                if str(probe / rel) not in str(e) and rel.name not in str(e):
                    self._problem(what, f"truncated to {length}: refusal names no file: {e}")
            shutil.rmtree(probe)
            self.tally.truncations += 1
            classes.setdefault(state, length)
        for state, length in classes.items():
            ws = self.workspace()
            shutil.rmtree(ws)
            shutil.copytree(saved, ws, symlinks=True)
            with open(ws / rel, "r+b") as f:
                f.truncate(length)
            self.tally.truncation_resumes += 1
            if state[0] == "refused":
                self.tally.refusals += 1
                res = cli(self.scn.argv(ws))
                if res.traceback or res.code != 2 or rel.name not in res.stderr:
                    self._problem(what, f"truncated to {length}: exit {res.code} {res.stderr[-200:]}")
            else:
                self._finish(ws, f"{what}, {rel} truncated to {length}")
            shutil.rmtree(ws)
