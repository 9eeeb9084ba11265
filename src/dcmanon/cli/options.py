"""What the commands share: exit codes, failing with a message, loading the configuration and
keys, and the option groups several commands take."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from dcmanon.dicom.constants import MAX_NESTING, MAX_NESTING_ALLOWED
from dcmanon.errors import DcmanonError, describe_os_error, describe_unexpected
from dcmanon.keys import KEY_ENV, MIN_KEY_LENGTH
from dcmanon.pixels import MODES
from dcmanon.profiles import PROFILES, Option

if TYPE_CHECKING:
    from dcmanon.config.loader import Config

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "configuration.json"
EXIT_OK = 0
EXIT_FAILED = 1
"""Some files failed (file mode, folder mode), or findings (check, scan)."""
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def jobs_option(what: str, more: str = "") -> Callable[[F], F]:
    """``-j/--jobs N``: worker processes ``what`` (None when not given: every core), the
    help ending with ``more``."""
    return click.option("-j", "--jobs", "jobs", type=click.IntRange(min=1), metavar="N",
                        help=f"Worker processes {what} (default: every core{more}).")


def setup_logging(debug: bool) -> None:
    """Send dcmanon's log records to stderr: warnings always, everything with ``--debug``.

    The library logs tags, keywords and files, never values (it has no handler of its own).
    """
    logger = logging.getLogger("dcmanon")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("dcmanon: %(levelname)s: %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


class _StderrHandler(logging.Handler):
    """Writes to the stderr of the moment (click's), not to the stream there was when the
    handler was made."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001  (logging must never break a run)
            self.handleError(record)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``dcmanon: message`` on stderr and exit with ``code``."""
    click.echo(f"dcmanon: {message}", err=True)
    sys.exit(code)


def guarded(run: Callable[[], None]) -> None:
    """Run a command with library warnings silenced (pydicom's quote element values) and
    every error turned into one line and its exit code, never a traceback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run()
        except KeyboardInterrupt:  # Ctrl-C: no report is written, and no "findings" status
            fail("interrupted: nothing was written", EXIT_INTERRUPTED)
        except DcmanonError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:  # noqa: BLE001  (last resort: one line, never a traceback)
            fail(f"internal error ({describe_unexpected(exc)}); please report it", EXIT_FAILED)


def read_key_file(path: str | None) -> str | None:
    """The project secret held in ``path`` (None without a path); exits if it is unusable."""
    if path is None:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        fail(f"{path}: cannot read key file ({describe_os_error(exc)})")
    except UnicodeDecodeError:
        fail(f"{path}: the key file is not UTF-8 text (write the secret as text)")
    if not key:
        fail(f"{path}: key file is empty")
    return key


def configuration_given(config_path: str | None, profile: str | None,
                        options: tuple[str, ...]) -> bool:
    """Whether the user chose a configuration: -c, --profile, --option or ./configuration.json."""
    return (config_path is not None or profile is not None or bool(options)
            or Path(DEFAULT_CONFIG).is_file())


def load_run_config(config_path: str | None, key_file: str | None, profile: str | None = None,
                    options: tuple[str, ...] = (), *, writes: bool = True,
                    sections: dict[str, object] | None = None) -> Config:
    """The run's configuration: ``-c``, else ``./configuration.json``, else the Basic Profile.

    ``writes``: warn when pseudonyms will not match other runs (not for commands that only
    read: explain, --dry-run, check). ``sections``: more sections from the command line
    (``lookup``...), which replace the file's. Exits with a message if the configuration is
    wrong.
    """
    from dcmanon.config.loader import load_config, parse_config  # pydantic: not for --help

    overrides: dict[str, object] = dict(sections or {})
    if profile is not None:
        overrides["profile"] = profile
    if options:
        overrides["options"] = list(options)
    secret = read_key_file(key_file)
    if config_path is None and not Path(DEFAULT_CONFIG).is_file():
        # No configuration at all: the built-in PS3.15 Basic Profile, which leaks nothing.
        overrides.setdefault("profile", "basic")
        try:
            config = parse_config(overrides, source="command line", secret=secret)
        except DcmanonError as exc:
            fail(str(exc), exc.exit_code)
        return warn_keys(config) if writes else config
    config_path = config_path or DEFAULT_CONFIG
    try:
        config = load_config(config_path, secret=secret, overrides=overrides)
    except DcmanonError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # noqa: BLE001  (a loader bug must not print the file's text)
        fail(f"{config_path}: cannot be read as a configuration ({type(exc).__name__})")
    return warn_keys(config) if writes else config


def warn_keys(config: Config) -> Config:
    """Warn on stderr about weak or generated keys of ``config`` (never the keys); return it."""
    if config.weak_keys:
        names = ", ".join(config.weak_keys)
        click.echo(f"dcmanon: warning: weak key: {names} shorter than {MIN_KEY_LENGTH} "
                   "characters; keyed pseudonyms, hashes and date offsets can be recomputed by "
                   f"guessing it. Use {MIN_KEY_LENGTH} or more random characters.",
                   err=True)
    if config.generated_keys:
        names = ", ".join(config.generated_keys)
        click.echo(f"dcmanon: warning: no key for {names}: a random key is used for this run, "
                   f"so its pseudonyms will not match other runs. Set {KEY_ENV}, use "
                   "--key-file, or give keys in the configuration.", err=True)
    return config


def _apply(func: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def config_options(purpose: str) -> Callable[[F], F]:
    """``-c``, ``--key-file``, ``--profile``, ``--option``: how every command is configured.

    ``purpose`` completes the help of ``-c`` ("The configuration <purpose>").
    """
    def decorate(func: F) -> F:
        return _apply(func, [
            click.option("-c", "--configFile", "config_file", type=click.Path(dir_okay=False),
                         help=f"The configuration {purpose} (JSON). Default: "
                              f"./{DEFAULT_CONFIG}, else the PS3.15 Basic Profile."),
            click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
                         help=f"File holding the project secret (else ${KEY_ENV}); keys every "
                              "method that has no key of its own."),
            click.option("--profile", "profile", type=click.Choice(sorted(PROFILES)),
                         help="Built-in PS3.15 profile for elements no rule selects (default "
                              "without a configuration: basic)."),
            click.option("--option", "options", multiple=True, metavar="NAME",
                         type=click.Choice([o.value for o in Option]),
                         help="A PS3.15 option on top of the profile; repeat for several."),
        ])
    return decorate


_UNITS = {"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
          "g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def parse_size(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    """A size in bytes: ``1073741824``, ``1GiB``, ``512MiB``, ``64K`` (binary units).

    Raises
    ------
    click.BadParameter
        Unless a positive whole number, with or without a unit.
    """
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    digits = text.rstrip(_LETTERS).strip()
    unit = text[len(text.rstrip(_LETTERS)):]
    if not digits.isdigit() or unit not in _UNITS or int(digits) < 1:
        raise click.BadParameter(f"{value!r} is not a size (a positive whole number of bytes, "
                                 "or with KiB, MiB, GiB)", ctx, param)
    return int(digits) << _UNITS[unit]


def limit_options(func: F) -> F:
    """``--max-inflated-size``, ``--max-nesting``: what a hostile input may cost."""
    return _apply(func, [
        click.option("--max-inflated-size", "max_inflated_size", metavar="SIZE",
                     callback=parse_size, default="256MiB", show_default=True,
                     help="Fail a deflated file whose dataset inflates to more than this "
                          "(a deflate bomb); e.g. 64MiB, 1GiB."),
        click.option("--max-nesting", "max_nesting", metavar="N", default=MAX_NESTING,
                     type=click.IntRange(1, MAX_NESTING_ALLOWED), show_default=True,
                     help="Fail a file whose sequences nest more levels deep than this."),
    ])


def pixels_option(func: F) -> F:
    """``--pixels``: what happens to text burned into the pixels (the command line wins over
    the configuration's ``pixels.mode``)."""
    return click.option(
        "--pixels", "pixels", type=click.Choice(MODES, case_sensitive=False),
        help="Burned-in text in the pixels: off; rules (region rules only); flagged (rules, "
             "then OCR on images likely to carry text; the default); all (OCR every image). "
             "Default: the configuration's pixels.mode.")(func)
