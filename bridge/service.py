"""`zob service`: start `zob watch` at login, as a service of the user's own session.

Linux gets a systemd *user* unit, macOS a launchd agent, Windows the Task Scheduler command
(printed: creating scheduled tasks is left to the user). The service runs
`<this python> -m bridge.cli watch --config <the config file in use now>`, so it finds the same
vault and Zotero folder as the user's own commands, and the same installed version.

The service manager is only driven when its command exists and `manual` is false; otherwise the
commands to run are printed. Exit code 2 from `zob watch` (another daemon owns the vault, or a
config error) is not restarted in a loop.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bridge.config import APP_NAME, default_config_path, load_config, require_vault
from bridge.errors import ConfigError

UNIT_NAME = "zob-watch.service"
LAUNCHD_LABEL = "org.zotero-obsidian-bridge.watch"
TASK_NAME = "zob watch"


@dataclass
class ServiceReport:
    """What a `zob service` command did: the file it wrote or removed, what it says."""

    kind: str
    path: Path | None = None
    lines: list[str] = field(default_factory=list)
    ok: bool = True
    installed: bool = True  # `status`: False when there is no service file


def platform_kind() -> str:
    if sys.platform.startswith("linux"):
        return "systemd"
    if sys.platform == "darwin":
        return "launchd"
    if sys.platform.startswith("win"):
        return "windows"
    return "unsupported"


def watch_command(config_file: Path) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", "watch", "--config", str(config_file)]


def resolve_config(config_path: Path | None) -> Path:
    """The config file the service will use; it must exist and name a vault."""
    path = (config_path or default_config_path()).expanduser().resolve()
    config = load_config(path, required=True)
    require_vault(config)
    if config.source == "sqlite" and config.zotero_dir is None:
        raise ConfigError(
            f"{path} names no Zotero data directory",
            hint="set source.zotero_dir in it (or run `zob init` again)",
        )
    return path


# ----------------------------------------------------------------------------- file contents


def _systemd_quote(arg: str) -> str:
    """One ExecStart word: specifiers (%) and variables ($) escaped, quoted when needed."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\;" for c in arg):
        arg = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def systemd_unit(config_file: Path) -> str:
    exec_start = " ".join(_systemd_quote(a) for a in watch_command(config_file))
    return f"""\
# Written by `zob service install`; remove with `zob service uninstall`.
[Unit]
Description=zotero-obsidian-bridge: keep the Obsidian vault in step with Zotero (zob watch)
Documentation=https://pypi.org/project/zotero-obsidian-bridge/

[Service]
Type=simple
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=10
# 2: another `zob watch` owns the vault, or the config is wrong: restarting will not help
RestartPreventExitStatus=2
TimeoutStopSec=10

[Install]
WantedBy=default.target
"""


def launchd_plist(config_file: Path, log_dir: Path) -> bytes:
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": watch_command(config_file),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ProcessType": "Background",
            "ThrottleInterval": 10,
            "StandardErrorPath": str(log_dir / "launchd.log"),
            "StandardOutPath": str(log_dir / "launchd.log"),
        }
    )


def schtasks_create(config_file: Path) -> str:
    command = subprocess.list2cmdline(watch_command(config_file)).replace('"', '\\"')
    return f'schtasks /Create /TN "{TASK_NAME}" /SC ONLOGON /RL LIMITED /F /TR "{command}"'


# ----------------------------------------------------------------------------- locations


def systemd_unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def launchd_plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def _log_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME))


# ----------------------------------------------------------------------------- commands


def _run(commands: list[list[str]], manual: bool, report: ServiceReport) -> None:
    """Run the service manager's commands, or print them when told to (or when absent)."""
    tool = commands[0][0]
    if manual or shutil.which(tool) is None:
        why = "" if manual else f" ({tool} not found)"
        report.lines.append(f"Run{why}:")
        report.lines += ["  " + subprocess.list2cmdline(c) for c in commands]
        return
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        shown = subprocess.list2cmdline(command)
        if done.returncode != 0:
            report.ok = False
            detail = (done.stderr or done.stdout).strip()
            report.lines.append(f"✗ {shown}: {detail}")
            return
        first = done.stdout.strip().splitlines()[:1]
        report.lines.append(f"✓ {shown}" + (f": {first[0]}" if first else ""))


