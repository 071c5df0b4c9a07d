"""Where a run's records live, and the rule that vlabench removes only what it created.

`run_dir_path` refuses run names that are empty or escape `run.output_dir`. `RunDirClaim`
creates the directory (and any missing parents), takes the single-writer lock, and remembers
what existed before: a start that fails or is interrupted removes only the files and folders
this invocation created, never a directory or file that was there before. A directory that
holds anything but vlabench records is never used (nor deleted); `run.overwrite=true` deletes
only the record files, under the lock. Besides the records a run directory may hold what vlabench
writes alongside them: sim.log (simulator chatter, vlabench/run/simlog.py), videos/ (run.video,
vlabench/run/video.py), tensorboard/ (run.logger=tensorboard), obs/ (run.record_obs) and replay.csv/json
(`bench --replay`); a resume keeps them, run.overwrite
deletes them (in a folder only the files vlabench names so, then the folder if it is empty).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from vlabench.core.errors import ConfigError
from vlabench.records import fsio
from vlabench.records.files import writing
from vlabench.records.locking import LOCK_NAME, RunLock
from vlabench.records.observations import is_obs_file

# In the order run.overwrite deletes them: config.yaml last, so that an overwrite killed half-way
# leaves a directory that is still recognised as a run (and can be overwritten again).
RECORD_FILES = ("summary.csv", "manifest.json", "calls.csv", "episodes.csv", "config.yaml")
# `vlabench merge` stages every new file as a temporary, then writes this journal (the commit
# point) and renames the staged files into place; `finish_merge` completes an interrupted one.
MERGE_JOURNAL = ".vlabench-merge.json"
_TEMP = re.compile(r"^\.(?:%s)\.(\d+)\.tmp$"
                   % "|".join(re.escape(f) for f in (*RECORD_FILES, MERGE_JOURNAL)))
_OLD_PROBE = ".write-probe"  # left by vlabench versions before the lock file
LOG_FILES = ("sim.log", "replay.csv", "replay.json")   # + `bench --replay`'s results
# folder -> test of a file name vlabench writes there
RUN_FOLDERS = {
    "videos": lambda n: n.endswith(".mp4") and (n.startswith("task") or n.startswith(".tmp-")),
    "tensorboard": lambda n: n.startswith("events.out.tfevents."),
    "obs": is_obs_file,   # run.record_obs: recordings and their temporaries
}


def _remove_folder_files(folder: Path) -> None:
    """Delete the files vlabench writes in `folder` (RUN_FOLDERS), then the folder if empty."""
    ours = RUN_FOLDERS[folder.name]
    if not folder.is_dir():
        return
    for e in os.listdir(folder):
        if ours(e) and (folder / e).is_file():
            fsio.unlink(folder / e, missing_ok=True)
    try:
        fsio.rmdir(folder)   # never recursive: a file someone put there stays, with its folder
    except OSError:
        pass


def run_dir_path(output_dir: object, name: object) -> Path:
    """`output_dir/name`, refusing names that are empty or leave `output_dir`."""
    text = str(name)
    where = f"a directory name inside run.output_dir={output_dir}"
    if not text.strip():
        raise ConfigError(f"run.name is empty; it must be {where}, e.g. run.name=my-run")
    p = PurePath(text)
    if "\0" in text or p.is_absolute() or ".." in p.parts or not [x for x in p.parts if x != "."]:
        raise ConfigError(f"run.name={text!r} is not allowed: it must be {where} "
                          f"(no absolute path, no '..', not '.')")
    return Path(str(output_dir)) / text


def is_temporary(name: str) -> bool:
    """A whole-file write's temporary (`.calls.csv.1234.tmp`) or an old write probe."""
    return bool(_TEMP.match(name)) or name == _OLD_PROBE


