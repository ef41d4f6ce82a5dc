"""Import a product feed (CSV, JSON Lines or a JSON array) into the catalog.

    manage.py import_catalog feed.csv [--format csv|jsonl|json] [--dry-run] [--report out.csv]

CSV columns: external_id, title, description, category, list_price, currency, image_url,
url, is_active, plus `attr:<name>` columns that become string attributes; empty cells count
as not given. JSON objects use the same keys with `attributes` as an object. Rows are
validated exactly as the API validates them; each bad row is reported as
`line N: field: reason` (`item N` for a JSON array) and skipped, the good rows are imported.

The whole file is read and checked before anything is written: an unreadable file (bad
encoding, not CSV/JSON) or unknown columns stop the import with nothing written.

Exit status: 0 when every row was imported, 1 on a fatal error (nothing written), 2 when
some rows were rejected (the good rows were imported).
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from webapp.apis.catalog import ItemInputSerializer, item_inputs_validate
from webapp.selectors.catalog_api import items_existing_external_ids
from webapp.services.catalog import ItemData, items_upsert

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
ITEM_FIELDS = tuple(ItemInputSerializer().fields)
CSV_COLUMNS = tuple(name for name in ITEM_FIELDS if name != "attributes")
ATTRIBUTE_PREFIX = "attr:"
REQUIRED_COLUMNS = ("external_id", "title")
TOO_MANY_CELLS = "has more cells than the header"
EXIT_REJECTED_ROWS = 2
# Beyond this many rows a progress bar is worth showing (on a terminal).
PROGRESS_MIN_ROWS = 1000


@dataclass
class Row:
    """One record of the feed: where it was and what it said."""

    location: str
    raw: Any
    problems: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Rejection:
    location: str
    external_id: str
    errors: dict[str, list[str]]


@dataclass
class Validated:
    items: list[ItemData] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _csv_columns_check(header: list[str]) -> None:
    unknown = [c for c in header if c not in CSV_COLUMNS and not c.startswith(ATTRIBUTE_PREFIX)]
    if unknown:
        raise CommandError(
            f"Unknown column(s): {', '.join(map(repr, unknown))}. Known columns: "
            f"{', '.join(CSV_COLUMNS)} and {ATTRIBUTE_PREFIX}<name>."
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise CommandError(f"Duplicated column(s): {', '.join(duplicated)}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CommandError(f"Missing required column(s): {', '.join(missing)}.")


def _csv_record(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A CSV row as the API would receive it: empty cells left out, attr: columns nested."""
    record: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for column, value in zip(header, cells, strict=False):
        if value == "":
            continue
        if column.startswith(ATTRIBUTE_PREFIX):
            attributes[column.removeprefix(ATTRIBUTE_PREFIX)] = value
        else:
            record[column] = value
    if attributes:
        record["attributes"] = attributes
    return record


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise CommandError("The file is empty: expected a CSV header line.")
        _csv_columns_check(header)
        start = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                extra = {"row": [TOO_MANY_CELLS]} if len(cells) > len(header) else {}
                yield Row(f"line {start}", _csv_record(header, cells), problems=extra)
            start = reader.line_num + 1


def _json_keys_check(rows: list[Row]) -> None:
    for row in rows:
        if isinstance(row.raw, dict):
            unknown = sorted(set(row.raw) - set(ITEM_FIELDS))
            if unknown:
                raise CommandError(
                    f"{row.location}: unknown field(s): {', '.join(unknown)}. "
                    f"Known fields: {', '.join(ITEM_FIELDS)}."
                )


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Row(location=f"line {number}", raw=json.loads(line))
            except json.JSONDecodeError as error:
                raise CommandError(f"line {number}: not valid JSON: {error}") from None


def _json_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as error:
            raise CommandError(f"Not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise CommandError("A JSON feed must be an array of item objects.")
    for number, raw in enumerate(document, start=1):
        yield Row(location=f"item {number}", raw=raw)


def feed_rows(path: Path, file_format: str) -> list[Row]:
    """Every record of the feed, or CommandError when the file cannot be read as a whole."""
    readers = {"csv": _csv_rows, "jsonl": _jsonl_rows, "json": _json_rows}
    try:
        rows = list(readers[file_format](path))
    except UnicodeDecodeError as error:
        raise CommandError(f"The file is not UTF-8 text: {error}") from None
    except csv.Error as error:
        raise CommandError(f"Not a readable CSV file: {error}") from None
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error}") from None
    if file_format != "csv":
        _json_keys_check(rows)
    return rows


def feed_validate(rows: list[Row], *, progress: bool) -> Validated:
    """Validate each record as the API does; a repeated external id is rejected."""
    result = Validated()
    seen: dict[str, str] = {}
    bar = tqdm(rows, desc="Validating", unit="row", disable=None if progress else True)
    checked = zip(bar, item_inputs_validate(row.raw for row in rows), strict=True)
    for row, (data, errors) in checked:
        raw = row.raw
        if row.problems:
            errors = {**row.problems, **errors}
        elif data is not None and data.external_id in seen:
            errors = {"external_id": [f"duplicate of {seen[data.external_id]}"]}
        if errors or data is None:
            external_id = raw.get("external_id", "") if isinstance(raw, dict) else ""
            result.rejections.append(Rejection(row.location, str(external_id), errors))
            continue
        seen[data.external_id] = row.location
        result.items.append(data)
    return result


class Command(BaseCommand):
    help = "Import a product feed (CSV, JSON Lines or JSON array) into the catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format",
            choices=sorted(set(FORMATS.values())),
            help="Defaults to the file's extension (.csv, .jsonl/.ndjson, .json).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and count, write nothing."
        )
        parser.add_argument(
            "--report", type=Path, help="Write rejected rows to this CSV (line, field, reason)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        file_format = options["format"] or FORMATS.get(path.suffix.lower())
        if file_format is None:
            raise CommandError(f"Cannot tell the format of {path.name}: pass --format.")
        rows = feed_rows(path, file_format)
        progress = len(rows) >= PROGRESS_MIN_ROWS
        validated = feed_validate(rows, progress=progress)
        for rejection in validated.rejections:
            for name, reasons in rejection.errors.items():
                for reason in reasons:
                    self.stderr.write(f"{rejection.location}: {name}: {reason}")
        if options["report"]:
            self._write_report(options["report"], validated.rejections)
        created, updated = self._import(validated.items, options["dry_run"], progress)
        rejected = len(validated.rejections)
        prefix = "Dry run, nothing written: would have " if options["dry_run"] else ""
        self.stdout.write(f"{prefix}created: {created}, updated: {updated}, rejected: {rejected}")
        if rejected:
            raise CommandError(f"{rejected} row(s) rejected.", returncode=EXIT_REJECTED_ROWS)

    def _import(self, items: list[ItemData], dry_run: bool, progress: bool) -> tuple[int, int]:
        if dry_run:
            existing = items_existing_external_ids(external_ids=(i.external_id for i in items))
            return len(items) - len(existing), len(existing)
        with tqdm(
            total=len(items), desc="Importing", unit="item", disable=None if progress else True
        ) as bar:
            result = items_upsert(items=items, on_batch_done=bar.update)
        return len(result.created), len(result.updated)

    def _write_report(self, report: Path, rejections: list[Rejection]) -> None:
        with report.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["location", "external_id", "field", "reason"])
            for rejection in rejections:
                for name, reasons in rejection.errors.items():
                    for reason in reasons:
                        writer.writerow([rejection.location, rejection.external_id, name, reason])