def install(config_path: Path | None, *, manual: bool = False) -> ServiceReport:
    config_file = resolve_config(config_path)
    kind = platform_kind()
    report = ServiceReport(kind)
    if kind == "systemd":
        report.path = systemd_unit_path()
        report.path.parent.mkdir(parents=True, exist_ok=True)
        report.path.write_text(systemd_unit(config_file), encoding="utf-8")
        report.lines.append(f"Wrote {report.path}")
        systemctl = ["systemctl", "--user"]
        _run([[*systemctl, "daemon-reload"], [*systemctl, "enable", "--now", UNIT_NAME]],
             manual, report)  # fmt: skip
        report.lines.append(f"Logs: journalctl --user -u {UNIT_NAME}, or `zob status`.")
    elif kind == "launchd":
        report.path = launchd_plist_path()
        report.path.parent.mkdir(parents=True, exist_ok=True)
        log_dir = _log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        report.path.write_bytes(launchd_plist(config_file, log_dir))
        report.lines.append(f"Wrote {report.path}")
        _run([["launchctl", "bootstrap", f"gui/{os.getuid()}", str(report.path)]], manual, report)
    elif kind == "windows":
        report.lines += [
            "Create a task that starts `zob watch` when you log on (run in a terminal):",
            "  " + schtasks_create(config_file),
            "Then start it now with:",
            f'  schtasks /Run /TN "{TASK_NAME}"',
        ]
    else:
        report.ok = False
        report.lines.append(
            f"no service manager known for {sys.platform}; run this at login yourself:\n  "
            + subprocess.list2cmdline(watch_command(config_file))
        )
    return report


def uninstall(*, manual: bool = False) -> ServiceReport:
    kind = platform_kind()
    report = ServiceReport(kind)
    if kind == "systemd":
        report.path = systemd_unit_path()
        systemctl = ["systemctl", "--user"]
        if report.path.exists():
            _run([[*systemctl, "disable", "--now", UNIT_NAME]], manual, report)
            report.path.unlink()
            report.lines.append(f"Removed {report.path}")
            _run([[*systemctl, "daemon-reload"]], manual, report)
        else:
            report.lines.append(f"No service installed ({report.path} does not exist).")
    elif kind == "launchd":
        report.path = launchd_plist_path()
        if report.path.exists():
            target = f"gui/{os.getuid()}/{LAUNCHD_LABEL}"
            _run([["launchctl", "bootout", target]], manual, report)
            report.path.unlink()
            report.lines.append(f"Removed {report.path}")
        else:
            report.lines.append(f"No service installed ({report.path} does not exist).")
    elif kind == "windows":
        report.lines += ["Run:", f'  schtasks /Delete /TN "{TASK_NAME}" /F']
    else:
        report.lines.append(f"no service manager known for {sys.platform}")
    return report


def status(*, manual: bool = False) -> ServiceReport:
    kind = platform_kind()
    report = ServiceReport(kind)
    if kind in ("systemd", "launchd"):
        report.path = systemd_unit_path() if kind == "systemd" else launchd_plist_path()
        if not report.path.exists():
            report.lines.append(
                f"Not installed ({report.path} does not exist); `zob service install` installs it."
            )
            report.ok = report.installed = False
            return report
        report.lines.append(f"Installed: {report.path}")
        if kind == "systemd":
            _run([["systemctl", "--user", "is-active", UNIT_NAME]], manual, report)
        else:
            _run([["launchctl", "print", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"]], manual, report)
    elif kind == "windows":
        report.lines += ["Run:", f'  schtasks /Query /TN "{TASK_NAME}" /V /FO LIST']
    else:
        report.lines.append(f"no service manager known for {sys.platform}")
    return report
