"""Stage check_params: runs first on every `dvc repro` (always_changed). Stops the pipeline
with one line when params.yaml is older than conf/ (a `conf/` edit not yet composed), validates
every key, and removes temporaries that killed stages left in data/, models/ and reports/.
Its output never changes, so the stages after it rerun only for their own deps and params."""

from __future__ import annotations

from slimaudio import atomic
from slimaudio.stage import cli, parse_args, setup

SECTIONS: tuple[str, ...] = ()  # the whole file is validated and compared with conf/
OUTPUT_FOLDERS = ("data", "models", "reports")
CONTENT = "params.yaml was composed from the conf/ files beside it, and every key validates\n"


def main() -> None:
    args = parse_args(__doc__, ["out"])
    setup(args.params, SECTIONS)
    for path in atomic.sweep_dead_temps(OUTPUT_FOLDERS):
        print(f"check_params: removed {path}, left by a stage that was killed")
    atomic.write_text(args.out, CONTENT)


if __name__ == "__main__":
    cli(main, restore_hint=False)  # its output is a constant line: nothing to restore