def finish_merge(run_dir: Path) -> bool:
    """Complete a merge that was killed after its journal was written (the caller holds the
    lock): rename its staged files into place, then drop the journal. True when one was done."""
    import json

    journal = Path(run_dir) / MERGE_JOURNAL
    try:
        staged = json.loads(journal.read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        with writing(journal):
            fsio.unlink(journal, missing_ok=True)   # written atomically, so never half: not ours
        return False
    with writing(journal):
        for final, temp in staged.items():
            if final in RECORD_FILES and is_temporary(temp) and (Path(run_dir) / temp).exists():
                fsio.replace(Path(run_dir) / temp, Path(run_dir) / final)
        fsio.sync_dir(run_dir)   # the renames reach the disk before the journal goes
        fsio.unlink(journal, missing_ok=True)
    return True


def remove_temporaries(run_dir: Path) -> list[str]:
    """Finish an interrupted merge, then delete temporaries left by killed writers (the caller
    holds the lock); their names."""
    finish_merge(run_dir)
    gone = []
    for entry in sorted(os.listdir(run_dir)):
        if is_temporary(entry):
            with writing(run_dir / entry):
                fsio.unlink(run_dir / entry, missing_ok=True)
            gone.append(entry)
    return gone


class RunDirClaim:
    """The run directory of this invocation: created if missing, locked, cleaned up on failure."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = RunLock(self.path)
        self.created_dirs: list[Path] = []
        self.before: set[str] | None = None  # None until the lock is held: touch no file

    def open(self) -> None:
        """Create missing folders, take the lock (RunDirLocked), remember what was there."""
        missing = []
        p = self.path
        while not p.exists():
            if p == p.parent:
                break
            missing.append(p)
            p = p.parent
        try:
            if self.path.exists() and not self.path.is_dir():
                raise ConfigError(f"{self.path} exists and is a file, not a run directory; "
                                  f"choose another run.name or run.output_dir")
            for d in reversed(missing):
                try:
                    fsio.mkdir(d)
                    self.created_dirs.append(d)
                except FileExistsError:
                    pass
            self.lock.acquire()
        except OSError as e:
            self.abandon()
            raise ConfigError(f"cannot write results to {self.path}: {e.strerror}; set "
                              f"run.output_dir to a writable directory") from None
        except BaseException:
            self.abandon()
            raise
        self.snapshot()

    def snapshot(self) -> None:
        """Remember the directory's entries as existing before this invocation."""
        self.before = set(os.listdir(self.path)) - {LOCK_NAME}

    def foreign(self) -> list[str]:
        """Entries that are neither vlabench records nor its lock or temporaries."""
        return sorted(e for e in os.listdir(self.path) if e not in RECORD_FILES
                      and e not in (LOCK_NAME, MERGE_JOURNAL, *LOG_FILES, *RUN_FOLDERS)
                      and not is_temporary(e))

    def records(self) -> list[str]:
        return [f for f in RECORD_FILES if (self.path / f).exists()]

    def remove_records(self) -> None:
        """run.overwrite: delete the record files, sim.log and what vlabench wrote in videos/ and
        tensorboard/ (only those), then count the dir as fresh."""
        with writing(self.path):
            for f in LOG_FILES:
                fsio.unlink(self.path / f, missing_ok=True)
            for d in RUN_FOLDERS:
                _remove_folder_files(self.path / d)
            for f in RECORD_FILES:   # (prepare_run_dir removed the temporaries under this lock)
                fsio.unlink(self.path / f, missing_ok=True)
        self.snapshot()

    def abandon(self) -> None:
        """Undo this invocation: remove the records and folders it created, release the lock.

        Only files absent when the claim was taken are removed, and folders only when this
        invocation made them and they are empty again: nothing that existed before is touched.
        Best effort: a removal that fails (the disk that failed the start) is skipped, so the
        error that caused the undo is the one reported."""
        if self.before is not None and self.path.is_dir():
            mine = [self.path / f for f in (*RECORD_FILES, *LOG_FILES) if f not in self.before]
            mine += [self.path / e for e in os.listdir(self.path)
                     if (m := _TEMP.match(e)) and int(m.group(1)) == os.getpid()]
            for path in mine:
                try:
                    fsio.unlink(path, missing_ok=True)
                except OSError:
                    pass
            for d in RUN_FOLDERS:
                if d not in self.before:
                    try:
                        _remove_folder_files(self.path / d)
                    except OSError:
                        pass
        self.lock.release(remove=True)
        for d in reversed(self.created_dirs):
            try:
                fsio.rmdir(d)  # never recursive: a folder someone filled meanwhile stays
            except OSError:
                break
        self.created_dirs = []

    def close(self) -> None:
        """The run is over (finished or stopped with records kept): release the lock."""
        self.lock.release()
